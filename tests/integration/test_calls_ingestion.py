"""Recording leads and call attempts: each lead counts once, in the period of its first attempt,
and the counters kept with the call data always equal a recount of the raw data."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError

from app.billing_portal.closing import close_periods
from app.calls import operations
from app.calls.operations import (
    USAGE_FIELDS,
    CallDataError,
    RetryLater,
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
    Invoice,
    Lead,
    Seat,
    SeatUsage,
    UsageDay,
    utcnow,
)
from app.tenancy import tenant_context
from tests import factories
from tests.live import live_app

VOICEMAIL = Disposition.VOICEMAIL_NO_ANSWER
_numbers = itertools.count(1)


def _account(days_ago: int, timezone: str = "America/New_York", seats: int = 2) -> Account:
    """An agency subscribed `days_ago` days ago (40: M1 has ended; 70: M1 and M2 have)."""
    start = (utcnow() - timedelta(days=days_ago)).astimezone(ZoneInfo(timezone)).date()
    return factories.subscribed_account(kind="agency", seats=seats, start=start, timezone=timezone)


def _seats(account: Account) -> list[Seat]:
    with tenant_context(account.id):
        return list(db.session.scalars(sa.select(Seat).order_by(Seat.id)))


def _periods(account: Account) -> list[BillingPeriod]:
    with tenant_context(account.id):
        return list(
            db.session.scalars(
                sa.select(BillingPeriod)
                .order_by(BillingPeriod.month_index)
                .execution_options(populate_existing=True)
            )
        )


def _close(account: Account, month_index: int) -> None:
    """Close period `month_index` the real way, just after its end and grace window."""
    period = _periods(account)[month_index - 1]
    db.session.commit()  # the close starts a transaction of its own (here: a savepoint)
    result = close_periods([period.id], period.ends_at + timedelta(hours=3), trigger="test")
    assert (result.closed, result.failures) == (1, [])


def _lead(seat: Seat, received_at: datetime, external_id: str | None = None) -> Lead:
    n = next(_numbers)
    lead, _created = record_lead(
        seat,
        external_id or f"L{n}",
        f"Lead {n}",
        "(555) 010-0000",
        f"lead{n}@example.com",
        "Zillow",
        received_at,
    )
    return lead


def _attempt(
    seat: Seat,
    lead: Lead,
    at: datetime,
    disposition: Disposition = VOICEMAIL,
    event_id: str | None = None,
) -> tuple[CallAttempt, bool]:
    return record_attempt(
        seat, lead, event_id or f"ev-{next(_numbers)}", at, disposition, 42, "Maya Chen", ""
    )


def _usage(account: Account, period: BillingPeriod, seat: Seat) -> dict[str, int]:
    with tenant_context(account.id):
        row = db.session.scalars(
            sa.select(SeatUsage)
            .where(SeatUsage.period_id == period.id, SeatUsage.seat_id == seat.id)
            .execution_options(populate_existing=True)
        ).one_or_none()
    values = {field: getattr(row, field) if row else 0 for field in USAGE_FIELDS}
    return {**values, "version": row.version if row else 0}


def _days_called(account: Account, period: BillingPeriod) -> dict[date, int]:
    with tenant_context(account.id):
        rows = db.session.scalars(
            sa.select(UsageDay)
            .where(UsageDay.period_id == period.id)
            .execution_options(populate_existing=True)
        )
        return {row.day: row.leads_called for row in rows if row.leads_called}


def _reload(account: Account, row: Lead) -> Lead:
    with tenant_context(account.id):
        return db.session.scalars(
            sa.select(Lead).where(Lead.id == row.id).execution_options(populate_existing=True)
        ).one()


def _no_drift(account: Account) -> None:
    assert recompute_counters(account.id) == []


def test_a_lead_first_called_in_the_last_minute_of_m1_counts_once_in_m1() -> None:
    account = _account(days_ago=40)
    seat = _seats(account)[0]
    m1 = _periods(account)[0]
    lead = _lead(seat, m1.ends_at - timedelta(minutes=5))
    first, _ = _attempt(seat, lead, m1.ends_at - timedelta(seconds=30))
    _close(account, 1)
    m1, m2 = _periods(account)
    later, _ = _attempt(seat, lead, m2.starts_at + timedelta(hours=10))

    assert (first.period_id, first.late, later.period_id, later.late) == (
        m1.id,
        False,
        m2.id,
        False,
    )
    lead = _reload(account, lead)
    assert (lead.billed_period_id, lead.attempts_count) == (m1.id, 2)
    assert _usage(account, m1, seat)["leads_called"] == 1
    assert (_usage(account, m2, seat)["leads_called"], _usage(account, m2, seat)["attempts"]) == (
        0,
        1,
    )
    _no_drift(account)


def test_a_repeated_event_id_returns_the_stored_attempt_and_changes_nothing() -> None:
    account = _account(days_ago=10)
    seat = _seats(account)[0]
    period = _periods(account)[0]
    lead = _lead(seat, utcnow() - timedelta(hours=3))
    stored, created = _attempt(seat, lead, utcnow() - timedelta(hours=2), event_id="dialer-1")
    before = (_usage(account, period, seat), _days_called(account, period))

    again, created_again = _attempt(
        seat, lead, utcnow() - timedelta(hours=1), Disposition.LIVE_TRANSFER, event_id="dialer-1"
    )

    assert (created, created_again, again.id) == (True, False, stored.id)
    assert (_usage(account, period, seat), _days_called(account, period)) == before
    lead = _reload(account, lead)
    assert (lead.attempts_count, lead.last_disposition, lead.closed) == (1, VOICEMAIL, False)


def test_an_event_id_stored_by_a_concurrent_delivery_is_a_duplicate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The look-up before the insert misses a twin committed meanwhile: the unique constraint
    refuses the insert inside its savepoint, and the call returns the twin."""
    account = _account(days_ago=10)
    seat = _seats(account)[0]
    period = _periods(account)[0]
    lead = _lead(seat, utcnow() - timedelta(hours=3))
    stored, _ = _attempt(seat, lead, utcnow() - timedelta(hours=2), event_id="dialer-2")
    before = _usage(account, period, seat)
    look_ups = iter([None])
    find = operations._attempt_by_event_id
    monkeypatch.setattr(
        operations, "_attempt_by_event_id", lambda event_id: next(look_ups, None) or find(event_id)
    )

    again, created = _attempt(seat, lead, utcnow() - timedelta(hours=2), event_id="dialer-2")

    assert (again.id, created) == (stored.id, False)
    assert _usage(account, period, seat) == before
    assert _reload(account, lead).attempts_count == 1


def test_an_attempt_for_a_closed_period_lands_in_the_open_period_flagged_late() -> None:
    account = _account(days_ago=40)
    seat = _seats(account)[0]
    _close(account, 1)
    m1, m2 = _periods(account)
    invoice_totals = _invoice_totals(account)
    lead = _lead(seat, m1.ends_at - timedelta(days=2))

    attempt, created = _attempt(seat, lead, m1.ends_at - timedelta(days=1))

    assert (created, attempt.period_id, attempt.late) == (True, m2.id, True)
    assert _reload(account, lead).billed_period_id == m2.id
    m2_usage = _usage(account, m2, seat)
    assert (m2_usage["leads_called"], m2_usage["late_leads"], m2_usage["attempts"]) == (1, 1, 1)
    assert _usage(account, m1, seat)["leads_called"] == 0
    first_day = m2.starts_at.astimezone(ZoneInfo(account.timezone)).date()
    assert _days_called(account, m2) == {first_day: 1}
    assert _invoice_totals(account) == invoice_totals
    _no_drift(account)


def _invoice_totals(account: Account) -> dict[str, int]:
    with tenant_context(account.id):
        return {
            invoice.number: invoice.total_cents
            for invoice in db.session.scalars(sa.select(Invoice))
        }


def test_an_attempt_after_the_open_period_ends_waits_for_its_period() -> None:
    account = _account(days_ago=40)
    seat = _seats(account)[0]
    m1 = _periods(account)[0]
    lead = _lead(seat, m1.ends_at - timedelta(hours=1))

    with pytest.raises(RetryLater):
        _attempt(seat, lead, m1.ends_at + timedelta(minutes=1))

    assert _reload(account, lead).attempts_count == 0
    _no_drift(account)


def test_contacted_transfers_and_appointments_count_each_lead_once() -> None:
    account = _account(days_ago=10)
    seat = _seats(account)[0]
    period = _periods(account)[0]
    start = utcnow() - timedelta(days=5)
    hot, cold, bad = (_lead(seat, start) for _ in range(3))
    dispositions = [
        Disposition.VOICEMAIL_NO_ANSWER,
        Disposition.CALLBACK_LATER,
        Disposition.LIVE_TRANSFER,
        Disposition.LIVE_TRANSFER,
        Disposition.BOOKED_APPOINTMENT,
    ]
    for hour, disposition in enumerate(dispositions, start=1):
        _attempt(seat, hot, start + timedelta(hours=hour), disposition)
    _attempt(seat, cold, start + timedelta(hours=1))
    _attempt(seat, cold, start + timedelta(hours=2))
    _attempt(seat, bad, start + timedelta(hours=1), Disposition.BAD_DATA_DNC)
    # An older attempt arriving last changes neither the last disposition nor the counts.
    _attempt(seat, hot, start + timedelta(minutes=30), Disposition.NOT_INTERESTED_DNC)

    usage = _usage(account, period, seat)
    assert {field: usage[field] for field in USAGE_FIELDS} == {
        "leads_received": 3,
        "leads_called": 3,
        "leads_contacted": 1,
        "transfers": 1,
        "appointments": 1,
        "attempts": 9,
        "late_leads": 0,
    }
    hot, cold, bad = (_reload(account, lead) for lead in (hot, cold, bad))
    assert (hot.contacted, hot.closed, hot.last_disposition, hot.attempts_count) == (
        True,
        True,
        Disposition.BOOKED_APPOINTMENT,
        6,
    )
    assert hot.first_attempt_at == start + timedelta(minutes=30)
    assert (cold.contacted, cold.closed, bad.contacted, bad.closed) == (False, False, False, True)
    _no_drift(account)


def test_a_contact_after_the_close_counts_in_the_month_the_lead_was_billed_in() -> None:
    account = _account(days_ago=40)
    seat = _seats(account)[0]
    m1 = _periods(account)[0]
    lead = _lead(seat, m1.ends_at - timedelta(days=3))
    _attempt(seat, lead, m1.ends_at - timedelta(days=2))
    _close(account, 1)
    m1, m2 = _periods(account)

    _attempt(seat, lead, m2.starts_at + timedelta(days=1), Disposition.LIVE_TRANSFER)

    m1_usage, m2_usage = _usage(account, m1, seat), _usage(account, m2, seat)
    assert (m1_usage["leads_called"], m1_usage["leads_contacted"], m1_usage["transfers"]) == (
        1,
        1,
        1,
    )
    assert (m2_usage["leads_called"], m2_usage["attempts"]) == (0, 1)
    _no_drift(account)


def test_an_earlier_attempt_arriving_later_never_counts_again_nor_moves_the_month_key() -> None:
    account = _account(days_ago=40, timezone="America/Chicago")
    seat = _seats(account)[0]
    lead = _lead(seat, _periods(account)[0].ends_at - timedelta(days=3))
    _close(account, 1)
    m1, m2 = _periods(account)
    zone = ZoneInfo(account.timezone)
    first_seen = m2.starts_at + timedelta(days=4, hours=12)
    _attempt(seat, lead, first_seen)
    assert _days_called(account, m2) == {first_seen.astimezone(zone).date(): 1}

    earlier = m2.starts_at + timedelta(days=2, hours=12)
    _attempt(seat, lead, earlier)
    assert _days_called(account, m2) == {earlier.astimezone(zone).date(): 1}

    in_closed_m1 = m1.ends_at - timedelta(days=1)
    attempt, _ = _attempt(seat, lead, in_closed_m1)

    assert (attempt.period_id, attempt.late) == (m2.id, True)
    lead = _reload(account, lead)
    assert (lead.billed_period_id, lead.first_attempt_at) == (m2.id, in_closed_m1)
    m2_usage = _usage(account, m2, seat)
    assert (m2_usage["leads_called"], m2_usage["late_leads"], m2_usage["attempts"]) == (1, 1, 3)
    assert _days_called(account, m2) == {m2.starts_at.astimezone(zone).date(): 1}
    _no_drift(account)


def test_usage_days_follow_the_accounts_local_day_across_midnight() -> None:
    account = _account(days_ago=10, timezone="America/Los_Angeles")
    seat = _seats(account)[0]
    period = _periods(account)[0]
    zone = ZoneInfo(account.timezone)
    day = (utcnow() - timedelta(days=3)).astimezone(zone).date()
    before_midnight = datetime.combine(day, datetime.min.time(), zone) + timedelta(
        hours=23, minutes=30
    )
    after_midnight = before_midnight + timedelta(hours=1)
    # 23:30 and 00:30 in Los Angeles are the same UTC day: only local bucketing splits them.
    assert before_midnight.astimezone(UTC).date() == after_midnight.astimezone(UTC).date()
    late_evening = _lead(seat, before_midnight - timedelta(minutes=10))
    small_hours = _lead(seat, after_midnight - timedelta(minutes=10))

    _attempt(seat, late_evening, before_midnight)
    _attempt(seat, small_hours, after_midnight)

    next_day = day + timedelta(days=1)
    assert _days_called(account, period) == {day: 1, next_day: 1}
    with tenant_context(account.id):
        received = dict(
            db.session.execute(
                sa.select(UsageDay.day, UsageDay.leads_received).where(UsageDay.seat_id == seat.id)
            ).all()
        )
    assert received == {day: 1, next_day: 1}
    _no_drift(account)


def test_a_lead_is_stored_once_per_seat_and_external_id() -> None:
    account = _account(days_ago=10)
    first_seat, second_seat = _seats(account)
    period = _periods(account)[0]
    newer, older = utcnow() - timedelta(hours=1), utcnow() - timedelta(hours=5)

    lead, created = record_lead(first_seat, "Z-1", "Ann", "", "", "Zillow", newer)
    again, created_again = record_lead(first_seat, "Z-1", "Ann B.", "", "", "Zillow", older)
    other, created_other = record_lead(second_seat, "Z-1", "Ann", "", "", "Zillow", older)

    assert (created, created_again, again.id, created_other) == (True, False, lead.id, True)
    assert other.id != lead.id
    assert _reload(account, lead).name == "Ann"
    assert _usage(account, period, first_seat)["leads_received"] == 1
    with tenant_context(account.id):
        last = dict(db.session.execute(sa.select(Seat.id, Seat.last_lead_at)).all())
    assert last == {first_seat.id: newer, second_seat.id: older}
    _no_drift(account)


def test_a_lead_of_another_seat_is_refused() -> None:
    account = _account(days_ago=10)
    first_seat, second_seat = _seats(account)
    lead = _lead(first_seat, utcnow() - timedelta(hours=1))

    with pytest.raises(CallDataError, match="not on seat"):
        _attempt(second_seat, lead, utcnow())


def test_recompute_reports_drift_and_repairs_it() -> None:
    account = _account(days_ago=10)
    seat = _seats(account)[0]
    period = _periods(account)[0]
    lead = _lead(seat, utcnow() - timedelta(hours=2))
    _attempt(seat, lead, utcnow() - timedelta(hours=1))
    with tenant_context(account.id):
        db.session.execute(
            sa.update(SeatUsage)
            .where(SeatUsage.seat_id == seat.id)
            .values(leads_called=SeatUsage.leads_called + 2)
        )
    version = _usage(account, period, seat)["version"]

    drifts = recompute_counters(account.id)

    assert [(d.period_key, d.seat_id, d.day, d.field, d.stored, d.computed) for d in drifts] == [
        ("M1", seat.id, None, "leads_called", 3, 1)
    ]
    usage = _usage(account, period, seat)
    assert (usage["leads_called"], usage["version"]) == (1, version + 1)
    _no_drift(account)


# -- any mix of attempts ------------------------------------------------------------------------

_DISPOSITIONS = st.sampled_from(list(Disposition))


def _called_in(account: Account, period: BillingPeriod) -> int:
    with tenant_context(account.id):
        total = db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(SeatUsage.leads_called), 0)).where(
                SeatUsage.period_id == period.id
            )
        )
    return int(total or 0)


@pytest.fixture
def two_closed_periods() -> tuple[Account, datetime]:
    """An account whose M1 and M2 are closed and M3 is open, and a fixed "now" (the examples
    must draw from the same ranges every time)."""
    account = _account(days_ago=70, timezone="America/Denver")
    _close(account, 1)
    _close(account, 2)
    return account, utcnow()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_counters_always_equal_a_recount_of_the_raw_data(
    two_closed_periods: tuple[Account, datetime], data: st.DataObject
) -> None:
    account, now = two_closed_periods
    seats = _seats(account)
    periods = _periods(account)
    zone = ZoneInfo(account.timezone)
    earliest = periods[0].starts_at - timedelta(days=2)
    # Period edges and local midnights, where off-by-one bucketing would show.
    edges = [
        moment + timedelta(seconds=shift)
        for period in periods
        for moment in (period.starts_at, period.ends_at)
        for shift in (-1, 0)
        if moment + timedelta(seconds=shift) <= now
    ] + [
        datetime.combine(
            (now - timedelta(days=1)).astimezone(zone).date(), datetime.min.time(), zone
        )
    ]
    moments = st.one_of(
        st.sampled_from(edges),
        st.integers(0, int((now - earliest).total_seconds())).map(
            lambda seconds: earliest + timedelta(seconds=seconds)
        ),
    )
    steps = data.draw(
        st.lists(
            st.tuples(st.integers(0, 5), moments, _DISPOSITIONS, st.booleans()),
            min_size=1,
            max_size=25,
        )
    )
    closed_called = [_called_in(account, period) for period in periods[:2]]
    savepoint = db.session.begin_nested()
    try:
        leads: dict[int, Lead] = {}
        events: list[str] = []
        for lead_number, moment, disposition, repeat in steps:
            seat = seats[lead_number % 2]
            if lead_number not in leads:
                leads[lead_number] = _lead(seat, moment - timedelta(minutes=20))
            event_id = events[-1] if repeat and events else f"ev-{next(_numbers)}"
            events.append(event_id)
            _attempt(seat, leads[lead_number], moment, disposition, event_id=event_id)

        assert recompute_counters(account.id) == []
        assert [_called_in(account, period) for period in periods[:2]] == closed_called
        with tenant_context(account.id):
            called = db.session.scalar(
                sa.select(sa.func.count(Lead.id)).where(Lead.attempts_count > 0)
            )
        assert sum(_called_in(account, period) for period in periods) == called
    finally:
        savepoint.rollback()


# -- real concurrency: two connections racing ---------------------------------------------------


@pytest.fixture
def racing_app() -> Iterator[Flask]:
    with live_app("calls_race") as app:
        yield app


def _race(app: Flask, deliveries: list[Callable[[], None]]) -> list[BaseException]:
    """Run each delivery in its own thread and app context (its own session and connection),
    released together. A delivery that loses a SQLite write race is sent again, as the dialer
    resends a failed request; PostgreSQL makes the losers wait instead."""
    barrier = threading.Barrier(len(deliveries))
    errors: list[BaseException] = []

    def run(delivery: Callable[[], None]) -> None:
        with app.app_context():
            try:
                barrier.wait()
                for retries_left in reversed(range(10)):
                    try:
                        delivery()
                        db.session.commit()
                        break
                    except OperationalError:  # SQLite: lost the write race ("database is locked")
                        db.session.rollback()
                        if not retries_left:
                            raise
                        # A reader that must become a writer while another connection writes
                        # is refused at once, not made to wait: resend a moment later, as the
                        # dialer does, rather than in a loop the other writer outlasts.
                        time.sleep(0.05)
            except BaseException as exc:  # reported to the test thread
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(delivery,)) for delivery in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.mark.live
def test_racing_deliveries_store_one_attempt_and_count_the_lead_once(racing_app: Flask) -> None:
    with racing_app.app_context():
        account = factories.subscribed_account(kind="agency", seats=1)
        account_id = account.id
        seat = _seats(account)[0]
        lead = _lead(seat, utcnow() - timedelta(hours=1))
        seat_id, lead_id = seat.id, lead.id
        db.session.commit()

    def deliver(event_id: str) -> Callable[[], None]:
        def delivery() -> None:
            with tenant_context(account_id):
                seat = db.session.get_one(Seat, seat_id)
                lead = db.session.get_one(Lead, lead_id)
            _attempt(seat, lead, utcnow() - timedelta(minutes=5), event_id=event_id)

        return delivery

    # Twice the same event, and twice a first attempt of the same lead under other event ids.
    errors = _race(racing_app, [deliver("same"), deliver("same"), deliver("a"), deliver("b")])

    assert errors == []
    with racing_app.app_context(), tenant_context(account_id):
        events = sorted(db.session.scalars(sa.select(CallAttempt.event_id)))
        usage = db.session.scalars(sa.select(SeatUsage)).one()
        assert events == ["a", "b", "same"]
        assert (usage.leads_called, usage.attempts) == (1, 3)
        assert db.session.get_one(Lead, lead_id).attempts_count == 3
        assert recompute_counters(account_id) == []
