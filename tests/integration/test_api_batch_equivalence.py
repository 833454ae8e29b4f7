"""The batch path (`app.calls.batch`) records exactly what `record_lead` / `record_attempt` record
when each item is sent alone, in the batch's order: the same outcome per item, the same leads,
attempts and counters — for any mix of new and known leads, repeats, late attempts across closed
periods, and bad items — and its counters equal a recount of the raw data."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.billing_portal.closing import close_periods
from app.calls.batch import (
    AttemptItem,
    ItemStatus,
    LeadDetails,
    LeadItem,
    record_attempt_batch,
    record_lead_batch,
)
from app.calls.operations import (
    DAY_FIELDS,
    USAGE_FIELDS,
    CallDataError,
    recompute_counters,
    record_attempt,
    record_lead,
)
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    CallAttempt,
    Disposition,
    Lead,
    Seat,
    SeatUsage,
    UsageDay,
    utcnow,
)
from app.tenancy import tenant_context
from tests import factories

_runs = itertools.count(1)
TIMEZONE = "America/Denver"


@pytest.fixture
def closed_twice() -> tuple[Account, list[Seat], list[BillingPeriod], datetime]:
    """An account whose M1 and M2 are closed and M3 is open, its three seats (the third
    deactivated five days ago) and periods, and a fixed "now" (the examples must draw from the
    same ranges every time)."""
    start = (utcnow() - timedelta(days=70)).astimezone(ZoneInfo(TIMEZONE)).date()
    account = factories.subscribed_account(kind="agency", seats=3, start=start, timezone=TIMEZONE)
    for month in (1, 2):
        period = _periods(account)[month - 1]
        db.session.commit()  # the close runs in a transaction of its own (here: a savepoint)
        assert close_periods([period.id], period.ends_at + timedelta(hours=3), "test").closed
    with tenant_context(account.id):
        seats = list(db.session.scalars(sa.select(Seat).order_by(Seat.id)))
    seats[2].deactivated_at = utcnow() - timedelta(days=5)
    db.session.commit()
    return account, seats, _periods(account), utcnow()


def _periods(account: Account) -> list[BillingPeriod]:
    with tenant_context(account.id):
        return list(
            db.session.scalars(
                sa.select(BillingPeriod)
                .order_by(BillingPeriod.month_index)
                .execution_options(populate_existing=True)
            )
        )


# -- the reference: one item at a time through `operations` ------------------------------------


def _one_attempt_at_a_time(item: AttemptItem, seats: dict[str, Seat]) -> ItemStatus:
    """What the API would answer for `item` sent alone, recorded with `record_attempt`."""
    seat = seats.get(item.seat_reference)
    if seat is None:
        return ItemStatus.ERROR
    with tenant_context(seat.account_id):
        if db.session.scalar(
            sa.select(CallAttempt.id).where(CallAttempt.event_id == item.event_id)
        ):
            return ItemStatus.DUPLICATE
        savepoint = db.session.begin_nested()  # an item that fails stores nothing
        try:
            lead = db.session.scalars(
                sa.select(Lead).where(
                    Lead.seat_id == seat.id, Lead.external_id == item.lead_external_id
                )
            ).one_or_none()
            if lead is None:
                if item.lead is None:
                    raise CallDataError("unknown lead")
                lead, _ = record_lead(seat, item.lead_external_id, **vars(item.lead))
            _, created = record_attempt(
                seat,
                lead,
                item.event_id,
                item.attempted_at,
                item.disposition,
                item.duration_seconds,
                item.isa_agent,
                item.notes,
            )
        except CallDataError:
            savepoint.rollback()
            return ItemStatus.ERROR
        savepoint.commit()
    return ItemStatus.CREATED if created else ItemStatus.DUPLICATE


def _one_lead_at_a_time(item: LeadItem, seats: dict[str, Seat]) -> ItemStatus:
    seat = seats.get(item.seat_reference)
    if seat is None:
        return ItemStatus.ERROR
    _, created = record_lead(seat, item.external_id, **vars(item.details))
    return ItemStatus.CREATED if created else ItemStatus.DUPLICATE


# -- what both paths leave behind ---------------------------------------------------------------


def _state(account: Account) -> dict[str, Any]:
    """Everything the call data changed, by natural keys (ids differ between the two runs);
    counter rows that are all zero count as absent."""
    with tenant_context(account.id):
        leads = {
            (row.seat_id, row.external_id): (
                row.name,
                row.phone,
                row.received_at,
                row.billed_period_id,
                row.first_attempt_at,
                row.last_attempt_at,
                row.last_disposition,
                row.attempts_count,
                row.contacted,
                row.closed,
            )
            for row in db.session.scalars(sa.select(Lead).execution_options(populate_existing=True))
        }
        lead_keys = dict(db.session.execute(sa.select(Lead.id, Lead.external_id)).all())
        attempts = {
            row.event_id: (
                row.seat_id,
                lead_keys[row.lead_id],
                row.attempted_at,
                row.disposition,
                row.duration_seconds,
                row.period_id,
                row.late,
            )
            for row in db.session.scalars(
                sa.select(CallAttempt).execution_options(populate_existing=True)
            )
        }
        usage = _counter_rows(SeatUsage, ("period_id", "seat_id"), USAGE_FIELDS)
        days = _counter_rows(UsageDay, ("period_id", "seat_id", "day"), DAY_FIELDS)
        last_leads = dict(db.session.execute(sa.select(Seat.id, Seat.last_lead_at)).all())
    return {
        "leads": leads,
        "attempts": attempts,
        "usage": usage,
        "days": days,
        "last_lead_at": last_leads,
    }


def _counter_rows(
    model: type[SeatUsage] | type[UsageDay], keys: tuple[str, ...], fields: tuple[str, ...]
) -> dict[tuple[Any, ...], dict[str, int]]:
    rows = db.session.scalars(sa.select(model).execution_options(populate_existing=True))
    found = {
        tuple(getattr(row, key) for key in keys): {field: getattr(row, field) for field in fields}
        for row in rows
    }
    return {key: values for key, values in found.items() if any(values.values())}


def _run(
    account: Account, work: Callable[[], list[ItemStatus]]
) -> tuple[list[ItemStatus], dict[str, Any]]:
    """Run `work` in a savepoint, capture what it left, check it against a recount, undo it."""
    savepoint = db.session.begin_nested()
    try:
        statuses = work()
        state = _state(account)
        assert recompute_counters(account.id) == [], "the counters drifted from the raw data"
    finally:
        savepoint.rollback()
    return statuses, state


# -- any mix of attempts ------------------------------------------------------------------------


def _moments(
    periods: list[BillingPeriod], seats: list[Seat], now: datetime
) -> st.SearchStrategy[datetime]:
    earliest = periods[0].starts_at - timedelta(days=2)
    zone = ZoneInfo(TIMEZONE)
    # Period edges, deactivations and a local midnight, where an off-by-one would show.
    ends = [(period.starts_at, period.ends_at) for period in periods]
    ends.append(tuple(seat.deactivated_at for seat in seats if seat.deactivated_at))
    edges = [
        moment + timedelta(seconds=shift)
        for pair in ends
        for moment in pair
        for shift in (-1, 0)
        if moment + timedelta(seconds=shift) <= now
    ] + [
        datetime.combine(
            (now - timedelta(days=1)).astimezone(zone).date(), datetime.min.time(), zone
        )
    ]
    return st.one_of(
        st.sampled_from(edges),
        st.integers(0, int((now - earliest).total_seconds())).map(
            lambda seconds: earliest + timedelta(seconds=seconds)
        ),
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_batch_records_what_the_attempts_one_at_a_time_record(
    closed_twice: tuple[Account, list[Seat], list[BillingPeriod], datetime], data: st.DataObject
) -> None:
    account, seats, periods, now = closed_twice
    run = next(_runs)
    steps = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, 5),  # which lead
                # Which seat; 2: a deactivated one, 3: an unknown one.
                st.sampled_from([0, 0, 0, 1, 1, 2, 2, 3]),
                _moments(periods, seats, now),
                st.sampled_from(list(Disposition)),
                st.booleans(),  # repeat the previous event id
                st.sampled_from([True, True, False]),  # send the lead's details
            ),
            min_size=1,
            max_size=30,
        ),
        label="steps",
    )
    items: list[AttemptItem] = []
    for n, (lead, seat, moment, disposition, repeat, details) in enumerate(steps):
        reference = seats[seat].reference if seat < len(seats) else "ST-UNKNOWN"
        event_id = items[-1].event_id if repeat and items else f"eq{run}-{n}"
        items.append(
            AttemptItem(
                event_id=event_id,
                seat_reference=reference,
                lead_external_id=f"L{lead}",
                lead=LeadDetails(
                    name=f"Lead {lead}",
                    phone="+14155552671",
                    email="",
                    source="Zillow",
                    received_at=moment - timedelta(minutes=20 + lead),
                )
                if details
                else None,
                attempted_at=moment,
                disposition=disposition,
                duration_seconds=n,
                isa_agent="Maya Chen",
                notes="",
            )
        )
    # Up to three batches in a row: the later ones meet leads and events the earlier stored.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(items)), max_size=2), label="cuts"))
    batches = [items[a:b] for a, b in itertools.pairwise([0, *cuts, len(items)])]
    by_reference = {seat.reference: seat for seat in seats}

    def alone() -> list[ItemStatus]:
        return [_one_attempt_at_a_time(item, by_reference) for item in items]

    def batched() -> list[ItemStatus]:
        return [outcome.status for batch in batches for outcome in record_attempt_batch(batch)]

    expected, expected_state = _run(account, alone)
    got, got_state = _run(account, batched)

    assert got == expected
    assert got_state == expected_state


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_lead_batch_records_what_the_leads_one_at_a_time_record(
    closed_twice: tuple[Account, list[Seat], list[BillingPeriod], datetime], data: st.DataObject
) -> None:
    account, seats, periods, now = closed_twice
    steps = data.draw(
        st.lists(
            # Which seat; 2: a deactivated one (it still takes leads), 3: an unknown one.
            st.tuples(
                st.integers(0, 5), st.sampled_from([0, 1, 2, 3]), _moments(periods, seats, now)
            ),
            min_size=1,
            max_size=20,
        ),
        label="steps",
    )
    items = [
        LeadItem(
            seats[seat].reference if seat < len(seats) else "ST-UNKNOWN",
            f"Z{lead}",
            LeadDetails(f"Lead {lead}", "+14155552671", "", "Zillow", moment),
        )
        for lead, seat, moment in steps
    ]
    by_reference = {seat.reference: seat for seat in seats}

    def alone() -> list[ItemStatus]:
        return [_one_lead_at_a_time(item, by_reference) for item in items]

    def batched() -> list[ItemStatus]:
        return [outcome.status for outcome in record_lead_batch(items)]

    expected, expected_state = _run(account, alone)
    got, got_state = _run(account, batched)

    assert got == expected
    assert got_state == expected_state


def test_an_empty_batch_records_nothing() -> None:
    empty: Sequence[AttemptItem] = []
    assert record_attempt_batch(empty) == []
    assert record_lead_batch([]) == []
