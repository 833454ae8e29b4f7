"""A seat's call report, its CSV export and a lead's page.

The routes sit in the seats blueprint's URL space (/a/<account>/seats/<seat_id>/calls, ...) and
are registered on it (their endpoints are `seats.calls`, `seats.calls_csv`, `seats.lead`); the
reads live in `app.calls.queries`. Any role may open a report of a seat it can see: owners,
admins and viewers every seat of the account, a seat member only their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, request, url_for

from app.calls.queries import (
    PeriodOption,
    ReportFilters,
    call_report,
    call_report_csv,
    call_report_rows,
    default_period_key,
    format_duration,
    format_moment,
    format_phone,
    format_speed,
    lead_row,
    lead_sources,
    lead_timeline,
    report_periods,
    seat_has_leads,
    seat_lead,
)
from app.models import Disposition, Seat
from app.permissions import Permission
from app.seats import bp
from app.tenancy import get_or_404
from app.web import can, current_account, current_membership, render, requires


@bp.context_processor
def _call_report_formatting() -> dict[str, Any]:
    """The formatting the call report's templates share with its CSV."""
    return {
        "format_phone": format_phone,
        "format_speed": format_speed,
        "format_moment": format_moment,
        "format_duration": format_duration,
        "dispositions": list(Disposition),
    }


def _report_seat(seat_id: int) -> Seat:
    """The seat, if this member may see it: any seat of the account, or a seat member's own.

    Another seat is a 404, as another account's would be: its existence is not confirmed.
    """
    if not can(Permission.VIEW_ALL_SEATS) and current_membership().seat_id != seat_id:
        abort(404)
    return get_or_404(Seat, seat_id)


def _report_filters() -> tuple[ReportFilters, list[PeriodOption], ZoneInfo]:
    zone = ZoneInfo(current_account().timezone)
    periods = report_periods(zone)
    return ReportFilters.from_args(request.args, default_period_key(periods)), periods, zone


def _report_url(seat_id: int, filters: ReportFilters, **changes: Any) -> str:
    args: dict[str, Any] = {"seat_id": seat_id, **filters.query_args(**changes)}
    return url_for("seats.calls", **args)


@bp.get("/<int:seat_id>/calls")
@requires(Permission.VIEW_REPORTS)
def calls(seat_id: int) -> Response:
    seat = _report_seat(seat_id)
    filters, periods, zone = _report_filters()
    report = call_report(seat, filters, zone)
    return render(
        "calls/report.html",
        partial="calls/_report.html",
        seat=seat,
        report=report,
        periods=periods,
        sources=lead_sources(seat.id),
        seat_has_leads=seat_has_leads(seat.id),
        today=datetime.now(zone).date(),
        page_url=lambda page: _report_url(seat.id, report.filters, page=page),
    )


@bp.get("/<int:seat_id>/calls.csv")
@requires(Permission.VIEW_REPORTS)
def calls_csv(seat_id: int) -> Response:
    seat = _report_seat(seat_id)
    filters, _periods, zone = _report_filters()
    body = call_report_csv(call_report_rows(seat, filters, zone), zone)
    scope = filters.period_key or "dates"
    # The byte-order mark makes Excel read the file as UTF-8 (names with accents).
    response = Response("\ufeff" + body, mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="calls-{seat.reference}-{scope}.csv"'
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/<int:seat_id>/leads/<int:lead_id>")
@requires(Permission.VIEW_REPORTS)
def lead(seat_id: int, lead_id: int) -> Response:
    seat = _report_seat(seat_id)
    found = seat_lead(seat.id, lead_id)
    if found is None:
        abort(404)
    zone = ZoneInfo(current_account().timezone)
    return render(
        "calls/lead.html",
        seat=seat,
        lead=lead_row(found, zone),
        attempts=lead_timeline(found.id, zone),
        today=datetime.now(zone).date(),
    )
