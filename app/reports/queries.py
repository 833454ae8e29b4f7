"""Reads for call reports, always within the current tenant.

What a report counts is what the dashboard and the seat call report count:

- for a billing period, the leads listed are those received in it or first called in it (billed
  there: their month key), as in `app.calls.queries`; the totals and the per-seat figures
  (received, called, contacted, transfers, appointments) are the usage counters the dashboard and
  the invoice read (`app.usage.queries`), the chart is the dashboard's, and the overage is the
  dashboard's and the invoice's (`app.usage.summary`);
- for dates, the leads listed are those received on those days; "called" counts those of them
  that have been called, whenever that was, and every figure is computed from the listed leads;
- speed to lead (median, p95) describes the called leads, "open" the listed leads not closed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.billing import month_index
from app.billing_portal.ledger import ledger_for
from app.calls.queries import (
    Kpis,
    LeadRow,
    PeriodOption,
    format_day_range,
    median,
    percentile,
    report_periods,
)
from app.extensions import db
from app.models import (
    Account,
    AccountKind,
    BillingPeriod,
    CallAttempt,
    Disposition,
    Lead,
    Membership,
    PeriodStatus,
    Person,
    Report,
    ReportStatus,
    Role,
    Seat,
    User,
)
from app.usage.charts import DailyChart, daily_chart
from app.usage.queries import (
    PeriodTotals,
    SeatUsageRow,
    closing_invoice,
    daily_called,
    period_totals,
    seat_usage_page,
)
from app.usage.summary import summarise

REPORTS_PER_PAGE = 20
# The longest date range a report covers (its chart has a bar a day).
MAX_RANGE_DAYS = 366


class ReportScopeError(ValueError):
    """The report names nothing it can cover (a reversed or too long date range)."""


# --- the reports page -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReportListItem:
    """A report as the reports page lists it."""

    report: Report
    title: str
    requested_by: str

    @property
    def in_progress(self) -> bool:
        return self.report.status in (ReportStatus.QUEUED, ReportStatus.RENDERING)


@dataclass(frozen=True)
class ReportList:
    items: list[ReportListItem]
    total: int
    page: int
    pages: int


def report_list(seat_id: int | None, page: int = 1) -> ReportList:
    """The account's reports, newest first; only one seat's when `seat_id` is given (a seat
    member's view)."""
    query = sa.select(Report)
    if seat_id is not None:
        query = query.where(Report.seat_id == seat_id)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // REPORTS_PER_PAGE))
    page = min(max(1, page), pages)
    reports = db.session.scalars(
        query.order_by(Report.id.desc())
        .limit(REPORTS_PER_PAGE)
        .offset((page - 1) * REPORTS_PER_PAGE)
    ).all()
    return ReportList(describe_reports(list(reports)), total, page, pages)


def describe_reports(reports: list[Report]) -> list[ReportListItem]:
    """Each report with its title and who asked for it (three queries, whatever the count)."""
    seat_ids = {r.seat_id for r in reports if r.seat_id is not None}
    period_ids = {r.period_id for r in reports if r.period_id is not None}
    user_ids = {r.requested_by_id for r in reports if r.requested_by_id is not None}
    seats = _seat_names(seat_ids)
    keys = dict(
        db.session.execute(
            sa.select(BillingPeriod.id, BillingPeriod.month_index).where(
                BillingPeriod.id.in_(period_ids)
            )
        ).all()
    )
    users: dict[int, str] = dict(
        db.session.execute(
            sa.select(User.id, sa.func.coalesce(sa.func.nullif(User.name, ""), User.email)).where(
                User.id.in_(user_ids)
            )
        ).all()
    )
    items = []
    for report in reports:
        who = "All seats" if report.seat_id is None else seats.get(report.seat_id, "A seat")
        covers = f"M{keys[report.period_id]}" if report.period_id in keys else _dates(report)
        requested_by = (
            "Automatic, at the period's close"
            if report.automatic
            else users.get(report.requested_by_id or 0, "Someone no longer on the account")
        )
        items.append(ReportListItem(report, f"{who} · {covers}", requested_by))
    return items


def _dates(report: Report) -> str:
    if report.date_from is None or report.date_to is None:
        return "—"
    return format_day_range(report.date_from, report.date_to)


def _seat_names(seat_ids: set[int]) -> dict[int, str]:
    rows = db.session.execute(
        sa.select(Seat.id, Seat.client_label, Person.name)
        .join(Person, Person.id == Seat.primary_person_id)
        .where(Seat.id.in_(seat_ids))
    ).all()
    return {seat_id: f"{label} · {name}" if label else name for seat_id, label, name in rows}


def member_report(report_id: int, seat_id: int | None) -> Report | None:
    """The report, if it is the account's and (for a seat member, `seat_id` given) of that
    seat; None otherwise, so the view answers 404 either way."""
    query = sa.select(Report).where(Report.id == report_id)
    if seat_id is not None:
        query = query.where(Report.seat_id == seat_id)
    return db.session.scalar(query)


def period_options(zone: ZoneInfo) -> list[PeriodOption]:
    """The account's billing periods for the request form, newest first."""
    return report_periods(zone)


def period_for_key(key: str) -> BillingPeriod | None:
    """The account's period with month key `key` (the latest, as the seat report picks it)."""
    index = month_index(key)
    if index is None:
        return None
    return db.session.scalar(
        sa.select(BillingPeriod)
        .where(BillingPeriod.month_index == index)
        .order_by(BillingPeriod.starts_at.desc())
        .limit(1)
    )


def download_name(report: Report, account_slug: str) -> str:
    """The file's name: "brightpath-master-report-M2.pdf",
    "brightpath-ST-00012-report-2026-03-01-to-2026-03-15.csv"."""
    who = "master"
    if report.seat_id is not None:
        seat = db.session.get(Seat, report.seat_id)
        who = seat.reference if seat else "seat"
    period = db.session.get(BillingPeriod, report.period_id) if report.period_id else None
    if period is not None:
        covers = period.key
    elif report.date_from and report.date_to:
        covers = f"{report.date_from.isoformat()}-to-{report.date_to.isoformat()}"
    else:
        covers = str(report.id)
    return f"{account_slug}-{who}-report-{covers}.{report.format.value}"


def owner_emails() -> list[str]:
    """The current account's owners' addresses (who gets the automatic master report)."""
    return sorted(
        db.session.scalars(
            sa.select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.role == Role.OWNER, User.is_active_user.is_(True))
        )
    )


def account_seat_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(Seat.id))) or 0


# --- a report's content ---------------------------------------------------------------------


@dataclass(frozen=True)
class SeatSummary:
    """One seat's figures in the report."""

    seat_id: int
    name: str
    reference: str
    client: str
    received: int
    called: int
    contacted: int
    transfers: int
    appointments: int
    open_leads: int
    speed_median: timedelta | None

    @property
    def contact_rate(self) -> float | None:
        return self.contacted / self.called if self.called else None


@dataclass(frozen=True)
class SeatLeads:
    seat: SeatSummary
    rows: list[LeadRow]


@dataclass(frozen=True)
class PeriodBilling:
    """Where a master report's period stands against the plan (the dashboard's figures)."""

    plan_name: str
    allowance: int
    grace: int
    cpl_cents: int
    used: int
    overage_leads: int
    overage_cents: int
    is_open: bool
    invoice_number: str | None


@dataclass(frozen=True)
class ReportContent:
    """Everything a report shows, as plain values."""

    account_name: str
    account_slug: str
    is_agency: bool
    master: bool
    subject: str  # "All 40 seats" or the seat's name
    scope_title: str  # "M2 · Mar 5 – Apr 4, 2026"
    explanation: str
    period_key: str | None
    billing: PeriodBilling | None
    kpis: Kpis
    seats: list[SeatSummary]
    seat_leads: list[SeatLeads]
    chart: DailyChart
    chart_title: str
    chart_has_pace: bool
    zone: ZoneInfo
    generated_at: datetime
    requested_by: str

    @property
    def lead_count(self) -> int:
        return sum(len(group.rows) for group in self.seat_leads)

    @property
    def title(self) -> str:
        return "Master call report" if self.master else "Seat call report"

    @property
    def client_groups(self) -> dict[str, list[SeatSummary]]:
        """The seats by client label, in order (agencies read their seats by client)."""
        groups: dict[str, list[SeatSummary]] = {}
        for seat in self.seats:
            groups.setdefault(seat.client or "No client", []).append(seat)
        return groups


@dataclass(frozen=True)
class _Scope:
    period: BillingPeriod | None
    first_day: date
    last_day: date
    listed: sa.ColumnElement[bool]


def report_content(report: Report, account: Account, now: datetime) -> ReportContent:
    """Read everything `report` shows. Raises `ReportScopeError` for a reversed or too long
    date range."""
    zone = ZoneInfo(account.timezone)
    scope = _scope(report, zone)
    seat_id = report.seat_id
    seat_rows = _seat_rows(scope.period, seat_id)
    leads = _lead_rows(scope.listed, seat_id, zone)
    flags = _outcomes(leads) if scope.period is None else {}
    by_seat: defaultdict[int, list[_Listed]] = defaultdict(list)
    for lead in leads:
        by_seat[lead.seat_id].append(lead)
    seats: list[SeatSummary] = []
    for row in seat_rows:
        listed = by_seat.get(row.seat_id, [])
        called = [lead for lead in listed if _is_called(lead, scope.period)]
        if scope.period is not None:
            counts = row.totals
            figures = (
                counts.leads_received,
                counts.leads_called,
                counts.leads_contacted,
                counts.transfers,
                counts.appointments,
            )
        else:
            figures = _figures_from_leads(listed, called, flags)
        seats.append(
            SeatSummary(
                seat_id=row.seat_id,
                name=row.primary_name,
                reference=row.reference,
                client=row.client_label,
                received=figures[0],
                called=figures[1],
                contacted=figures[2],
                transfers=figures[3],
                appointments=figures[4],
                open_leads=sum(not lead.row.closed for lead in listed),
                speed_median=median(_speeds(called)),
            )
        )
    all_called = [lead for lead in leads if _is_called(lead, scope.period)]
    if scope.period is not None:
        totals = period_totals(scope.period.id, seat_id)
        figures = (
            totals.leads_received,
            totals.leads_called,
            totals.leads_contacted,
            totals.transfers,
            totals.appointments,
        )
    else:
        figures = _figures_from_leads(leads, all_called, flags)
    speeds = _speeds(all_called)
    kpis = Kpis(
        leads_received=figures[0],
        leads_called=figures[1],
        leads_contacted=figures[2],
        transfers=figures[3],
        appointments=figures[4],
        open_leads=sum(not lead.row.closed for lead in leads),
        speed_median=median(speeds),
        speed_p95=percentile(speeds, 0.95),
    )
    local_now = now.astimezone(zone)
    chart, chart_title = _chart(scope, seat_id, leads, local_now.date(), zone)
    master = seat_id is None
    subject = (
        f"All {len(seats)} seat{'s' if len(seats) != 1 else ''}"
        if master
        else (seats[0].name if seats else "A seat")
    )
    return ReportContent(
        account_name=account.name,
        account_slug=account.slug,
        is_agency=account.kind is AccountKind.AGENCY,
        master=master,
        subject=subject,
        scope_title=_scope_title(scope),
        explanation=_explanation(scope),
        period_key=scope.period.key if scope.period else None,
        billing=_billing(scope.period, account, kpis.leads_called, now) if master else None,
        kpis=kpis,
        seats=seats,
        seat_leads=[
            SeatLeads(seat, [lead.row for lead in by_seat.get(seat.seat_id, [])]) for seat in seats
        ],
        chart=chart,
        chart_title=chart_title,
        chart_has_pace=scope.period is not None,
        zone=zone,
        generated_at=local_now,
        requested_by=_requested_by(report),
    )


def _seat_rows(period: BillingPeriod | None, seat_id: int | None) -> list[SeatUsageRow]:
    """The report's seats by client, then name (every seat of the account, or the one), with
    the period's counters: the dashboard's seat rows, all of them on one page."""
    if period is not None:
        return seat_usage_page(
            period.id, sort="client", descending=False, per_page=1_000_000, seat_id=seat_id
        ).rows
    query = (
        sa.select(Seat.id, Seat.reference, Seat.client_label, Person.name)
        .join(Person, Person.id == Seat.primary_person_id)
        .order_by(Seat.client_label, Person.name, Seat.id)
    )
    if seat_id is not None:
        query = query.where(Seat.id == seat_id)
    none = PeriodTotals(0, 0, 0, 0, 0)
    return [
        SeatUsageRow(row.id, row.reference, row.client_label, row.name, False, none)
        for row in db.session.execute(query)
    ]


@dataclass(frozen=True)
class _Listed:
    """A listed lead and what the figures need to know about it."""

    row: LeadRow
    seat_id: int
    billed_period_id: int | None
    contacted: bool


def _scope(report: Report, zone: ZoneInfo) -> _Scope:
    if report.period_id is not None:
        period = db.session.get_one(BillingPeriod, report.period_id)
        first = period.starts_at.astimezone(zone).date()
        last = (period.ends_at.astimezone(zone) - timedelta(microseconds=1)).date()
        received = sa.and_(Lead.received_at >= period.starts_at, Lead.received_at < period.ends_at)
        return _Scope(period, first, last, sa.or_(received, Lead.billed_period_id == period.id))
    if report.date_from is None or report.date_to is None:
        raise ReportScopeError("The report names neither a billing period nor dates.")
    if report.date_to < report.date_from:
        raise ReportScopeError("The report's date range ends before it starts.")
    if (report.date_to - report.date_from).days >= MAX_RANGE_DAYS:
        raise ReportScopeError(f"A report covers at most {MAX_RANGE_DAYS} days.")
    start = datetime.combine(report.date_from, time(), zone)
    end = datetime.combine(report.date_to + timedelta(days=1), time(), zone)
    listed = sa.and_(Lead.received_at >= start, Lead.received_at < end)
    return _Scope(None, report.date_from, report.date_to, listed)


def _lead_rows(
    listed: sa.ColumnElement[bool], seat_id: int | None, zone: ZoneInfo
) -> list[_Listed]:
    """The listed leads, oldest first within each seat (columns, not ORM objects: a master
    report can list tens of thousands)."""
    query = (
        sa.select(
            Lead.id,
            Lead.seat_id,
            Lead.external_id,
            Lead.name,
            Lead.phone,
            Lead.email,
            Lead.source,
            Lead.received_at,
            Lead.first_attempt_at,
            Lead.attempts_count,
            Lead.last_disposition,
            Lead.billed_period_id,
            BillingPeriod.month_index,
            Lead.closed,
            Lead.contacted,
        )
        .outerjoin(BillingPeriod, BillingPeriod.id == Lead.billed_period_id)
        .where(listed)
        .order_by(Lead.seat_id, Lead.received_at, Lead.id)
    )
    if seat_id is not None:
        query = query.where(Lead.seat_id == seat_id)
    return [
        _Listed(
            row=LeadRow(
                lead_id=row.id,
                external_id=row.external_id,
                name=row.name,
                phone=row.phone,
                email=row.email,
                source=row.source,
                received_at=row.received_at.astimezone(zone),
                first_attempt_at=(
                    row.first_attempt_at.astimezone(zone) if row.first_attempt_at else None
                ),
                attempts=row.attempts_count,
                last_disposition=row.last_disposition,
                month_key=f"M{row.month_index}" if row.month_index is not None else None,
                closed=row.closed,
            ),
            seat_id=row.seat_id,
            billed_period_id=row.billed_period_id,
            contacted=row.contacted,
        )
        for row in db.session.execute(query)
    ]


def _is_called(lead: _Listed, period: BillingPeriod | None) -> bool:
    """Called in the report's sense: billed in its period, or (dates) called at all."""
    if period is not None:
        return lead.billed_period_id == period.id
    return lead.row.first_attempt_at is not None


def _outcomes(leads: list[_Listed]) -> dict[int, set[Disposition]]:
    """Which listed leads ever had a Live Transfer or a Booked Appointment."""
    outcomes: defaultdict[int, set[Disposition]] = defaultdict(set)
    ids = [lead.row.lead_id for lead in leads if lead.row.first_attempt_at is not None]
    wanted = [Disposition.LIVE_TRANSFER, Disposition.BOOKED_APPOINTMENT]
    for start in range(0, len(ids), 5000):  # keeps the IN list within every database's limits
        for lead_id, disposition in db.session.execute(
            sa.select(CallAttempt.lead_id, CallAttempt.disposition)
            .where(
                CallAttempt.lead_id.in_(ids[start : start + 5000]),
                CallAttempt.disposition.in_(wanted),
            )
            .distinct()
        ):
            outcomes[lead_id].add(disposition)
    return outcomes


def _figures_from_leads(
    listed: list[_Listed], called: list[_Listed], outcomes: dict[int, set[Disposition]]
) -> tuple[int, int, int, int, int]:
    """(received, called, contacted, transfers, appointments) counted from the listed leads."""
    had: Counter[Disposition] = Counter()
    for lead in called:
        had.update(outcomes.get(lead.row.lead_id, ()))
    return (
        len(listed),
        len(called),
        sum(lead.contacted for lead in called),
        had[Disposition.LIVE_TRANSFER],
        had[Disposition.BOOKED_APPOINTMENT],
    )


def _speeds(called: list[_Listed]) -> list[timedelta]:
    return [speed for lead in called if (speed := lead.row.speed_to_lead) is not None]


def _chart(
    scope: _Scope, seat_id: int | None, leads: list[_Listed], today: date, zone: ZoneInfo
) -> tuple[DailyChart, str]:
    """A period's chart is the dashboard's (leads called a day, from the counters, with the
    plan's pace); a date range's counts the leads received each day."""
    day_count = (scope.last_day - scope.first_day).days + 1
    if scope.period is not None:
        called = daily_called(scope.period.id, seat_id)
        chart = daily_chart(scope.first_day, day_count, today, called, scope.period.allowance)
        return chart, f"Leads called per day in {scope.period.key}"
    received = Counter(lead.row.received_at.astimezone(zone).date() for lead in leads)
    return daily_chart(scope.first_day, day_count, today, dict(received), 0), (
        "Leads received per day"
    )


def _scope_title(scope: _Scope) -> str:
    dates = format_day_range(scope.first_day, scope.last_day)
    return f"{scope.period.key} · {dates}" if scope.period is not None else dates


def _explanation(scope: _Scope) -> str:
    if scope.period is not None:
        key = scope.period.key
        return (
            f"Lists every lead received in {key} or first called in {key}. A lead counts as "
            f"called, once, in the period of its first call attempt (its month key), so a lead "
            f"received late in one period and first called in the next is listed in both and "
            f"called in the second. Totals and per-seat figures are the usage counters that the "
            f"dashboard and the invoice read."
        )
    return (
        "Lists every lead received on these days. Leads called counts those of them the ISA "
        "team has called, whenever that was; billing counts each lead in the period of its "
        "first call attempt (its month key)."
    )


def _billing(
    period: BillingPeriod | None, account: Account, used: int, now: datetime
) -> PeriodBilling | None:
    if period is None:
        return None
    summary = summarise(ledger_for(period, account), used, now, [], is_open=False)
    invoice = closing_invoice(period.id) if period.status is PeriodStatus.CLOSED else None
    return PeriodBilling(
        plan_name=period.plan_name,
        allowance=summary.allowance,
        grace=summary.grace,
        cpl_cents=period.cpl_cents,
        used=summary.used,
        overage_leads=summary.overage_leads,
        overage_cents=summary.overage_cents,
        is_open=period.status is PeriodStatus.OPEN,
        invoice_number=invoice.number if invoice else None,
    )


def _requested_by(report: Report) -> str:
    if report.automatic:
        return "Automatic, at the period's close"
    if report.requested_by_id is None:
        return "—"
    user = db.session.get(User, report.requested_by_id)
    return (user.name or user.email) if user else "—"
