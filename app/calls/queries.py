"""Reads of a seat's call data for its call report, always within the current tenant.

A report covers a *scope* — a billing period (M1, M2, ...) or dates — narrowed by filters
(received dates, last disposition, source, a search by name or phone). The KPIs of DESIGN §1 are
computed over exactly the leads the filters select (every page of them), with the same rules as
the usage counters, so a period's report with no filters agrees with the dashboard:

- in a billing period, the report lists the leads *received* in it and the leads *called* in it
  (billed there: its month key), so a lead received at the end of M1 and first called in M2
  shows in both; "leads received" counts the first kind, "leads called" the second;
- with dates instead of a period, it lists the leads received on those days, and "leads called"
  counts those of them that have been called (whenever that was);
- speed to lead (received → first attempt), contact rate (contacted ÷ called) and transfers +
  appointments describe the called leads; "open leads" counts the listed leads not closed.

This page reads raw leads and attempts (it is a per-lead report of one seat); the dashboards
read the counters.
"""

from __future__ import annotations

import csv
import enum
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
import sqlalchemy as sa

from app.extensions import db
from app.models import BillingPeriod, CallAttempt, Disposition, Lead, PeriodStatus, Seat

PAGE_SIZE = 50
NOT_CALLED = "not_called"
DATES_SCOPE = "dates"
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PHONE_SEPARATORS = (" ", "(", ")", "-", ".", "+", "/")


class Sort(enum.StrEnum):
    """The report's orders; a leading "-" is newest first."""

    RECEIVED_DESC = "-received"
    RECEIVED = "received"
    FIRST_ATTEMPT_DESC = "-first_attempt"
    FIRST_ATTEMPT = "first_attempt"

    @property
    def column(self) -> str:
        return self.value.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")


@dataclass(frozen=True)
class ReportFilters:
    """What the user asked the report for. `period_key` None means "dates, not a period"."""

    period_key: str | None = None
    received_from: date | None = None
    received_to: date | None = None
    # A Disposition (the lead's last one), NOT_CALLED, or None for any.
    disposition: Disposition | str | None = None
    source: str = ""
    search: str = ""
    sort: Sort = Sort.RECEIVED_DESC
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str], default_period_key: str | None) -> ReportFilters:
        """Read the report's query string; a value that does not parse is left out.

        `period` is a month key, or "dates" for no period; missing, it is
        `default_period_key` (the open period's).
        """
        period = args.get("period", "").strip().upper()
        if period == DATES_SCOPE.upper() or (not period and default_period_key is None):
            period_key = None
        else:
            period_key = period if re.fullmatch(r"M\d{1,4}", period) else default_period_key
        disposition: Disposition | str | None = None
        if args.get("disposition") == NOT_CALLED:
            disposition = NOT_CALLED
        elif args.get("disposition") in {d.value for d in Disposition}:
            disposition = Disposition(args["disposition"])
        sort = args.get("sort", "")
        page = args.get("page", "")
        return cls(
            period_key=period_key,
            received_from=_date(args.get("from", "")),
            received_to=_date(args.get("to", "")),
            disposition=disposition,
            source=args.get("source", "").strip()[:64],
            search=args.get("q", "").strip()[:100],
            sort=Sort(sort) if sort in set(Sort) else Sort.RECEIVED_DESC,
            page=max(1, int(page)) if page.isdigit() and len(page) < 7 else 1,
        )

    def query_args(self, **changes: Any) -> dict[str, str]:
        """These filters as a query string for `url_for`, with `changes` applied."""
        filters = replace(self, **changes) if changes else self
        args = {"period": filters.period_key or DATES_SCOPE}
        optional = {
            "from": filters.received_from.isoformat() if filters.received_from else "",
            "to": filters.received_to.isoformat() if filters.received_to else "",
            "disposition": str(filters.disposition or ""),
            "source": filters.source,
            "q": filters.search,
            "sort": "" if filters.sort is Sort.RECEIVED_DESC else filters.sort.value,
            "page": str(filters.page) if filters.page > 1 else "",
        }
        return args | {key: value for key, value in optional.items() if value}

    @property
    def narrowed(self) -> bool:
        """True when a filter beyond the period or dates is set."""
        return bool(self.disposition or self.source or self.search)

    def sort_for(self, column: str) -> Sort:
        """The order a click on `column`'s header asks for: newest first, then toggles."""
        if self.sort.column == column and self.sort.descending:
            return Sort(column)
        return Sort(f"-{column}")


@dataclass(frozen=True)
class PeriodOption:
    key: str
    label: str
    is_open: bool


@dataclass(frozen=True)
class LeadRow:
    """One line of the report; times are in the account's time zone."""

    lead_id: int
    external_id: str
    name: str
    phone: str
    email: str
    source: str
    received_at: datetime
    first_attempt_at: datetime | None
    attempts: int
    last_disposition: Disposition | None
    month_key: str | None
    closed: bool

    @property
    def speed_to_lead(self) -> timedelta | None:
        if self.first_attempt_at is None:
            return None
        # An attempt logged before its lead (a dialer's clock running early) counts as instant.
        return max(self.first_attempt_at - self.received_at, timedelta(0))


@dataclass(frozen=True)
class Kpis:
    """DESIGN §1's KPIs of the leads a report selects; speeds are None with nothing called."""

    leads_received: int
    leads_called: int
    leads_contacted: int
    transfers: int
    appointments: int
    open_leads: int
    speed_median: timedelta | None
    speed_p95: timedelta | None

    @property
    def contact_rate(self) -> float | None:
        """Contacted ÷ called, or None when nothing was called."""
        return self.leads_contacted / self.leads_called if self.leads_called else None


@dataclass(frozen=True)
class CallReport:
    """One page of a seat's call report and the KPIs of all its pages."""

    filters: ReportFilters
    period: BillingPeriod | None
    rows: list[LeadRow]
    total: int
    page: int
    pages: int
    kpis: Kpis
    # What the report covers, for people: a title ("M3 · Mar 5 – Apr 4, 2025") and a sentence.
    title: str
    explanation: str

    @property
    def first_index(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1 if self.total else 0

    @property
    def last_index(self) -> int:
        return min(self.page * PAGE_SIZE, self.total)


@dataclass(frozen=True)
class AttemptRow:
    """One call attempt on a lead's timeline (times in the account's time zone)."""

    attempted_at: datetime
    isa_agent: str
    disposition: Disposition
    duration_seconds: int
    notes: str
    late: bool
    period_key: str


def report_periods(zone: ZoneInfo) -> list[PeriodOption]:
    """The account's billing periods, newest first, labelled with the month they start in."""
    periods = db.session.scalars(
        sa.select(BillingPeriod).order_by(BillingPeriod.starts_at.desc(), BillingPeriod.id.desc())
    ).all()
    options: list[PeriodOption] = []
    seen: set[str] = set()
    for period in periods:
        if period.key in seen:  # a later subscription's M1 hides an older one's
            continue
        seen.add(period.key)
        first, _last = _local_days(period, zone)
        is_open = period.status is PeriodStatus.OPEN
        # Short enough for a narrow select; the report's title gives the period's dates.
        label = f"{period.key} · current" if is_open else f"{period.key} · {first:%b} {first.year}"
        options.append(PeriodOption(period.key, label, is_open))
    return options


def default_period_key(options: Sequence[PeriodOption]) -> str | None:
    """The open period's key, else the latest period's, else None (no periods: dates)."""
    for option in options:
        if option.is_open:
            return option.key
    return options[0].key if options else None


def lead_sources(seat_id: int) -> list[str]:
    """The sources a seat's leads came from, alphabetically."""
    return list(
        db.session.scalars(
            sa.select(Lead.source)
            .where(Lead.seat_id == seat_id, Lead.source != "")
            .distinct()
            .order_by(Lead.source)
        )
    )


def seat_has_leads(seat_id: int) -> bool:
    """Whether any lead was ever received for the seat."""
    found = db.session.scalar(sa.select(Lead.id).where(Lead.seat_id == seat_id).limit(1))
    return found is not None


def call_report(seat: Seat, filters: ReportFilters, zone: ZoneInfo) -> CallReport:
    """One page (PAGE_SIZE leads) of the seat's report, and the KPIs of every page.

    A page past the last one shows the last page.
    """
    period = _period(filters.period_key)
    scope = _Scope.build(seat.id, filters, period, zone)
    kpis = _kpis(scope)
    total = _count(scope)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(filters.page, pages)
    rows = _rows(scope, filters.sort, zone, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    title, explanation = _describe(filters, period, zone)
    return CallReport(
        replace(filters, page=page), period, rows, total, page, pages, kpis, title, explanation
    )


def call_report_rows(seat: Seat, filters: ReportFilters, zone: ZoneInfo) -> list[LeadRow]:
    """Every lead of the report, in the page's order (what the CSV export holds)."""
    scope = _Scope.build(seat.id, filters, _period(filters.period_key), zone)
    return _rows(scope, filters.sort, zone)


def seat_lead(seat_id: int, lead_id: int) -> Lead | None:
    """The lead if it is one of the seat's (the tenant filter applies too)."""
    return db.session.scalar(sa.select(Lead).where(Lead.id == lead_id, Lead.seat_id == seat_id))


def lead_row(lead: Lead, zone: ZoneInfo) -> LeadRow:
    """A lead as the report shows it."""
    month_index = None
    if lead.billed_period_id is not None:
        month_index = db.session.scalar(
            sa.select(BillingPeriod.month_index).where(BillingPeriod.id == lead.billed_period_id)
        )
    return _lead_row(lead, month_index, zone)


def lead_timeline(lead_id: int, zone: ZoneInfo) -> list[AttemptRow]:
    """A lead's call attempts, oldest first (ties in the order they were recorded)."""
    rows = db.session.execute(
        sa.select(CallAttempt, BillingPeriod.month_index)
        .join(BillingPeriod, BillingPeriod.id == CallAttempt.period_id)
        .where(CallAttempt.lead_id == lead_id)
        .order_by(CallAttempt.attempted_at, CallAttempt.id)
    ).all()
    return [
        AttemptRow(
            attempted_at=attempt.attempted_at.astimezone(zone),
            isa_agent=attempt.isa_agent,
            disposition=attempt.disposition,
            duration_seconds=attempt.duration_seconds,
            notes=attempt.notes,
            late=attempt.late,
            period_key=f"M{month_index}",
        )
        for attempt, month_index in rows
    ]


# --- CSV ------------------------------------------------------------------------------------

CSV_HEADER = (
    "Lead",
    "Phone",
    "Email",
    "Source",
    "Received",
    "First attempt",
    "Speed to lead (minutes)",
    "Attempts",
    "Last disposition",
    "Month key",
    "Status",
    "Lead reference",
)


def call_report_csv(rows: Sequence[LeadRow], zone: ZoneInfo) -> str:
    """The report's rows as CSV, times local to `zone`, formula-like cells neutralised."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            *CSV_HEADER[:4],
            f"Received ({zone.key})",
            f"First attempt ({zone.key})",
            *CSV_HEADER[6:],
        ]
    )
    for row in rows:
        speed = row.speed_to_lead
        writer.writerow(
            [
                spreadsheet_safe(row.name),
                spreadsheet_safe(format_phone(row.phone)),
                spreadsheet_safe(row.email),
                spreadsheet_safe(row.source),
                format_csv_time(row.received_at),
                format_csv_time(row.first_attempt_at),
                "" if speed is None else f"{speed.total_seconds() / 60:.1f}",
                row.attempts,
                row.last_disposition.label if row.last_disposition else "Not called",
                row.month_key or "",
                "Closed" if row.closed else "Open",
                spreadsheet_safe(row.external_id),
            ]
        )
    return out.getvalue()


def spreadsheet_safe(text: str) -> str:
    """`text`, with a leading quote when a spreadsheet would run it as a formula."""
    return f"'{text}" if text.startswith(_FORMULA_START) else text


# --- formatting shared by the page and the CSV ------------------------------------------------


def format_phone(stored: str) -> str:
    """A stored phone for people: national format for US numbers, international otherwise;
    anything that does not parse is shown as stored."""
    try:
        number = phonenumbers.parse(stored, "US")
    except phonenumbers.NumberParseException:
        return stored
    if not phonenumbers.is_valid_number(number):
        return stored
    kind = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 1
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, kind)


def format_speed(delta: timedelta | None) -> str:
    """A duration for people: "40 s", "4 min", "1 h 5 min", "2 d 3 h"; "—" for None."""
    if delta is None:
        return "—"
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def format_duration(seconds: int) -> str:
    """A call's length as M:SS (H:MM:SS from an hour)."""
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def format_moment(moment: datetime | None, today: date | None = None) -> str:
    """A local time for a table cell: "Mar 5, 2:14 PM" ("Mar 5, 2024, ..." in another year)."""
    if moment is None:
        return "—"
    day = f"{moment:%b} {moment.day}"
    if today is not None and moment.year != today.year:
        day += f", {moment.year}"
    hour = moment.hour % 12 or 12
    return f"{day}, {hour}:{moment:%M} {'AM' if moment.hour < 12 else 'PM'}"


def format_csv_time(moment: datetime | None) -> str:
    """A local time a spreadsheet reads as a date and time: "2025-03-05 14:14"."""
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def format_day_range(first: date, last: date) -> str:
    """ "Mar 5 – Apr 4, 2025" (both years when they differ)."""
    if first.year != last.year:
        return f"{first:%b} {first.day}, {first.year} – {last:%b} {last.day}, {last.year}"
    return f"{first:%b} {first.day} – {last:%b} {last.day}, {last.year}"


def percentile(values: Sequence[timedelta], fraction: float) -> timedelta | None:
    """The nearest-rank percentile: the smallest value with at least `fraction` of the values
    at or below it (p95 of 20 values is the 19th smallest). None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def median(values: Sequence[timedelta]) -> timedelta | None:
    """The middle value (the mean of the middle two for an even count). None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


# --- the queries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """The report's leads as SQL: which rows, and which of them count as received / called."""

    where: sa.ColumnElement[bool]
    received: sa.ColumnElement[bool]
    called: sa.ColumnElement[bool]

    @classmethod
    def build(
        cls, seat_id: int, filters: ReportFilters, period: BillingPeriod | None, zone: ZoneInfo
    ) -> _Scope:
        conditions: list[sa.ColumnElement[bool]] = [Lead.seat_id == seat_id]
        received: sa.ColumnElement[bool] = sa.true()
        called: sa.ColumnElement[bool] = Lead.first_attempt_at.is_not(None)
        if period is not None:
            received = sa.and_(
                Lead.received_at >= period.starts_at, Lead.received_at < period.ends_at
            )
            called = Lead.billed_period_id == period.id
            conditions.append(sa.or_(received, called))
        elif filters.period_key is not None:
            conditions.append(sa.false())  # a month key the account does not have
        if filters.received_from:
            conditions.append(Lead.received_at >= _local_midnight(filters.received_from, zone))
        if filters.received_to:
            next_day = filters.received_to + timedelta(days=1)
            conditions.append(Lead.received_at < _local_midnight(next_day, zone))
        if filters.disposition == NOT_CALLED:
            conditions.append(Lead.last_disposition.is_(None))
        elif isinstance(filters.disposition, Disposition):
            conditions.append(Lead.last_disposition == filters.disposition)
        if filters.source:
            conditions.append(Lead.source == filters.source)
        if filters.search:
            conditions.append(_search(filters.search))
        return cls(sa.and_(*conditions), received, called)


def _search(text: str) -> sa.ColumnElement[bool]:
    """Name contains `text`, or the phone's digits contain its digits (any formatting)."""
    matches = [Lead.name.icontains(text, autoescape=True)]
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 3:
        bare: sa.ColumnElement[str] = Lead.phone.expression
        for separator in _PHONE_SEPARATORS:
            bare = sa.func.replace(bare, separator, "")
        matches.append(bare.contains(digits, autoescape=True))
        if len(digits) == 11 and digits.startswith("1"):  # +1 917 ... typed, (917) ... stored
            matches.append(bare.contains(digits[1:], autoescape=True))
    return sa.or_(*matches)


def _period(key: str | None) -> BillingPeriod | None:
    if key is None:
        return None
    return db.session.scalar(
        sa.select(BillingPeriod)
        .where(BillingPeriod.month_index == int(key[1:]))
        .order_by(BillingPeriod.starts_at.desc())
        .limit(1)
    )


def _count(scope: _Scope) -> int:
    return db.session.scalar(sa.select(sa.func.count(Lead.id)).where(scope.where)) or 0


def _kpis(scope: _Scope) -> Kpis:
    def had(disposition: Disposition) -> sa.Exists:
        return sa.exists().where(
            CallAttempt.lead_id == Lead.id, CallAttempt.disposition == disposition
        )

    def number_of(*conditions: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(sa.case((sa.and_(*conditions), 1), else_=0)), 0)

    counts = db.session.execute(
        sa.select(
            number_of(scope.received),
            number_of(scope.called),
            number_of(scope.called, Lead.contacted.is_(True)),
            number_of(scope.called, had(Disposition.LIVE_TRANSFER)),
            number_of(scope.called, had(Disposition.BOOKED_APPOINTMENT)),
            number_of(Lead.closed.is_(False)),
        ).where(scope.where)
    ).one()
    speeds = [
        max(first - received, timedelta(0))
        for received, first in db.session.execute(
            sa.select(Lead.received_at, Lead.first_attempt_at).where(
                scope.where, scope.called, Lead.first_attempt_at.is_not(None)
            )
        )
        if first is not None
    ]
    received, called, contacted, transfers, appointments, open_leads = (int(n) for n in counts)
    return Kpis(
        leads_received=received,
        leads_called=called,
        leads_contacted=contacted,
        transfers=transfers,
        appointments=appointments,
        open_leads=open_leads,
        speed_median=median(speeds),
        speed_p95=percentile(speeds, 0.95),
    )


def _rows(
    scope: _Scope, sort: Sort, zone: ZoneInfo, limit: int | None = None, offset: int = 0
) -> list[LeadRow]:
    column = Lead.received_at if sort.column == "received" else Lead.first_attempt_at
    direction = sa.desc if sort.descending else sa.asc
    query = (
        sa.select(Lead, BillingPeriod.month_index)
        .outerjoin(BillingPeriod, BillingPeriod.id == Lead.billed_period_id)
        .where(scope.where)
        # Leads not called yet go last in either direction of "first attempt".
        .order_by(column.is_(None), direction(column), direction(Lead.id))
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return [_lead_row(lead, month_index, zone) for lead, month_index in db.session.execute(query)]


def _lead_row(lead: Lead, month_index: int | None, zone: ZoneInfo) -> LeadRow:
    return LeadRow(
        lead_id=lead.id,
        external_id=lead.external_id,
        name=lead.name,
        phone=lead.phone,
        email=lead.email,
        source=lead.source,
        received_at=lead.received_at.astimezone(zone),
        first_attempt_at=lead.first_attempt_at.astimezone(zone) if lead.first_attempt_at else None,
        attempts=lead.attempts_count,
        last_disposition=lead.last_disposition,
        month_key=f"M{month_index}" if month_index is not None else None,
        closed=lead.closed,
    )


def _describe(
    filters: ReportFilters, period: BillingPeriod | None, zone: ZoneInfo
) -> tuple[str, str]:
    """A title for what the report covers, and a sentence saying which leads it counts."""
    start, end = filters.received_from, filters.received_to
    if start and end:
        dates = format_day_range(start, end)
    elif start:
        dates = f"since {start:%b} {start.day}, {start.year}"
    elif end:
        dates = f"until {end:%b} {end.day}, {end.year}"
    else:
        dates = ""
    if period is not None:
        first, last = _local_days(period, zone)
        title = f"{period.key} · {format_day_range(first, last)}"
        explanation = f"Leads received or first called in {period.key}"
        if dates:
            explanation += f", received {dates}"
    elif filters.period_key is not None:
        return filters.period_key, f"This account has no billing period {filters.period_key}."
    elif dates:
        title, explanation = f"Received {dates}", f"Leads received {dates}"
    else:
        title, explanation = "All leads", "Every lead of this seat"
    narrowed = []
    if filters.disposition == NOT_CALLED:
        narrowed.append("not called yet")
    elif isinstance(filters.disposition, Disposition):
        narrowed.append(f"with last disposition {filters.disposition.label}")
    if filters.source:
        narrowed.append(f"from {filters.source}")
    if filters.search:
        narrowed.append(f"matching “{filters.search}”")
    if narrowed:
        explanation += " — only those " + ", ".join(narrowed)
    return title, explanation + "."


def _local_days(period: BillingPeriod, zone: ZoneInfo) -> tuple[date, date]:
    first = period.starts_at.astimezone(zone).date()
    last = (period.ends_at.astimezone(zone) - timedelta(microseconds=1)).date()
    return first, last


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone)


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None
