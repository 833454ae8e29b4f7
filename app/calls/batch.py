"""Recording a batch of leads or call attempts in a few statements. Flush, never commit.

The dialer API delivers up to 1,000 items per request; recording them one by one with
`operations.record_lead` / `record_attempt` costs several round trips per item. This module
records a whole batch with the same rules (the module docstring of `app.calls.operations` states
them) in a fixed number of statements: it looks seats, periods, leads and event ids up in bulk,
inserts leads and attempts with `ON CONFLICT DO NOTHING ... RETURNING` (the unique constraints
decide between racing deliveries), folds the counter changes in memory and applies them as one
upsert per counter table.

The result equals recording the items one at a time, in the batch's order, each item on its own
(an item that fails stores nothing, not even its new lead) — `tests/integration/
test_api_batch_equivalence.py` checks that against `record_lead` and `record_attempt`.

Locks follow the order of `operations`: billing periods (shared, by id), leads (existing ones
by id, then new ones by (seat, external id)), attempts (by event id), seat_usage rows, usage_days
rows, seats — each group sorted — so two batches, or a batch and a single delivery, queue instead
of deadlocking. One rare case remains: a lead created by a concurrent delivery between this
batch's look-up and its insert is locked after the inserts; the caller retries the transaction
if the database reports a deadlock.

A batch spans accounts (the dialer works for every client), so it runs outside the tenant filter;
every row it reads is found through the seat reference an item names, and every row it writes
carries that seat's account.
"""

from __future__ import annotations

import enum
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache, cached_property
from operator import attrgetter
from typing import Any, TypeAlias, cast
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.calls.operations import (
    DAY_FIELDS,
    USAGE_FIELDS,
    NoOpenPeriod,
    RetryLater,
    deactivated_refusal,
)
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
    utcnow,
)
from app.tenancy import unscoped

# The statements work on the tables (SQLAlchemy Core): the rows they read are plain values,
# never ORM objects, which spares the ORM's per-row work.
_LEADS = cast(sa.Table, Lead.__table__)
_ATTEMPTS = cast(sa.Table, CallAttempt.__table__)
_SEAT_USAGE = cast(sa.Table, SeatUsage.__table__)
_USAGE_DAYS = cast(sa.Table, UsageDay.__table__)
_SEATS = cast(sa.Table, Seat.__table__)
_PERIODS = cast(sa.Table, BillingPeriod.__table__)
_ACCOUNTS = cast(sa.Table, Account.__table__)

# The dispositions a lead is counted for once, and the SeatUsage counter that counts it.
_OUTCOME_COUNTERS = {
    Disposition.LIVE_TRANSFER: "transfers",
    Disposition.BOOKED_APPOINTMENT: "appointments",
}
# A lead's summary columns, kept by its attempts.
_SUMMARY = (
    "billed_period_id",
    "first_attempt_at",
    "last_attempt_at",
    "last_disposition",
    "attempts_count",
    "contacted",
    "closed",
)

_summary_values = attrgetter(*_SUMMARY)

_LeadKey: TypeAlias = tuple[int, str]  # (seat id, the lead's external id)
_Select: TypeAlias = sa.Select[*tuple[Any, ...]]


class ItemStatus(enum.StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    ERROR = "error"


@dataclass(frozen=True)
class FieldError:
    """Why an item was refused; `field` names the item's field (None: the item as a whole)."""

    field: str | None
    message: str


@dataclass(frozen=True)
class ItemOutcome:
    status: ItemStatus
    errors: tuple[FieldError, ...] = ()


CREATED = ItemOutcome(ItemStatus.CREATED)
DUPLICATE = ItemOutcome(ItemStatus.DUPLICATE)


def _refused(*errors: FieldError) -> ItemOutcome:
    return ItemOutcome(ItemStatus.ERROR, errors)


@dataclass(frozen=True)
class LeadDetails:
    """What a seat's lead source says about a lead. `phone` is already normalised."""

    name: str
    phone: str
    email: str
    source: str
    received_at: datetime


@dataclass(frozen=True)
class LeadItem:
    """One lead of a `POST /leads` batch, idempotent by (seat, external id)."""

    seat_reference: str
    external_id: str
    details: LeadDetails


@dataclass(frozen=True)
class AttemptItem:
    """One call attempt of a `POST /call-attempts` batch, idempotent by `event_id`.

    `lead` carries the lead's details, needed only the first time the lead is seen.
    """

    event_id: str
    seat_reference: str
    lead_external_id: str
    lead: LeadDetails | None
    attempted_at: datetime
    disposition: Disposition
    duration_seconds: int
    isa_agent: str
    notes: str


def record_lead_batch(items: Sequence[LeadItem]) -> list[ItemOutcome]:
    """Store the leads, each once per (seat, external id); return each item's outcome.

    A lead already stored — earlier in the batch, before it, or by a concurrent delivery — is a
    duplicate and changes nothing. A new lead is counted as received as `record_lead` counts it
    and moves its seat's `last_lead_at`. An unknown seat is refused.
    """
    if not items:
        return []
    outcomes: list[ItemOutcome | None] = [None] * len(items)
    with unscoped():
        seats = _seats_by_reference({item.seat_reference for item in items})
        accounts = _accounts_with_locked_periods({seat.account_id for seat in seats.values()})
        stored = _stored_lead_keys(
            (seats[item.seat_reference].id, item.external_id)
            for item in items
            if item.seat_reference in seats
        )
        new: dict[_LeadKey, _NewLead] = {}
        candidates: dict[_LeadKey, int] = {}
        for index, item in enumerate(items):
            seat = seats.get(item.seat_reference)
            if seat is None:
                outcomes[index] = _unknown_seat(item.seat_reference)
                continue
            key = (seat.id, item.external_id)
            if key in stored or key in new:
                outcomes[index] = DUPLICATE
                continue
            new[key] = _NewLead(seat, item.external_id, item.details)
            candidates[key] = index
        inserted = _insert_leads(new, {})
        tally = _Tally()
        for key, index in candidates.items():
            # Not inserted: a concurrent delivery stored it after the look-up.
            outcomes[index] = CREATED if key in inserted else DUPLICATE
            if key in inserted:
                tally.count_received(accounts, new[key])
        _write_shared_rows(tally, [new[key] for key in inserted])
    return _complete(outcomes)


def record_attempt_batch(items: Sequence[AttemptItem]) -> list[ItemOutcome]:
    """Store the call attempts, each once per event id; return each item's outcome.

    An event id already stored for the seat's account — earlier in the batch, before it, or by a
    concurrent delivery — is a duplicate and changes nothing. A new attempt's lead is found by
    (seat, lead external id) or created from the item's `lead` details; the attempt, its lead's
    summary and the counters change as `record_attempt` changes them. Refused: an unknown seat,
    an event id another account used, an unknown lead without details, an attempt made after its
    seat was deactivated, an account with no open period, an attempt after the open period's end
    (its period opens at the close: send it again later).
    """
    if not items:
        return []
    with unscoped():
        seats = _seats_by_reference({item.seat_reference for item in items})
        accounts = _accounts_with_locked_periods({seat.account_id for seat in seats.values()})
        leads = _locked_leads(
            (seats[item.seat_reference].id, item.lead_external_id)
            for item in items
            if item.seat_reference in seats
        )
        checked = _check_attempts(items, seats, accounts, leads)
        new_leads_tally = _Tally()
        inserted, as_stored = _create_leads(checked, leads, accounts, new_leads_tally)
        stored = _insert_attempts(checked.plan, leads)
        _settle_outcomes(checked, stored)
        tally = _count_recorded(checked, stored, inserted, leads, accounts, new_leads_tally)
        changed = [lead for key, lead in leads.items() if lead.summary() != as_stored[key]]
        _update_leads(sorted(changed, key=lambda lead: lead.id))
        _write_shared_rows(tally, [checked.new_leads[key] for key in inserted])
    return _complete(checked.outcomes)


@dataclass
class _CheckedAttempts:
    """A batch after the checks: the outcomes known so far, the attempts to insert (`plan`), the
    leads to create, and the repeats of an event id within the batch (index -> first index)."""

    outcomes: list[ItemOutcome | None]
    plan: list[_Planned] = field(default_factory=list)
    new_leads: dict[_LeadKey, _NewLead] = field(default_factory=dict)
    repeats: dict[int, int] = field(default_factory=dict)


def _check_attempts(
    items: Sequence[AttemptItem],
    seats: dict[str, _SeatRef],
    accounts: dict[int, _AccountPeriods],
    leads: dict[_LeadKey, _LeadState],
) -> _CheckedAttempts:
    """Sort the items, in order, into refused, duplicates and the plan; an item's new lead is
    known to the items after it only if the item itself passes."""
    checked = _CheckedAttempts(outcomes=[None] * len(items))
    stored_events = _event_accounts({item.event_id for item in items})
    firsts: dict[str, int] = {}
    for index, item in enumerate(items):
        seat = seats.get(item.seat_reference)
        if seat is None:
            checked.outcomes[index] = _unknown_seat(item.seat_reference)
            continue
        owner = stored_events.get(item.event_id)
        if owner is not None:
            checked.outcomes[index] = DUPLICATE if owner == seat.account_id else _event_taken()
            continue
        if item.event_id in firsts:
            checked.repeats[index] = firsts[item.event_id]
            continue
        refusal = deactivated_refusal(seat.reference, seat.deactivated_at, item.attempted_at)
        if refusal is not None:
            checked.outcomes[index] = _refused(FieldError("seat", refusal))
            continue
        key = (seat.id, item.lead_external_id)
        planned, errors = _plan_attempt(index, item, seat, key, accounts[seat.account_id])
        known = key in leads or key in checked.new_leads
        if not known and item.lead is None:
            errors.insert(0, _unknown_lead(item, seat))
        if planned is None or errors:
            checked.outcomes[index] = _refused(*errors)
            continue
        if not known and item.lead is not None:
            checked.new_leads[key] = _NewLead(seat, item.lead_external_id, item.lead)
        firsts[item.event_id] = index
        checked.plan.append(planned)
    return checked


def _create_leads(
    checked: _CheckedAttempts,
    leads: dict[_LeadKey, _LeadState],
    accounts: dict[int, _AccountPeriods],
    tally: _Tally,
) -> tuple[set[_LeadKey], dict[_LeadKey, dict[str, Any]]]:
    """Insert the new leads and add every lead the plan needs to `leads`; return the keys
    inserted, and each lead's summary as its row holds it now.

    A new lead is inserted with the summary its attempts in this batch give it, counted into
    `tally`, so the usual case (every attempt stored) writes it once and counts it once. One a
    concurrent delivery created meanwhile is locked and counted from as stored.
    """
    expected = {key: _LeadState.fresh(lead.seat) for key, lead in checked.new_leads.items()}
    tally.count_attempts([p for p in checked.plan if p.lead_key in expected], expected, accounts)
    inserted = _insert_leads(checked.new_leads, expected)
    leads.update(_locked_leads(set(checked.new_leads) - set(inserted)))
    _load_outcomes_of_history(leads, checked.plan)
    as_stored = {key: lead.summary() for key, lead in leads.items()}
    for key, lead_id in inserted.items():
        expected[key].id = lead_id
        leads[key] = expected[key]
        as_stored[key] = expected[key].summary()
    return set(inserted), as_stored


def _count_recorded(
    checked: _CheckedAttempts,
    stored: set[str],
    inserted: set[_LeadKey],
    leads: dict[_LeadKey, _LeadState],
    accounts: dict[int, _AccountPeriods],
    new_leads_tally: _Tally,
) -> _Tally:
    """The counter changes of the new leads and of the attempts stored, each lead in `leads`
    left in its state after them.

    `_create_leads` counted the new leads' attempts already: kept when every new lead and every
    one of their attempts was stored. Else (a concurrent delivery stored some first) the new
    leads are counted again from scratch, with the attempts stored only.
    """
    recorded = [p for p in checked.plan if p.item.event_id in stored]
    new_attempts = [p for p in checked.plan if p.lead_key in checked.new_leads]
    if len(inserted) == len(checked.new_leads) and all(
        p.item.event_id in stored for p in new_attempts
    ):
        tally = new_leads_tally
        recorded = [p for p in recorded if p.lead_key not in checked.new_leads]
    else:
        tally = _Tally()
        for key in inserted:
            leads[key] = _LeadState.fresh(checked.new_leads[key].seat, leads[key].id)
    for key in inserted:
        tally.count_received(accounts, checked.new_leads[key])
    tally.count_attempts(recorded, leads, accounts)
    return tally


def _settle_outcomes(checked: _CheckedAttempts, stored: set[str]) -> None:
    """The outcome of each planned attempt (a refused insert: a concurrent delivery of the same
    event, or another account's), and of its repeats in the batch."""
    refused_owners = _event_accounts({p.item.event_id for p in checked.plan} - stored)
    for planned in checked.plan:
        if planned.item.event_id in stored:
            checked.outcomes[planned.index] = CREATED
        elif refused_owners.get(planned.item.event_id) == planned.seat.account_id:
            checked.outcomes[planned.index] = DUPLICATE
        else:
            checked.outcomes[planned.index] = _event_taken()
    for index, first in checked.repeats.items():
        outcome = checked.outcomes[first]
        checked.outcomes[index] = DUPLICATE if outcome is CREATED else outcome


# -- what the batch works with ------------------------------------------------------------------


@dataclass(frozen=True)
class _SeatRef:
    id: int
    account_id: int
    reference: str
    last_lead_at: datetime | None  # as read at the start: to skip updates that change nothing
    deactivated_at: datetime | None


@dataclass(frozen=True)
class _Period:
    id: int
    starts_at: datetime
    ends_at: datetime
    status: PeriodStatus


@dataclass
class _AccountPeriods:
    """One account's time zone and billing periods (share-locked), with `operations`' rules for
    where a moment lands."""

    zone: ZoneInfo
    periods: list[_Period]
    by_id: dict[int, _Period] = field(init=False)
    open_period: _Period | None = field(init=False)
    _local_days: dict[int, tuple[date, date]] = field(init=False, default_factory=dict)
    _open_latest: _Period | None = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {period.id: period for period in self.periods}
        self.open_period = max(
            (period for period in self.periods if period.status is PeriodStatus.OPEN),
            key=lambda period: period.starts_at,
            default=None,
        )
        # The open period when it is the latest-starting one, as it is but while a close runs.
        latest = max(self.periods, key=lambda period: period.starts_at, default=None)
        self._open_latest = self.open_period if latest is self.open_period else None

    def containing(self, moment: datetime) -> _Period | None:
        """The latest-starting period containing `moment`."""
        latest = self._open_latest
        if latest is not None and latest.starts_at <= moment < latest.ends_at:
            return latest
        return max(
            (period for period in self.periods if period.starts_at <= moment < period.ends_at),
            key=lambda period: period.starts_at,
            default=None,
        )

    def landing(self, attempted_at: datetime) -> tuple[_Period, bool]:
        """The period an attempt at `attempted_at` is recorded in, and whether it is late.
        Raises `NoOpenPeriod`, or `RetryLater` for a time after the open period's end."""
        if self.open_period is None:
            raise NoOpenPeriod("this account has no open billing period")
        own = self.containing(attempted_at)
        if own is not None and own.status is PeriodStatus.OPEN:
            return own, False
        if attempted_at >= self.open_period.ends_at:
            raise RetryLater("after the open period's end")
        return self.open_period, True

    def day_in(self, period: _Period, moment: datetime) -> date:
        """The local day of `moment`, pulled inside the period's local days."""
        if period.id not in self._local_days:
            self._local_days[period.id] = (
                period.starts_at.astimezone(self.zone).date(),
                period.ends_at.astimezone(self.zone).date() - timedelta(days=1),
            )
        first, last = self._local_days[period.id]
        return min(max(moment.astimezone(self.zone).date(), first), last)


@dataclass(frozen=True)
class _NewLead:
    seat: _SeatRef
    external_id: str
    details: LeadDetails


@dataclass
class _LeadState:
    """A lead's id and summary columns, and the once-per-lead outcomes it already had."""

    id: int
    seat_id: int
    account_id: int
    billed_period_id: int | None = None
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_disposition: Disposition | None = None
    attempts_count: int = 0
    contacted: bool = False
    closed: bool = False
    outcomes: set[Disposition] = field(default_factory=set)

    @classmethod
    def fresh(cls, seat: _SeatRef, lead_id: int = 0) -> _LeadState:
        return cls(id=lead_id, seat_id=seat.id, account_id=seat.account_id)

    def summary(self) -> dict[str, Any]:
        return dict(zip(_SUMMARY, _summary_values(self), strict=True))


@dataclass(frozen=True)
class _Planned:
    """An attempt that passed the checks, with where it lands."""

    index: int
    item: AttemptItem
    seat: _SeatRef
    lead_key: _LeadKey
    period: _Period
    late: bool


def _plan_attempt(
    index: int, item: AttemptItem, seat: _SeatRef, key: _LeadKey, account: _AccountPeriods
) -> tuple[_Planned | None, list[FieldError]]:
    try:
        period, late = account.landing(item.attempted_at)
    except NoOpenPeriod:
        message = f"the account of seat {seat.reference} has no open billing period"
        return None, [FieldError("seat", message)]
    except RetryLater:
        message = (
            "is after the end of the open billing period; its period opens when that one "
            "closes: send the attempt again later"
        )
        return None, [FieldError("attempted_at", message)]
    return _Planned(index, item, seat, key, period, late), []


def _unknown_seat(reference: str) -> ItemOutcome:
    return _refused(FieldError("seat", f"unknown seat {reference}"))


def _unknown_lead(item: AttemptItem, seat: _SeatRef) -> FieldError:
    return FieldError(
        "lead_external_id",
        f"unknown lead {item.lead_external_id} on seat {seat.reference}: send its details in "
        '"lead" with its first attempt',
    )


def _event_taken() -> ItemOutcome:
    return _refused(FieldError("event_id", "is already used by an attempt of another account"))


def _complete(outcomes: list[ItemOutcome | None]) -> list[ItemOutcome]:
    done = [outcome for outcome in outcomes if outcome is not None]
    if len(done) != len(outcomes):
        raise RuntimeError("an item of the batch was left without an outcome")
    return done


# -- counting -----------------------------------------------------------------------------------


class _Tally:
    """Counter changes by (period, seat) and (period, seat, day), gathered in memory; the rules
    are `record_lead`'s and `record_attempt`'s."""

    def __init__(self) -> None:
        self.usage: defaultdict[tuple[int, int], Counter[str]] = defaultdict(Counter)
        self.days: defaultdict[tuple[int, int, date], Counter[str]] = defaultdict(Counter)
        self.seat_accounts: dict[int, int] = {}

    def count_received(self, accounts: dict[int, _AccountPeriods], lead: _NewLead) -> None:
        """A new lead: received in the period containing its time, else in the open one."""
        account = accounts[lead.seat.account_id]
        received_at = lead.details.received_at
        bucket = account.containing(received_at) or account.open_period
        if bucket is None:
            return
        self.seat_accounts[lead.seat.id] = lead.seat.account_id
        self.usage[bucket.id, lead.seat.id]["leads_received"] += 1
        day = account.day_in(bucket, received_at)
        self.days[bucket.id, lead.seat.id, day]["leads_received"] += 1

    def count_attempts(
        self,
        plan: Iterable[_Planned],
        leads: dict[_LeadKey, _LeadState],
        accounts: dict[int, _AccountPeriods],
    ) -> None:
        """Count each new attempt in order, updating its lead's state as `record_attempt` does."""
        for planned in plan:
            self._count(planned, leads[planned.lead_key], accounts[planned.seat.account_id])

    def _count(self, planned: _Planned, lead: _LeadState, account: _AccountPeriods) -> None:
        item, period, seat_id = planned.item, planned.period, planned.seat.id
        at, disposition = item.attempted_at, item.disposition
        self.seat_accounts[seat_id] = planned.seat.account_id
        self.usage[period.id, seat_id]["attempts"] += 1
        if lead.billed_period_id is None:
            lead.billed_period_id, lead.first_attempt_at = period.id, at
            billed = period
            self.usage[period.id, seat_id]["leads_called"] += 1
            self.usage[period.id, seat_id]["late_leads"] += at < period.starts_at
            self.days[period.id, seat_id, account.day_in(period, at)]["leads_called"] += 1
        else:
            billed = account.by_id[lead.billed_period_id]
            first = lead.first_attempt_at
            if first is None:
                raise RuntimeError(f"lead {lead.id} has a month key but no first attempt")
            if at < first:
                old_day, new_day = account.day_in(billed, first), account.day_in(billed, at)
                if new_day != old_day:
                    self.days[billed.id, seat_id, old_day]["leads_called"] -= 1
                    self.days[billed.id, seat_id, new_day]["leads_called"] += 1
                if at < billed.starts_at <= first:
                    self.usage[billed.id, seat_id]["late_leads"] += 1
                lead.first_attempt_at = at
        if disposition.contacted and not lead.contacted:
            lead.contacted = True
            self.usage[billed.id, seat_id]["leads_contacted"] += 1
        if disposition in _OUTCOME_COUNTERS and disposition not in lead.outcomes:
            lead.outcomes.add(disposition)
            self.usage[billed.id, seat_id][_OUTCOME_COUNTERS[disposition]] += 1
        lead.attempts_count += 1
        if lead.last_attempt_at is None or at >= lead.last_attempt_at:
            lead.last_attempt_at, lead.last_disposition = at, disposition
        if disposition.closes_lead:
            lead.closed = True

    def upserts(self) -> list[tuple[Any, Any]]:
        """The statements that add the changes to the counter rows (creating missing rows),
        with their parameters: one upsert per table, rows in (period, seat[, day]) order."""
        return [
            write
            for table, keys, fields, changes in (
                (_SEAT_USAGE, ("period_id", "seat_id"), USAGE_FIELDS, self.usage),
                (_USAGE_DAYS, ("period_id", "seat_id", "day"), DAY_FIELDS, self.days),
            )
            for write in _counter_upsert(table, keys, fields, changes, self.seat_accounts)
        ]


def _write_shared_rows(tally: _Tally, new_leads: list[_NewLead]) -> None:
    """Write the rows every concurrent batch wants too — counters, then seats — last, back to
    back, their parameters prepared beforehand: the shorter the time from the first of those
    row locks to the commit, the shorter the queue of batches behind it."""
    for statement, parameters in [*tally.upserts(), *_last_lead_at_moves(new_leads)]:
        db.session.execute(statement, parameters)


# -- statements ---------------------------------------------------------------------------------


class _Sql:
    """The statements of the batch path, built once per dialect: building a statement and
    computing its cache key cost more than running it.

    On PostgreSQL a bulk statement takes its rows as one JSON parameter, read with
    `json_populate_recordset(NULL::<table>, ...) WITH ORDINALITY`, in order: its SQL text is
    short and the same whatever the batch size, so psycopg and the server parse and prepare it
    once (a multi-row VALUES list would be a new, long statement each time), and the values are
    encoded by orjson (times and days included, several times faster than `json`), not one by
    one. SQLite runs the same statement once per row (executemany), and `IN` lists where
    PostgreSQL takes `= ANY(array)`.
    """

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres

    def _in(self, column: Any, name: str) -> sa.ColumnElement[bool]:
        if self.postgres:
            return cast(
                sa.ColumnElement[bool],
                column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type))),
            )
        return cast(sa.ColumnElement[bool], column.in_(sa.bindparam(name, expanding=True)))

    def _source(self, table: sa.Table, names: Sequence[str]) -> Any:
        """PostgreSQL: the rows given as one JSON array of objects (the `rows` parameter), read
        as `table`'s row type, numbered in their order (`ordinality`)."""
        return sa.func.json_populate_recordset(
            sa.literal_column(f"NULL::{table.name}"),
            sa.cast(sa.bindparam("rows", type_=sa.Text), postgresql.JSON),
        ).table_valued(*names, with_ordinality="ordinality")

    def _given(self, table: sa.Table, names: Sequence[str]) -> _Select:
        """PostgreSQL: the given rows as a SELECT of `names`, in their order."""
        source = self._source(table, names)
        return sa.select(*(source.c[name] for name in names)).order_by(source.c.ordinality)

    def rows(self, rows: list[dict[str, Any]]) -> Any:
        """The parameters that give `rows` (dicts of column values) to a bulk statement."""
        if self.postgres:
            return {"rows": orjson.dumps(rows).decode()}
        return rows

    @cached_property
    def seats(self) -> _Select:
        return sa.select(
            _SEATS.c.id,
            _SEATS.c.account_id,
            _SEATS.c.reference,
            _SEATS.c.last_lead_at,
            _SEATS.c.deactivated_at,
        ).where(self._in(_SEATS.c.reference, "references"))

    @cached_property
    def periods(self) -> _Select:
        return (
            sa.select(
                _PERIODS.c.account_id,
                _ACCOUNTS.c.timezone,
                _PERIODS.c.id,
                _PERIODS.c.starts_at,
                _PERIODS.c.ends_at,
                _PERIODS.c.status,
            )
            .join(_ACCOUNTS, _ACCOUNTS.c.id == _PERIODS.c.account_id)
            .where(self._in(_PERIODS.c.account_id, "account_ids"))
            .order_by(_PERIODS.c.id)
            .with_for_update(read=True, of=_PERIODS)
        )

    def _leads_by_key(self, columns: Sequence[sa.Column[Any]], lock: bool) -> _Select:
        """The stored leads among the given (seat, external id) keys, in the keys' order (each
        row-locked, with `lock`, as it is found).

        PostgreSQL: one index probe per key, in a LATERAL subquery. A join would let the
        planner pick a scan of the whole table, as its plan cached for the prepared statement
        assumes 100 keys whatever the batch, and no longer fits once the table has grown.
        """
        if not self.postgres:
            keys = sa.tuple_(_LEADS.c.seat_id, _LEADS.c.external_id)
            statement = sa.select(*columns).where(keys.in_(sa.bindparam("keys", expanding=True)))
            return statement.order_by(_LEADS.c.seat_id, _LEADS.c.external_id)
        given = self._source(_LEADS, ("seat_id", "external_id"))
        found = sa.select(*columns).where(
            _LEADS.c.seat_id == given.c.seat_id, _LEADS.c.external_id == given.c.external_id
        )
        lateral = (found.with_for_update() if lock else found).lateral("found")
        return (
            sa.select(*lateral.c)
            .select_from(given)
            .join(lateral, sa.true())
            .order_by(given.c.ordinality)
        )

    def lead_keys(self, keys: list[_LeadKey]) -> Any:
        """The parameters that give sorted `keys` to `locked_leads` / `stored_lead_keys`."""
        if self.postgres:
            return self.rows(
                [{"seat_id": seat, "external_id": external} for seat, external in keys]
            )
        return {"keys": keys}

    @cached_property
    def locked_leads(self) -> _Select:
        # Locked in (seat, external id) order, the order new leads are inserted in too.
        statement = self._leads_by_key([_LEADS.c.external_id, *_LEAD_STATE_COLUMNS], lock=True)
        return statement if self.postgres else statement.with_for_update()

    @cached_property
    def stored_lead_keys(self) -> _Select:
        return self._leads_by_key([_LEADS.c.seat_id, _LEADS.c.external_id], lock=False)

    def _probed(self, found: _Select, column: sa.Column[Any], name: str) -> _Select:
        """`found` limited to the rows whose `column` is among the values of the array
        parameter `name`.

        PostgreSQL: one index probe per value, in a LATERAL subquery. `column = ANY(array)`
        lets the planner scan the whole table: its plan for the prepared statement, made while
        the table was small, stays cached as the table grows (25 ms for 12,000 attempts).
        """
        if not self.postgres:
            return found.where(self._in(column, name))
        given = (
            sa.func.unnest(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))
            .table_valued("value")
            .render_derived("given")
        )
        lateral = found.where(column == given.c.value).lateral("found")
        return sa.select(*lateral.c).select_from(given).join(lateral, sa.true())

    @cached_property
    def event_accounts(self) -> _Select:
        return self._probed(
            sa.select(_ATTEMPTS.c.event_id, _ATTEMPTS.c.account_id),
            _ATTEMPTS.c.event_id,
            "event_ids",
        )

    @cached_property
    def outcomes_of_history(self) -> _Select:
        found = sa.select(_ATTEMPTS.c.lead_id, _ATTEMPTS.c.disposition).where(
            _ATTEMPTS.c.disposition.in_(list(_OUTCOME_COUNTERS))
        )
        return self._probed(found, _ATTEMPTS.c.lead_id, "lead_ids").distinct()

    @cached_property
    def lock_seats(self) -> _Select:
        # FOR NO KEY UPDATE, the lock the UPDATE itself takes: it lets the foreign keys of
        # concurrent inserts (which share-lock the seat's key) through.
        return (
            sa.select(_SEATS.c.id)
            .where(self._in(_SEATS.c.id, "seat_ids"))
            .order_by(_SEATS.c.id)
            .with_for_update(key_share=True)
        )

    @cache  # noqa: B019 - one instance per dialect, kept for the process's life
    def insert(
        self,
        table: sa.Table,
        names: tuple[str, ...],
        conflict: tuple[str, ...],
        increments: tuple[str, ...] = (),
        returning: tuple[str, ...] = (),
    ) -> Any:
        """Insert rows in their order, skipping a row whose `conflict` key is stored, or adding
        its `increments` fields to the stored row."""
        statement: postgresql.Insert | sqlite.Insert
        if self.postgres:
            statement = postgresql.insert(table).from_select(list(names), self._given(table, names))
        else:
            statement = sqlite.insert(table)
        if increments:
            changes = {name: table.c[name] + statement.excluded[name] for name in increments}
            if "version" in table.c:
                # A dashboard poll answers 304 while a SeatUsage version stays put.
                changes["version"] = table.c.version + 1
            statement = statement.on_conflict_do_update(index_elements=conflict, set_=changes)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=conflict)
        if returning:
            return statement.returning(*(table.c[name] for name in returning))
        return statement

    @cache  # noqa: B019 - one instance per dialect, kept for the process's life
    def update(self, table: sa.Table, names: tuple[str, ...], only_newer: str = "") -> Any:
        """Set each row's `names` on the stored row with its `id` (and, with `only_newer`, only
        where that column is null or older). On PostgreSQL the rows must already be locked by
        this transaction: the join does not update them in a set order."""
        if self.postgres:
            source = self._given(table, ("id", *names)).subquery()
            values: dict[str, Any] = {name: source.c[name] for name in names}
            # The ids again, as an array: an index scan of the table whatever the planner
            # assumes about the size of the JSON rows (see `_leads_by_key`).
            ids = sa.bindparam("ids", type_=postgresql.ARRAY(table.c.id.type))
            statement = sa.update(table).where(
                table.c.id == sa.any_(ids), table.c.id == source.c.id
            )
        else:
            values = {name: sa.bindparam(f"row_{name}") for name in names}
            statement = sa.update(table).where(table.c.id == sa.bindparam("row_id"))
        if only_newer:
            column = table.c[only_newer]
            statement = statement.where(sa.or_(column.is_(None), column < values[only_newer]))
        return statement.values(values)

    def update_rows(self, rows: list[dict[str, Any]]) -> Any:
        if self.postgres:
            return {**self.rows(rows), "ids": [row["id"] for row in rows]}
        return [{f"row_{name}": value for name, value in row.items()} for row in rows]


_SQL = {dialect: _Sql(dialect == "postgresql") for dialect in ("postgresql", "sqlite")}


def _sql() -> _Sql:
    return _SQL[db.engine.dialect.name]


def _seats_by_reference(references: set[str]) -> dict[str, _SeatRef]:
    rows = db.session.execute(_sql().seats, {"references": sorted(references)}).all()
    return {row.reference: _SeatRef(*row) for row in rows}


def _accounts_with_locked_periods(account_ids: set[int]) -> dict[int, _AccountPeriods]:
    """Each account's periods, share-locked in id order (a period close waits, or is skipped).

    A close that commits while this waits for its lock leaves its account with no open period
    in this statement's snapshot (the period it opened is newer): look once more.
    """
    accounts: dict[int, _AccountPeriods] = {}
    for _ in range(2):
        periods: defaultdict[int, list[_Period]] = defaultdict(list)
        zones: dict[int, str] = {}
        rows = db.session.execute(_sql().periods, {"account_ids": sorted(account_ids)}).all()
        for account_id, zone, period_id, starts_at, ends_at, status in rows:
            zones[account_id] = zone
            periods[account_id].append(_Period(period_id, starts_at, ends_at, status))
        # An account with no period at all gets none open: its attempts are refused.
        accounts = {
            account_id: _AccountPeriods(ZoneInfo(zones.get(account_id, "UTC")), periods[account_id])
            for account_id in account_ids
        }
        if all(account.open_period is not None for account in accounts.values()):
            break
    return accounts


_LEAD_STATE_COLUMNS = (
    _LEADS.c.id,
    _LEADS.c.seat_id,
    _LEADS.c.account_id,
    *(_LEADS.c[name] for name in _SUMMARY),
)


def _locked_leads(keys: Iterable[_LeadKey]) -> dict[_LeadKey, _LeadState]:
    """The stored leads among `keys`, row-locked in id order: one transaction at a time counts
    a lead's attempts."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    sql = _sql()
    rows = db.session.execute(sql.locked_leads, sql.lead_keys(wanted)).all()
    return {
        (row.seat_id, row.external_id): _LeadState(
            **{column.name: row._mapping[column.name] for column in _LEAD_STATE_COLUMNS}
        )
        for row in rows
    }


def _stored_lead_keys(keys: Iterable[_LeadKey]) -> set[_LeadKey]:
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    sql = _sql()
    rows = db.session.execute(sql.stored_lead_keys, sql.lead_keys(wanted)).all()
    return {(seat_id, external_id) for seat_id, external_id in rows}


def _event_accounts(event_ids: set[str]) -> dict[str, int]:
    """The account of each stored attempt among `event_ids`."""
    if not event_ids:
        return {}
    rows = db.session.execute(_sql().event_accounts, {"event_ids": sorted(event_ids)})
    return dict(rows.all())


def _load_outcomes_of_history(leads: dict[_LeadKey, _LeadState], plan: list[_Planned]) -> None:
    """Fill in which once-per-lead outcomes the stored leads the plan counts for already had
    (their rows are locked, so no other transaction adds attempts to them meanwhile)."""
    ids = {
        leads[p.lead_key].id
        for p in plan
        if p.item.disposition in _OUTCOME_COUNTERS and p.lead_key in leads
    }
    if not ids:
        return
    by_id = {lead.id: lead for lead in leads.values()}
    rows = db.session.execute(_sql().outcomes_of_history, {"lead_ids": sorted(ids)}).all()
    for lead_id, disposition in rows:
        by_id[lead_id].outcomes.add(disposition)


_LEAD_INSERT = (
    "account_id",
    "seat_id",
    "external_id",
    "name",
    "phone",
    "email",
    "source",
    "received_at",
    "created_at",
    *_SUMMARY,
)


def _insert_leads(
    new: dict[_LeadKey, _NewLead], summaries: dict[_LeadKey, _LeadState]
) -> dict[_LeadKey, int]:
    """Insert the leads that no one stored meanwhile, in (seat, external id) order; return the
    ids of those inserted."""
    if not new:
        return {}
    now = utcnow()
    rows = []
    for key in sorted(new):
        lead = new[key]
        summary = summaries[key] if key in summaries else _LeadState.fresh(lead.seat)
        rows.append(
            {
                "account_id": lead.seat.account_id,
                "seat_id": lead.seat.id,
                "external_id": lead.external_id,
                "name": lead.details.name,
                "phone": lead.details.phone,
                "email": lead.details.email,
                "source": lead.details.source,
                "received_at": lead.details.received_at,
                "created_at": now,
                **summary.summary(),
            }
        )
    sql = _sql()
    statement = sql.insert(
        _LEADS,
        _LEAD_INSERT,
        ("seat_id", "external_id"),
        returning=("seat_id", "external_id", "id"),
    )
    result = db.session.execute(statement, sql.rows(rows)).all()
    return {(row.seat_id, row.external_id): row.id for row in result}


_ATTEMPT_INSERT = (
    "account_id",
    "event_id",
    "seat_id",
    "lead_id",
    "attempted_at",
    "disposition",
    "duration_seconds",
    "isa_agent",
    "notes",
    "period_id",
    "late",
    "created_at",
)


def _insert_attempts(plan: list[_Planned], leads: dict[_LeadKey, _LeadState]) -> set[str]:
    """Insert the planned attempts in event id order; return the event ids inserted (the others
    were stored by a concurrent delivery, or by another account)."""
    if not plan:
        return set()
    now = utcnow()
    rows = [
        {
            "account_id": p.seat.account_id,
            "event_id": p.item.event_id,
            "seat_id": p.seat.id,
            "lead_id": leads[p.lead_key].id,
            "attempted_at": p.item.attempted_at,
            "disposition": p.item.disposition,
            "duration_seconds": p.item.duration_seconds,
            "isa_agent": p.item.isa_agent,
            "notes": p.item.notes,
            "period_id": p.period.id,
            "late": p.late,
            "created_at": now,
        }
        for p in sorted(plan, key=lambda p: p.item.event_id)
    ]
    sql = _sql()
    statement = sql.insert(_ATTEMPTS, _ATTEMPT_INSERT, ("event_id",), returning=("event_id",))
    return set(db.session.scalars(statement, sql.rows(rows)).all())


def _update_leads(leads: list[_LeadState]) -> None:
    """Write the leads' summaries (rows already locked by this transaction)."""
    if not leads:
        return
    sql = _sql()
    rows = [{"id": lead.id, **lead.summary()} for lead in leads]
    db.session.execute(sql.update(_LEADS, _SUMMARY), sql.update_rows(rows))


def _counter_upsert(
    table: sa.Table,
    key_names: tuple[str, ...],
    fields: tuple[str, ...],
    changes: dict[Any, Counter[str]],
    seat_accounts: dict[int, int],
) -> list[tuple[Any, Any]]:
    versioned = "version" in table.c
    names = (*key_names, "account_id", *fields, *(("version",) if versioned else ()))
    rows = []
    for key in sorted(changes):
        deltas = changes[key]
        if not any(deltas.values()):
            continue
        row = dict(zip(key_names, key, strict=True))
        row["account_id"] = seat_accounts[row["seat_id"]]
        for name in fields:
            row[name] = deltas.get(name, 0)
        if versioned:
            row["version"] = 1
        rows.append(row)
    if not rows:
        return []
    sql = _sql()
    return [(sql.insert(table, names, key_names, increments=fields), sql.rows(rows))]


def _last_lead_at_moves(leads: list[_NewLead]) -> list[tuple[Any, Any]]:
    """The statements that move each seat's `last_lead_at` forward to its newest new lead,
    locking the seats in id order first (PostgreSQL: the UPDATE's join takes no set order)."""
    newest: dict[int, datetime] = {}
    for lead in leads:
        received_at = lead.details.received_at
        known = lead.seat.last_lead_at
        if (known is None or known < received_at) and newest.get(lead.seat.id, received_at) <= (
            received_at
        ):
            newest[lead.seat.id] = received_at
    if not newest:
        return []
    sql = _sql()
    rows = [{"id": seat_id, "last_lead_at": newest[seat_id]} for seat_id in sorted(newest)]
    move = sql.update(_SEATS, ("last_lead_at",), only_newer="last_lead_at")
    lock = [(sql.lock_seats, {"seat_ids": sorted(newest)})] if sql.postgres else []
    return [*lock, (move, sql.update_rows(rows))]
