"""Billing: subscriptions, plan changes, invoices, the period close, and the owners'
billing page (the DB side of `app.billing`)."""

from app.web import tenant_blueprint

bp = tenant_blueprint("billing_portal", __name__, "/billing")

from app.billing_portal import views  # noqa: E402, F401  (routes register on bp)
