from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from cachetools import TTLCache
from flask import (
    Response,
    abort,
    current_app,
    make_response,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup

from app.billing_portal.ledger import ledger_for, plan_terms
from app.models import Account, BillingPeriod, PeriodStatus, Seat, utcnow
from app.permissions import Permission
from app.settings import get_setting
from app.tenancy import get_or_404
from app.usage import bp
from app.usage.charts import daily_chart, usage_bar
from app.usage.etags import not_modified, usage_etag, usage_key
from app.usage.queries import (
    SEAT_SORTS,
    PeriodTotals,
    SeatPage,
    UnknownPeriod,
    catalogue,
    closing_invoice,
    daily_called,
    period_totals,
    periods,
    seat_usage_page,
    shown_period,
)
from app.usage.summary import summarise
from app.web import (
    can,
    current_account,
    current_membership,
    is_htmx_request,
    reads_only,
    render,
)


@dataclass(frozen=True)
class UsageSource:
    """Where the page's figures come from. The product always reads the counters;
    `bench/dashboard.py` swaps in raw-data queries to measure what the counters save."""

    totals: Callable[[int, int | None], PeriodTotals]
    seat_page: Callable[[int, str, bool, int, int, int | None], SeatPage]
    daily: Callable[[int, int | None], dict[date, int]]


COUNTERS = UsageSource(period_totals, seat_usage_page, daily_called)


@bp.get("/")
@reads_only
def dashboard() -> Response:
    """The account's usage; a seat member sees their own seat's."""
    seat_id = None if can(Permission.VIEW_ALL_SEATS) else current_membership().seat_id
    return usage_page(seat_id)


@bp.get("/seats/<int:seat_id>/usage")
@reads_only
def seat_dashboard(seat_id: int) -> Response:
    """One seat's usage (a seat member may open only their own)."""
    seat = get_or_404(Seat, seat_id)
    if not can(Permission.VIEW_ALL_SEATS) and current_membership().seat_id != seat.id:
        abort(404)
    return usage_page(seat.id)


@dataclass(frozen=True)
class RenderedUsage:
    """The page's figures as HTML: its header and its live region."""

    header: Markup
    live: Markup


# Rendered figures, shared by everyone looking at the same page while nothing it shows has
# changed: the key holds the counters' version (see `usage_version`), the account's local
# date, the page's path and query and the seat. What drifts with time alone (the projection
# at the current pace, "active" seats) is at most the time to live old.
_RENDERED: TTLCache[str, RenderedUsage] = TTLCache(maxsize=256, ttl=60)
_RENDERED_LOCK = threading.Lock()


def usage_page(seat_id: int | None, source: UsageSource = COUNTERS) -> Response:
    """The usage page of the chosen period for the account (or one seat)."""
    try:
        shown = shown_period(request.args.get("period", ""), seat_id)
    except UnknownPeriod:
        abort(404)
    if shown is None:
        return render("usage/dashboard.html", rendered=None, seat_id=seat_id)
    period, version = shown
    sort = request.args.get("sort", "called")
    descending = request.args.get("dir", "desc") != "asc"
    if sort not in SEAT_SORTS:
        sort = "called"
    page = request.args.get("page", 1, type=int) or 1
    account = current_account()

    def rendered() -> RenderedUsage:
        context = dashboard_context(account, period, seat_id, sort, descending, page, source)
        return RenderedUsage(
            _fragment("usage/_header.html", context), _fragment("usage/_live.html", context)
        )

    if source is not COUNTERS:
        return _usage_response(rendered(), seat_id, None)
    key = usage_key(account.id, account.timezone, version, seat_id, request.full_path)
    etag = usage_etag(key, is_htmx_request())
    if request.if_none_match.contains(etag):
        return not_modified(etag)
    with _RENDERED_LOCK:
        cached = _RENDERED.get(key)
    if cached is None:
        cached = rendered()
        with _RENDERED_LOCK:
            _RENDERED[key] = cached
    return _usage_response(cached, seat_id, etag)


def _fragment(template: str, context: dict[str, Any]) -> Markup:
    """A template rendered with autoescaping on: safe to insert as it is."""
    return Markup(render_template(template, **context))  # noqa: S704


def _usage_response(rendered: RenderedUsage, seat_id: int | None, etag: str | None) -> Response:
    if is_htmx_request():
        response = make_response(rendered.live)
        response.vary.add("HX-Request")
    else:
        response = render("usage/dashboard.html", rendered=rendered, seat_id=seat_id)
    if etag:
        response.set_etag(etag)
        # Revalidate every time: an unchanged poll then costs one small query and a 304.
        response.headers["Cache-Control"] = "private, no-cache"
    return response


def dashboard_context(
    account: Account,
    period: BillingPeriod,
    seat_id: int | None,
    sort: str,
    descending: bool,
    page: int,
    source: UsageSource = COUNTERS,
) -> dict[str, Any]:
    """What `usage/_live.html` shows of one period (inside the account's tenant context).

    Its links (sorting, pages, polling) go to the current endpoint: the operator console
    shows the same figures on its own read-only page."""
    now = utcnow()
    is_open = period.status is PeriodStatus.OPEN
    ledger = ledger_for(period, account)
    totals = source.totals(period.id, seat_id)
    summary = summarise(
        ledger,
        totals.leads_called,
        now,
        # A seat's page shows the seat's usage; the plan's money (a cheaper plan) is the
        # account's. The days left are the period's either way.
        [plan_terms(plan) for plan in catalogue()] if seat_id is None else [],
        is_open,
    )
    seats = source.seat_page(period.id, sort, descending, page, 50, seat_id)
    rows = seats.rows
    local_today = now.astimezone(ZoneInfo(account.timezone)).date()
    chart = daily_chart(
        ledger.period.start_date,
        ledger.period.day_count,
        local_today,
        source.daily(period.id, seat_id),
        period.allowance,
    )
    groups: dict[str, list[Any]] = {}
    if account.kind.value == "agency" and seat_id is None and sort == "client":
        for row in rows:
            groups.setdefault(row.client_label or "No client", []).append(row)
    return {
        "account": account,
        "period": period,
        "period_value": ledger.period,
        "is_open": is_open,
        "seat_id": seat_id,
        "seat_row": rows[0] if seat_id is not None and rows else None,
        "totals": totals,
        "summary": summary,
        "bar": usage_bar(summary.used, summary.allowance, summary.grace, summary.projected_used),
        "chart": chart,
        "rows": rows,
        "seats": seats,
        "page_url": lambda number: url_for(
            request.endpoint or "usage.dashboard",
            **(request.view_args or {}),
            period=period.key,
            sort=sort,
            dir="desc" if descending else "asc",
            page=number,
        ),
        "groups": groups,
        "sort": sort,
        "descending": descending,
        "periods": periods(),
        "invoice": None if is_open else closing_invoice(period.id),
        "refresh_seconds": int(get_setting("dashboard_refresh_seconds")),
        "billing_url": (
            url_for("billing_portal.index", account=account.slug)
            if "billing_portal.index" in current_app.view_functions
            else None
        ),
        "live_url": request.full_path if request.query_string else request.path,
        "sort_url": lambda key: url_for(
            request.endpoint or "usage.dashboard",
            **(request.view_args or {}),
            period=period.key,
            sort=key,
            dir="asc" if sort == key and descending else "desc",
        ),
    }
