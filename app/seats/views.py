"""Seats inside an account: the list, a seat's page, adding seats, the Backup, deactivation.

Every change is one transaction: the operation flushes, the view commits once, and a refused
change rolls back and re-renders the form (422) with the user's values and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, flash, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.accounts.queries import seat_history
from app.billing import BillingRuleError
from app.extensions import db
from app.models import AccountKind, Seat
from app.permissions import Permission
from app.seats import bp
from app.seats.forms import (
    BackupForm,
    NewPrimaryForm,
    NewSeatForm,
    onboarding_summary,
    seat_form_data,
)
from app.seats.operations import (
    SOLO_ONE_SEAT,
    SeatRuleError,
    create_seat,
    deactivate_seat,
    reactivate_seat,
    set_backup,
    start_seat_for_new_primary,
)
from app.seats.queries import (
    SeatFilters,
    SeatSort,
    can_add_seats,
    client_labels,
    pending_seat_fees,
    seat_fee_preview,
    seat_page,
    seat_state,
    seat_totals,
    state_counts,
)
from app.tenancy import get_or_404
from app.usage.queries import open_period
from app.web import (
    add_form_error,
    can,
    current_account,
    current_membership,
    is_htmx_request,
    render,
    render_invalid,
    requires,
)


@bp.get("/")
def index() -> Response:
    """The seat list: search, filter by client and status, sort, 50 a page."""
    filters = SeatFilters.from_args(request.args)
    period = open_period()
    sees_all = can(Permission.VIEW_ALL_SEATS)
    listing = seat_page(
        period.id if period else None,
        filters,
        only_seat_id=None if sees_all else current_membership().seat_id,
    )
    show_fees = period is not None and can(Permission.MANAGE_SEATS)
    return render(
        "seats/index.html",
        partial="seats/_results.html",
        listing=listing,
        filters=filters,
        sorts=SeatSort,
        period=period,
        sees_all=sees_all,
        clients=client_labels() if sees_all else [],
        counts=state_counts() if sees_all else None,
        fees=pending_seat_fees(period.id) if show_fees and period else None,
        fee_period=seat_fee_preview(current_account(), period),
        can_add=can_add_seats(current_account()),
        zone=ZoneInfo(current_account().timezone),
        page_url=lambda page: url_for("seats.index", **filters.query_args(page=page)),
    )


def _visible_seat(seat_id: int) -> Seat:
    """The seat, if this member may see it: any seat of the account, or a seat member's own.
    Another seat is a 404, like another account's: its existence is not confirmed."""
    if not can(Permission.VIEW_ALL_SEATS) and current_membership().seat_id != seat_id:
        abort(404)
    return get_or_404(Seat, seat_id)


def _onboard(form: NewSeatForm, create: Callable[[], Seat], **more: Any) -> Response | BaseResponse:
    """The onboarding form of "add a seat" and "a new Primary": its fee shown before it is
    sent; valid, `create` the seat in one transaction; refused, the form again (422)."""
    account = current_account()
    context = {
        "form": form,
        "fee": seat_fee_preview(account, open_period()),
        "blocked": None if can_add_seats(account) else SOLO_ONE_SEAT,
        **more,
    }
    if context["blocked"]:
        # A solo account's second seat: the page explains instead of offering the form.
        response = render("seats/new.html", **context)
        response.status_code = 409 if form.is_submitted() else 200
        return response
    if not form.validate_on_submit():
        if form.is_submitted():
            return render_invalid("seats/new.html", **context)
        return render("seats/new.html", **context)
    try:
        seat = create()
    except (SeatRuleError, BillingRuleError) as refusal:
        db.session.rollback()
        add_form_error(form, str(refusal), getattr(refusal, "field", None))
        return render_invalid("seats/new.html", **context)
    db.session.commit()
    flash(
        f"Seat {seat.reference} added for {seat.primary.name}. "
        "The ISA team starts working its leads now.",
        "success",
    )
    return redirect(url_for("seats.show", seat_id=seat.id), 303)


@bp.route("/new", methods=["GET", "POST"])
@requires(Permission.MANAGE_SEATS)
def new() -> Response | BaseResponse:
    """Add a seat: the onboarding form again."""
    account = current_account()
    form = NewSeatForm(client_label_required=account.kind is AccountKind.AGENCY)
    return _onboard(form, lambda: create_seat(account, form.seat_details()))


@bp.route("/<int:seat_id>/new-primary", methods=["GET", "POST"])
@requires(Permission.MANAGE_SEATS)
def new_primary(seat_id: int) -> Response | BaseResponse:
    """A new seat for a different Primary, prefilled with the old seat's other details."""
    account = current_account()
    old_seat = get_or_404(Seat, seat_id)
    form = NewPrimaryForm(
        client_label_required=account.kind is AccountKind.AGENCY,
        data=None if request.method == "POST" else seat_form_data(old_seat),
    )
    return _onboard(
        form,
        lambda: start_seat_for_new_primary(
            account, old_seat, form.seat_details(), deactivate_old=bool(form.deactivate_old.data)
        ),
        old_seat=old_seat,
    )


def _seat_context(seat: Seat, **more: Any) -> dict[str, Any]:
    """Everything the seat page shows."""
    account = current_account()
    period = open_period()
    views = current_app.view_functions
    return {
        "seat": seat,
        "state": seat_state(seat),
        "onboarding": onboarding_summary(seat.onboarding or {}),
        "zone": ZoneInfo(account.timezone),
        "period": period,
        "totals": seat_totals(seat.id, period.id if period else None),
        "history": seat_history(seat.id, ZoneInfo(account.timezone))
        if can(Permission.VIEW_AUDIT_LOG)
        else None,
        "solo": account.kind is AccountKind.SOLO,
        "can_add": can_add_seats(account),
        "has_call_report": "seats.calls" in views and can(Permission.VIEW_REPORTS),
        "has_usage": "usage.seat_dashboard" in views,
        "backup_form": None,
        # An htmx change answers the seat region, with the flash messages out of band.
        "flash_oob": is_htmx_request(),
        **more,
    }


@bp.get("/<int:seat_id>")
def show(seat_id: int) -> Response:
    """A seat: its people, onboarding details, status and this period's usage."""
    return render("seats/show.html", **_seat_context(_visible_seat(seat_id)))


@bp.get("/<int:seat_id>/backup")
def backup(seat_id: int) -> Response:
    """The Backup card (htmx: after "Cancel"); the seat page otherwise."""
    seat = _visible_seat(seat_id)
    return render("seats/show.html", partial="seats/_backup.html", **_seat_context(seat))


@bp.get("/<int:seat_id>/backup/edit")
@requires(Permission.MANAGE_SEATS)
def edit_backup(seat_id: int) -> Response:
    """The Backup card as a form: add a Backup, or replace the one there is."""
    seat = get_or_404(Seat, seat_id)
    context = _seat_context(seat, backup_form=BackupForm())
    return render("seats/show.html", partial="seats/_backup.html", **context)


def _seat_changed(seat: Seat, message: str) -> Response | BaseResponse:
    """After a committed change: the seat region for htmx, the seat page otherwise."""
    flash(message, "success")
    if is_htmx_request():
        return render("seats/show.html", partial="seats/_seat.html", **_seat_context(seat))
    return redirect(url_for("seats.show", seat_id=seat.id), 303)


def _seat_refused(seat: Seat, refusal: Exception, form: BackupForm | None = None) -> Response:
    """A refused change: rolled back, and the seat region again (422) with the reason, beside
    the Backup form's field when it has one, as a flash message otherwise."""
    db.session.rollback()
    if form is not None:
        add_form_error(form, str(refusal), getattr(refusal, "field", None))
    else:
        flash(str(refusal), "error")
    context = _seat_context(seat, backup_form=form)
    return render_invalid("seats/show.html", partial="seats/_seat.html", **context)


@bp.post("/<int:seat_id>/backup")
@requires(Permission.MANAGE_SEATS)
def save_backup(seat_id: int) -> Response | BaseResponse:
    """Add or replace the Backup (a Backup is never edited in place: a new person)."""
    seat = get_or_404(Seat, seat_id)
    form = BackupForm()
    if not form.validate_on_submit():
        context = _seat_context(seat, backup_form=form)
        return render_invalid("seats/show.html", partial="seats/_seat.html", **context)
    had_backup = seat.backup is not None
    try:
        set_backup(current_account(), seat, form.details())
    except SeatRuleError as refusal:
        return _seat_refused(seat, refusal, form)
    db.session.commit()
    verb = "replaced" if had_backup else "added"
    return _seat_changed(seat, f"Backup {verb}: {form.name.data}.")


@bp.post("/<int:seat_id>/backup/remove")
@requires(Permission.MANAGE_SEATS)
def remove_backup(seat_id: int) -> Response | BaseResponse:
    """Remove the Backup: live transfers go to the Primary only."""
    seat = get_or_404(Seat, seat_id)
    try:
        set_backup(current_account(), seat, None)
    except SeatRuleError as refusal:
        return _seat_refused(seat, refusal)
    db.session.commit()
    return _seat_changed(seat, "Backup removed. The Primary takes every live transfer.")


@bp.post("/<int:seat_id>/deactivate")
@requires(Permission.MANAGE_SEATS)
def deactivate(seat_id: int) -> Response | BaseResponse:
    """Stop the ISA team working the seat's new leads; it stays on the plan."""
    seat = get_or_404(Seat, seat_id)
    try:
        deactivate_seat(current_account(), seat)
    except SeatRuleError as refusal:
        return _seat_refused(seat, refusal)
    db.session.commit()
    return _seat_changed(
        seat, "Seat deactivated. Its leads are not called until you reactivate it."
    )


@bp.post("/<int:seat_id>/reactivate")
@requires(Permission.MANAGE_SEATS)
def reactivate(seat_id: int) -> Response | BaseResponse:
    """Have the ISA team work the seat's new leads again (no new fee)."""
    seat = get_or_404(Seat, seat_id)
    try:
        reactivate_seat(current_account(), seat)
    except SeatRuleError as refusal:
        return _seat_refused(seat, refusal)
    db.session.commit()
    return _seat_changed(seat, "Seat reactivated. The ISA team works its new leads again.")


# A seat's call report (/<seat_id>/calls, calls.csv, /leads/<lead_id>) lives with the call data
# and registers its routes on this blueprint.
from app.calls import views as _call_report_views  # noqa: E402, F401
