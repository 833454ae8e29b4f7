"""An account's members (invite, change role, remove) and its audit log."""

from app.web import tenant_blueprint

bp = tenant_blueprint("accounts", __name__)

from app.accounts import views  # noqa: E402, F401  (routes register on bp)
