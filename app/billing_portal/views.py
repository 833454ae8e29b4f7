from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, abort, flash, redirect, request, send_file, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from app import billing
from app.billing_portal import bp, operations
from app.billing_portal.charts import cost_chart
from app.billing_portal.forms import CancelForm, ConfirmForm, LeadsForm
from app.billing_portal.invoice_pdf import ensure_invoice_pdf
from app.billing_portal.notify import notify
from app.billing_portal.queries import (
    billing_state,
    catalogue_terms,
    invoices,
    plan_by_code,
    recent_usage,
)
from app.extensions import db
from app.models import Invoice
from app.permissions import Permission
from app.tenancy import get_or_404
from app.web import current_account, is_htmx_request, render, requires


def _page_context(**extra: Any) -> dict[str, Any]:
    account = current_account()
    return {
        "account": account,
        "state": billing_state(account),
        "invoices": invoices(),
        "cancel_form": CancelForm(),
        "confirm_form": ConfirmForm(),
        **extra,
    }


def _panel(status: int = 200, **extra: Any) -> Response:
    response = render("billing/index.html", partial="billing/_panel.html", **_page_context(**extra))
    response.status_code = status
    return response


def _done(message: str) -> Response | BaseResponse:
    """After a change: the panel in place for htmx, or back to the page."""
    flash(message, "success")
    if is_htmx_request():
        return _panel()
    return redirect(url_for("billing_portal.index"))


def _refused(exc: billing.BillingRuleError) -> Response:
    db.session.rollback()
    flash(str(exc), "error")
    return _panel(422)


@bp.get("/")
@requires(Permission.VIEW_BILLING)
def index() -> Response:
    return render("billing/index.html", **_page_context())


@bp.get("/change/<plan_code>")
@requires(Permission.MANAGE_BILLING)
def change_preview(plan_code: str) -> Response:
    """What changing to the plan would do, stated before anything changes."""
    plan = plan_by_code(plan_code) or abort(404)
    try:
        preview = operations.preview_plan_change(current_account(), plan)
    except billing.BillingRuleError as exc:
        return _refused(exc)
    return render(
        "billing/change.html",
        partial="billing/_change_preview.html",
        plan=plan,
        preview=preview,
        is_upgrade=isinstance(preview, billing.UpgradePreview),
        confirm_form=ConfirmForm(),
    )


@bp.post("/change/<plan_code>")
@requires(Permission.MANAGE_BILLING)
def change_confirm(plan_code: str) -> Response | BaseResponse:
    plan = plan_by_code(plan_code) or abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    account = current_account()
    try:
        done = operations.change_plan(account, plan, actor=current_user)
    except billing.BillingRuleError as exc:
        return _refused(exc)
    if isinstance(done, billing.UpgradePreview):
        summary = f"Upgraded to {plan.name} now: {' '.join(done.statements)}"
        message = f"You are on {plan.name} now: {plan.allowance} leads this period."
    else:
        day = done.takes_effect_on.strftime("%-d %B %Y")
        summary = f"Downgrade to {plan.name} scheduled for {day}."
        message = f"{plan.name} starts on {day}. You can withdraw this until then."
    notify(account, "plan changed", summary, actor=current_user)
    db.session.commit()
    return _done(message)


def _withdraw(
    step: Callable[..., None], event: str, summary: str, message: str
) -> Response | BaseResponse:
    """Take back a pending change (a downgrade, a cancellation) in one confirmed step."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    account = current_account()
    try:
        step(account, actor=current_user)
    except billing.BillingRuleError as exc:
        return _refused(exc)
    notify(account, event, summary, current_user)
    db.session.commit()
    return _done(message)


@bp.post("/downgrade/withdraw")
@requires(Permission.MANAGE_BILLING)
def withdraw_downgrade() -> Response | BaseResponse:
    return _withdraw(
        operations.withdraw_downgrade,
        "downgrade withdrawn",
        "The scheduled downgrade was withdrawn.",
        "The downgrade is withdrawn: your plan renews unchanged.",
    )


@bp.post("/cancel")
@requires(Permission.MANAGE_BILLING)
def cancel() -> Response | BaseResponse:
    form = CancelForm()
    if not form.validate_on_submit():
        abort(400)
    account = current_account()
    try:
        period = operations.cancel(account, form.reason.data or "", actor=current_user)
    except billing.BillingRuleError as exc:
        return _refused(exc)
    ends = period.ends_at.strftime("%-d %B %Y")
    reason = f" Reason: {form.reason.data.strip()}" if form.reason.data else ""
    notify(account, "plan cancelled", f"Cancelled; the plan ends on {ends}.{reason}", current_user)
    db.session.commit()
    return _done(f"Your plan ends on {ends}. You can undo this until then.")


@bp.post("/cancel/undo")
@requires(Permission.MANAGE_BILLING)
def undo_cancel() -> Response | BaseResponse:
    return _withdraw(
        operations.undo_cancel,
        "cancellation withdrawn",
        "The cancellation was withdrawn.",
        "Welcome back: your plan renews as usual.",
    )


@bp.get("/invoices/<int:invoice_id>")
@requires(Permission.VIEW_BILLING)
def invoice(invoice_id: int) -> Response:
    return render(
        "billing/invoice.html", account=current_account(), invoice=get_or_404(Invoice, invoice_id)
    )


@bp.get("/invoices/<int:invoice_id>.pdf")
@requires(Permission.VIEW_BILLING)
def invoice_pdf(invoice_id: int) -> Response:
    """The invoice's PDF (rendered now if the worker has not yet)."""
    found = get_or_404(Invoice, invoice_id)
    path = ensure_invoice_pdf(found, current_account())
    db.session.commit()
    response = send_file(
        path, mimetype="application/pdf", as_attachment=True, download_name=f"{found.number}.pdf"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/choose")
@requires(Permission.VIEW_BILLING)
def choose() -> Response:
    """ "Which plan should I choose?": every plan's cost for recent usage or a typed number."""
    form = LeadsForm(request.args)
    form.validate()
    history = recent_usage()
    plans = catalogue_terms()
    state = billing_state(current_account())
    grace = state.ledger.grace if state.ledger else 0
    figures = [(label, leads) for label, leads in history]
    if form.leads.data is not None and not form.leads.errors:
        figures.append(("Your number", int(form.leads.data)))
    comparisons = [
        (label, leads, billing.plan_costs(plans, leads, grace)) for label, leads in figures
    ]
    return render(
        "billing/choose.html",
        account=current_account(),
        form=form,
        plans=plans,
        comparisons=comparisons,
        chart=cost_chart(plans, figures, grace),
        current_code=state.period.plan_code if state.period else None,
    )
