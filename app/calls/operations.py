"""Recording leads and call attempts, and the usage counters kept with them. Flush, never commit.

Each function opens the tenant context of the seat's account itself. The counters (`SeatUsage`
per period and seat, `UsageDay` per period, seat and local day) change in the same transaction
as the call data, by upserts.

Locks are always taken in one order — billing periods (shared, by id), the lead (exclusive),
the attempt's unique event id, seat_usage rows (by period), usage_days rows (by period and day),
the seat — so two deliveries queue instead of deadlocking, and a period close (which takes its
period's row exclusively) waits for the call data in flight, or the call data waits for the close
and then sees the period closed. A transaction that records several items should record them in
(seat, lead, time) order to keep that property across items.

What counts, and where (DESIGN §1, plus the decisions it leaves open):

- A lead is *called* once, in the period its first recorded attempt lands in (its month key,
  `Lead.billed_period_id`). Later attempts never count again. An attempt that is earlier than the
  lead's first attempt but arrives after it does not count either and never moves the month key
  (users may have seen it and its period may be invoiced); it does move `Lead.first_attempt_at`
  (and the lead's day on the usage chart), so speed to lead stays true.
- An attempt lands in the billing period containing its time. When that period is no longer open
  (closed, or being closed right now), or when its time is before the subscription began, it lands
  in the open period flagged `late`; issued invoices never change. An attempt after the open
  period's end is refused with `RetryLater`: its period opens only when the open one closes.
- `late_leads` of a period: its called leads whose first attempt is before the period began.
- `leads_contacted`, `transfers` and `appointments` describe the cohort of leads billed in a
  period, each lead at most once per counter and whenever its attempts arrive: contacted when any
  attempt reached the person, a transfer when any attempt was a Live Transfer, an appointment when
  any was a Booked Appointment (one lead can be both). So contacted ÷ called never exceeds 1.
  These may change after their period closed; a closed period's `leads_called` never does.
- `attempts` counts attempts by the period they landed in.
- `leads_received` counts a lead in the period containing its received time, else in the open
  period of the moment.
- An attempt made at or after the moment its seat was deactivated is refused: the ISA team does
  not work a deactivated seat's leads, so no such call is counted or billed. One made before
  (data arriving late) is recorded as usual.
- A lead closes at its first closing disposition and stays closed. Its last disposition is that of
  its latest attempt by time (on a tie, the one recorded last).
- `UsageDay` puts a lead on the local day (account's time zone) of its first attempt or of its
  reception, pulled inside its period's days (a late lead lands on the period's first day).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from app.billing import as_utc
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    CallAttempt,
    Disposition,
    Lead,
    PeriodStatus,
    Seat,
    SeatUsage,
    UsageDay,
)
from app.tenancy import tenant_context

USAGE_FIELDS = (
    "leads_received",
    "leads_called",
    "leads_contacted",
    "transfers",
    "appointments",
    "attempts",
    "late_leads",
)
DAY_FIELDS = ("leads_called", "leads_received")
# The dispositions a lead is counted for once, and the SeatUsage counter that counts it.
_CounterRow = TypeVar("_CounterRow", SeatUsage, UsageDay)
_OUTCOME_COUNTERS = {
    Disposition.LIVE_TRANSFER: "transfers",
    Disposition.BOOKED_APPOINTMENT: "appointments",
}


class CallDataError(Exception):
    """Call data the ingestion refuses; the message says why."""


class NoOpenPeriod(CallDataError):
    """The account has no open billing period (its plan ended): the attempt cannot be counted."""


class SeatDeactivated(CallDataError):
    """The attempt was made after its seat was deactivated: it is not counted."""


class RetryLater(CallDataError):
    """The data belongs to a billing period that is not open yet; send it again later."""


@dataclass(frozen=True)
class Drift:
    """A stored counter that differed from the raw call data (`day` is None for SeatUsage)."""

    period_id: int
    period_key: str
    seat_id: int
    day: date | None
    field: str
    stored: int
    computed: int


def record_lead(
    seat: Seat,
    external_id: str,
    name: str,
    phone: str,
    email: str,
    source: str,
    received_at: datetime,
) -> tuple[Lead, bool]:
    """Store a lead a seat sent in, once per (seat, `external_id`); return it and whether it is new.

    A repeat returns the stored lead and changes nothing. A new lead is counted as received in
    the period containing `received_at` (else the open period, if any) and moves the seat's
    `last_lead_at`. Raises `ValueError` for a naive `received_at` and `RetryLater` when the
    account's open period is being closed twice over while this runs.
    """
    received_at = as_utc(received_at)
    with tenant_context(seat.account_id):
        existing = _lead_by_external_id(seat.id, external_id)
        if existing is not None:
            return existing, False
        own, open_period = _periods_at(received_at)
        lead = Lead(
            account_id=seat.account_id,
            seat_id=seat.id,
            external_id=external_id,
            name=name,
            phone=phone,
            email=email,
            source=source,
            received_at=received_at,
        )
        try:
            _insert_in_savepoint(lead)
        except IntegrityError:
            existing = _lead_by_external_id(seat.id, external_id)
            if existing is None:
                raise
            return existing, False
        bucket = own or open_period
        if bucket is not None:
            changes = _CounterChanges()
            changes.usage[bucket.id]["leads_received"] += 1
            day = _day_in(bucket, received_at, _account_zone(seat.account_id))
            changes.days[bucket.id, day]["leads_received"] += 1
            changes.write(seat.account_id, seat.id)
        db.session.execute(
            sa.update(Seat)
            .where(
                Seat.id == seat.id,
                sa.or_(Seat.last_lead_at.is_(None), Seat.last_lead_at < received_at),
            )
            .values(last_lead_at=received_at)
            .execution_options(synchronize_session="fetch")
        )
        db.session.flush()
    return lead, True


def record_attempt(
    seat: Seat,
    lead: Lead,
    event_id: str,
    attempted_at: datetime,
    disposition: Disposition,
    duration_seconds: int,
    isa_agent: str,
    notes: str,
) -> tuple[CallAttempt, bool]:
    """Store one call attempt, once per `event_id`; return it and whether it is new.

    A repeated `event_id` returns the stored attempt and changes nothing, also when two
    deliveries race (the unique constraint decides, inside a savepoint). A new attempt updates
    its lead's summary and the counters as the module docstring describes. Raises `ValueError`
    for a naive `attempted_at`; `CallDataError` for a negative duration, a lead of another seat,
    or an event id another account already used; `SeatDeactivated` for an attempt made after its
    seat was deactivated; `NoOpenPeriod` when the account has no open period; `RetryLater` for an
    attempt after the open period's end.
    """
    attempted_at = as_utc(attempted_at)
    if duration_seconds < 0:
        raise CallDataError(f"event {event_id}: the duration cannot be negative")
    if lead.seat_id != seat.id or lead.account_id != seat.account_id:
        raise CallDataError(f"event {event_id}: lead {lead.external_id} is not on seat {seat.id}")
    with tenant_context(seat.account_id):
        existing = _attempt_by_event_id(event_id)
        if existing is not None:
            return existing, False
        refusal = deactivated_refusal(seat.reference, seat.deactivated_at, attempted_at)
        if refusal is not None:
            raise SeatDeactivated(f"event {event_id}: {refusal}")
        period, late = _landing_period(attempted_at)
        lead = _locked_lead(lead.id)
        first_of_its_kind = disposition in _OUTCOME_COUNTERS and not _lead_had(lead.id, disposition)
        attempt = CallAttempt(
            account_id=seat.account_id,
            event_id=event_id,
            seat_id=seat.id,
            lead_id=lead.id,
            attempted_at=attempted_at,
            disposition=disposition,
            duration_seconds=duration_seconds,
            isa_agent=isa_agent,
            notes=notes,
            period_id=period.id,
            late=late,
        )
        try:
            _insert_in_savepoint(attempt)
        except IntegrityError as exc:
            existing = _attempt_by_event_id(event_id)
            if existing is not None:
                return existing, False
            if "event_id" in str(exc.orig):
                raise CallDataError(f"event id {event_id} is already used") from exc
            raise
        changes = _CounterChanges()
        changes.usage[period.id]["attempts"] += 1
        billed = _count_called(lead, period, attempted_at, _account_zone(seat.account_id), changes)
        if disposition.contacted and not lead.contacted:
            lead.contacted = True
            changes.usage[billed.id]["leads_contacted"] += 1
        if first_of_its_kind:
            changes.usage[billed.id][_OUTCOME_COUNTERS[disposition]] += 1
        changes.write(seat.account_id, seat.id)
        lead.attempts_count += 1
        if lead.last_attempt_at is None or attempted_at >= lead.last_attempt_at:
            lead.last_attempt_at, lead.last_disposition = attempted_at, disposition
        if disposition.closes_lead:
            lead.closed = True
        db.session.flush()
    return attempt, True


def deactivated_refusal(
    reference: str, deactivated_at: datetime | None, attempted_at: datetime
) -> str | None:
    """Why an attempt at `attempted_at` on a seat deactivated at `deactivated_at` is refused;
    None when the seat was worked then (never deactivated, or deactivated later)."""
    if deactivated_at is None or attempted_at < as_utc(deactivated_at):
        return None
    return (
        f"seat {reference} is deactivated since {as_utc(deactivated_at):%Y-%m-%d %H:%M} UTC: "
        "the ISA team does not work its leads, so attempts made after that are not accepted"
    )


def recompute_counters(account_id: int) -> list[Drift]:
    """Recompute every period's SeatUsage and UsageDay rows of an account from its raw leads and
    attempts, rewrite the stored counters to match, and return where they differed.

    The month keys and late flags stored on leads and attempts are the raw data: they were
    decided when the data arrived and are not decided again. Takes every period row of the
    account exclusively, so call data for the account waits until this transaction ends.
    One difference is expected, not a fault: a lead received at a time no period contains
    (before the subscription began, or after the open period's end but before its close) was
    counted in the period open when it arrived, and a recount after a close has opened another
    period puts it there instead (its own period, or the new open one).
    """
    with tenant_context(account_id):
        periods = list(
            db.session.scalars(
                sa.select(BillingPeriod)
                .order_by(BillingPeriod.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
        if not periods:
            return []
        usage, days = _counters_from_raw_data(periods, _account_zone(account_id))
        keys = {period.id: period.key for period in periods}
        drifts = _rewrite(
            SeatUsage, ("period_id", "seat_id"), USAGE_FIELDS, usage, account_id, keys
        )
        drifts += _rewrite(
            UsageDay, ("period_id", "seat_id", "day"), DAY_FIELDS, days, account_id, keys
        )
        db.session.flush()
    return drifts


class _CounterChanges:
    """One seat's counter increments, gathered first and then written in lock order."""

    def __init__(self) -> None:
        self.usage: defaultdict[int, Counter[str]] = defaultdict(Counter)
        self.days: defaultdict[tuple[int, date], Counter[str]] = defaultdict(Counter)

    def write(self, account_id: int, seat_id: int) -> None:
        for period_id in sorted(self.usage):
            _bump(
                SeatUsage,
                {"period_id": period_id, "seat_id": seat_id},
                account_id,
                self.usage[period_id],
            )
        for period_id, day in sorted(self.days):
            _bump(
                UsageDay,
                {"period_id": period_id, "seat_id": seat_id, "day": day},
                account_id,
                self.days[period_id, day],
            )


def _bump(
    model: type[SeatUsage] | type[UsageDay],
    key: dict[str, Any],
    account_id: int,
    changes: Counter[str],
) -> None:
    """Add `changes` to one counter row, creating it when it does not exist yet."""
    deltas = {field: n for field, n in changes.items() if n}
    if not deltas:
        return
    values = {**key, "account_id": account_id, **deltas}
    increments = {field: getattr(model, field) + n for field, n in deltas.items()}
    if model is SeatUsage:
        # A dashboard poll answers 304 while the version stays put.
        values["version"] = 1
        increments["version"] = SeatUsage.version + 1
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    db.session.execute(
        insert(model)
        .values(**values)
        .on_conflict_do_update(index_elements=list(key), set_=increments)
    )


def _count_called(
    lead: Lead,
    period: BillingPeriod,
    attempted_at: datetime,
    zone: ZoneInfo,
    changes: _CounterChanges,
) -> BillingPeriod:
    """Count the lead as called if this is its first attempt; return the period it is billed in."""
    if lead.billed_period_id is None:
        lead.billed_period_id, lead.first_attempt_at = period.id, attempted_at
        changes.usage[period.id]["leads_called"] += 1
        changes.usage[period.id]["late_leads"] += attempted_at < period.starts_at
        changes.days[period.id, _day_in(period, attempted_at, zone)]["leads_called"] += 1
        return period
    billed = db.session.get_one(BillingPeriod, lead.billed_period_id)
    first = _first_attempt_at(lead.id, lead.first_attempt_at)
    if attempted_at < first:
        old_day, new_day = _day_in(billed, first, zone), _day_in(billed, attempted_at, zone)
        if new_day != old_day:
            changes.days[billed.id, old_day]["leads_called"] -= 1
            changes.days[billed.id, new_day]["leads_called"] += 1
        if attempted_at < billed.starts_at <= first:
            changes.usage[billed.id]["late_leads"] += 1
        lead.first_attempt_at = attempted_at
    return billed


def _first_attempt_at(lead_id: int, first_attempt_at: datetime | None) -> datetime:
    if first_attempt_at is None:
        raise RuntimeError(f"lead {lead_id} has a month key but no first attempt")
    return first_attempt_at


def _landing_period(attempted_at: datetime) -> tuple[BillingPeriod, bool]:
    """The period an attempt at `attempted_at` is recorded in, and whether it is late."""
    own, open_period = _periods_at(attempted_at)
    if open_period is None:
        raise NoOpenPeriod("this account has no open billing period")
    if own is not None and own.status is PeriodStatus.OPEN:
        return own, False
    if attempted_at >= open_period.ends_at:
        raise RetryLater(
            f"{attempted_at.isoformat()} is after the open period ends; its period opens when "
            "that one closes"
        )
    return open_period, True


def _periods_at(moment: datetime) -> tuple[BillingPeriod | None, BillingPeriod | None]:
    """The period containing `moment` and the open period, share-locked, statuses fresh.

    When a close finishes between the look-up and the lock, the open period found is closed by
    the time the lock is granted: look again, once, for the period the close opened.
    """
    for _ in range(2):
        own = db.session.scalars(
            sa.select(BillingPeriod)
            .where(BillingPeriod.starts_at <= moment, BillingPeriod.ends_at > moment)
            .order_by(BillingPeriod.starts_at.desc())
            .limit(1)
        ).first()
        open_period = db.session.scalars(
            sa.select(BillingPeriod)
            .where(BillingPeriod.status == PeriodStatus.OPEN)
            .order_by(BillingPeriod.starts_at.desc())
            .limit(1)
        ).first()
        ids = sorted({period.id for period in (own, open_period) if period is not None})
        db.session.scalars(
            sa.select(BillingPeriod)
            .where(BillingPeriod.id.in_(ids))
            .order_by(BillingPeriod.id)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        ).all()
        if open_period is None or open_period.status is PeriodStatus.OPEN:
            return own, open_period
    raise RetryLater("the account's billing period is being closed; send the data again")


def _lead_by_external_id(seat_id: int, external_id: str) -> Lead | None:
    return db.session.scalars(
        sa.select(Lead).where(Lead.seat_id == seat_id, Lead.external_id == external_id)
    ).one_or_none()


def _attempt_by_event_id(event_id: str) -> CallAttempt | None:
    return db.session.scalars(
        sa.select(CallAttempt).where(CallAttempt.event_id == event_id)
    ).one_or_none()


def _locked_lead(lead_id: int) -> Lead:
    """The lead, row-locked: its attempts are counted one transaction at a time."""
    return db.session.scalars(
        sa.select(Lead)
        .where(Lead.id == lead_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _lead_had(lead_id: int, disposition: Disposition) -> bool:
    found = db.session.scalars(
        sa.select(CallAttempt.id)
        .where(CallAttempt.lead_id == lead_id, CallAttempt.disposition == disposition)
        .limit(1)
    ).first()
    return found is not None


def _insert_in_savepoint(row: Lead | CallAttempt) -> None:
    """Insert `row` alone in a savepoint, so a unique-constraint refusal (a concurrent delivery
    of the same item won) rolls back only the row. Raises that `IntegrityError`."""
    db.session.flush()  # the caller's pending changes stay out of the savepoint
    with db.session.begin_nested():
        db.session.add(row)


def _account_zone(account_id: int) -> ZoneInfo:
    return ZoneInfo(db.session.get_one(Account, account_id).timezone)


def _day_in(period: BillingPeriod, moment: datetime, zone: ZoneInfo) -> date:
    """The local day of `moment`, pulled inside the period's local days."""
    first = period.starts_at.astimezone(zone).date()
    last = period.ends_at.astimezone(zone).date() - timedelta(days=1)
    return min(max(moment.astimezone(zone).date(), first), last)


def _counters_from_raw_data(
    periods: list[BillingPeriod], zone: ZoneInfo
) -> tuple[
    defaultdict[tuple[int, int], Counter[str]], defaultdict[tuple[int, int, date], Counter[str]]
]:
    """SeatUsage values by (period, seat) and UsageDay values by (period, seat, day)."""
    by_id = {period.id: period for period in periods}
    open_periods = [period for period in periods if period.status is PeriodStatus.OPEN]
    open_period = max(open_periods, key=lambda period: period.starts_at, default=None)
    usage: defaultdict[tuple[int, int], Counter[str]] = defaultdict(Counter)
    days: defaultdict[tuple[int, int, date], Counter[str]] = defaultdict(Counter)
    outcomes: defaultdict[int, set[str]] = defaultdict(set)
    for lead_id, disposition in db.session.execute(
        sa.select(CallAttempt.lead_id, CallAttempt.disposition)
        .where(CallAttempt.disposition.in_(list(_OUTCOME_COUNTERS)))
        .distinct()
    ):
        outcomes[lead_id].add(_OUTCOME_COUNTERS[disposition])
    leads = db.session.execute(
        sa.select(
            Lead.id,
            Lead.seat_id,
            Lead.received_at,
            Lead.billed_period_id,
            Lead.first_attempt_at,
            Lead.contacted,
        )
    )
    for lead_id, seat_id, received_at, billed_period_id, first_attempt_at, contacted in leads:
        bucket = _containing(periods, received_at) or open_period
        if bucket is not None:
            usage[bucket.id, seat_id]["leads_received"] += 1
            days[bucket.id, seat_id, _day_in(bucket, received_at, zone)]["leads_received"] += 1
        if billed_period_id is None:
            continue
        billed = by_id[billed_period_id]
        first = _first_attempt_at(lead_id, first_attempt_at)
        counters = usage[billed.id, seat_id]
        counters["leads_called"] += 1
        counters["late_leads"] += first < billed.starts_at
        counters["leads_contacted"] += contacted
        for field in outcomes.get(lead_id, ()):
            counters[field] += 1
        days[billed.id, seat_id, _day_in(billed, first, zone)]["leads_called"] += 1
    attempts = db.session.execute(
        sa.select(
            CallAttempt.period_id, CallAttempt.seat_id, sa.func.count(CallAttempt.id)
        ).group_by(CallAttempt.period_id, CallAttempt.seat_id)
    )
    for period_id, seat_id, count in attempts:
        usage[period_id, seat_id]["attempts"] += count
    return usage, days


def _containing(periods: list[BillingPeriod], moment: datetime) -> BillingPeriod | None:
    """The latest-starting period containing `moment` (as `_periods_at` picks it)."""
    matches = [period for period in periods if period.starts_at <= moment < period.ends_at]
    return max(matches, key=lambda period: period.starts_at, default=None)


def _rewrite(
    model: type[_CounterRow],
    key_names: tuple[str, ...],
    fields: tuple[str, ...],
    computed: Mapping[tuple[Any, ...], Counter[str]],
    account_id: int,
    period_keys: dict[int, str],
) -> list[Drift]:
    """Set every stored counter row of `model` to its computed values; return the differences.

    Keys are `key_names` values, (period_id, seat_id[, day]). Rows with nothing to count are
    zeroed rather than deleted, so a SeatUsage version never goes back.
    """
    stored: dict[tuple[Any, ...], _CounterRow] = {
        tuple(getattr(row, name) for name in key_names): row
        for row in db.session.scalars(sa.select(model).execution_options(populate_existing=True))
    }
    drifts: list[Drift] = []
    for key in sorted(stored.keys() | computed.keys()):
        row = stored.get(key)
        want = computed.get(key, Counter())
        have = {field: getattr(row, field) if row else 0 for field in fields}
        found = [
            Drift(
                period_id=key[0],
                period_key=period_keys[key[0]],
                seat_id=key[1],
                day=key[2] if len(key) > 2 else None,
                field=field,
                stored=have[field],
                computed=want[field],
            )
            for field in fields
            if have[field] != want[field]
        ]
        if not found:
            continue
        drifts += found
        if row is None:
            row = model(account_id=account_id, **dict(zip(key_names, key, strict=True)))
            db.session.add(row)
        for field in fields:
            setattr(row, field, want[field])
        if isinstance(row, SeatUsage):
            row.version = (row.version or 0) + 1
    return drifts
