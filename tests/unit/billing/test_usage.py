"""Called leads: counted once, in the period of their first attempt; the overage formula."""

from datetime import date, datetime, timedelta
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing import (
    CallAttempt,
    CountedLead,
    count_new_leads,
    first_attempt_periods,
    overage_leads,
    period_bounds,
    period_index_at,
)

from .catalogue import PROPERTY_SETTINGS
from .reference import brute_force_period_index

ANCHOR = date(2026, 1, 31)
TZ = "Europe/London"
START = period_bounds(ANCHOR, 1, TZ).starts_at
period_of = partial(period_index_at, ANCHOR, TZ)


def _at(hours: int) -> datetime:
    return START + timedelta(hours=hours)


@pytest.mark.parametrize(
    ("used", "frozen", "allowance", "grace", "over"),
    [
        (0, 0, 100, 0, 0),
        (100, 0, 100, 0, 0),
        (101, 0, 100, 0, 1),
        (260, 20, 200, 0, 40),
        (130, 30, 200, 0, 0),
        (108, 0, 100, 5, 3),
    ],
)
def test_overage_leads_formula(
    used: int, frozen: int, allowance: int, grace: int, over: int
) -> None:
    assert overage_leads(used, frozen, allowance, grace) == over


@pytest.mark.parametrize(
    ("used", "frozen", "allowance", "grace"),
    [(-1, 0, 100, 0), (10, -1, 100, 0), (10, 0, 0, 0), (10, 0, 100, -1)],
)
def test_overage_leads_refuses_impossible_figures(
    used: int, frozen: int, allowance: int, grace: int
) -> None:
    with pytest.raises(ValueError, match="invalid usage figures"):
        overage_leads(used, frozen, allowance, grace)


def test_call_attempt_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        CallAttempt(lead_id=1, attempted_at=datetime(2026, 2, 1))  # noqa: DTZ001 - under test


def test_earliest_attempt_decides_whatever_the_order() -> None:
    m2 = period_bounds(ANCHOR, 2, TZ)
    attempts = [
        CallAttempt(lead_id=1, attempted_at=m2.starts_at + timedelta(hours=1)),
        CallAttempt(lead_id=1, attempted_at=m2.starts_at - timedelta(hours=1)),
        CallAttempt(lead_id=2, attempted_at=m2.starts_at),
    ]

    assert first_attempt_periods(attempts, period_of) == {1: 1, 2: 2}
    assert first_attempt_periods([], period_of) == {}


def test_attempt_in_a_closed_period_counts_in_the_open_one_and_is_late() -> None:
    attempts = [
        CallAttempt(lead_id=1, attempted_at=_at(2)),
        CallAttempt(lead_id=2, attempted_at=_at(800)),
    ]

    counted = count_new_leads(attempts, period_of, already_counted=set(), open_from=2)

    assert counted == {
        1: CountedLead(period_index=2, late=True),
        2: CountedLead(period_index=2, late=False),
    }


def test_counted_lead_never_counts_again_even_for_an_earlier_attempt() -> None:
    counted = count_new_leads(
        [CallAttempt(lead_id=1, attempted_at=_at(1))], period_of, already_counted={1}, open_from=1
    )

    assert counted == {}


attempt_lists = st.lists(
    st.builds(
        CallAttempt, lead_id=st.integers(0, 30), attempted_at=st.integers(0, 24 * 200).map(_at)
    ),
    max_size=60,
)


@given(
    attempts=attempt_lists,
    already_counted=st.frozensets(st.integers(0, 30)),
    open_from=st.integers(1, 8),
)
@PROPERTY_SETTINGS
def test_each_new_lead_counts_once_in_the_period_of_its_first_attempt_or_the_open_one(
    attempts: list[CallAttempt], already_counted: frozenset[int], open_from: int
) -> None:
    counted = count_new_leads(attempts, period_of, already_counted, open_from)

    first_attempts: dict[int, datetime] = {}
    for attempt in sorted(attempts, key=lambda attempt: attempt.attempted_at, reverse=True):
        first_attempts[attempt.lead_id] = attempt.attempted_at
    expected = {}
    for lead_id, moment in first_attempts.items():
        if lead_id in already_counted:
            continue
        index = brute_force_period_index(ANCHOR, TZ, moment)
        expected[lead_id] = CountedLead(period_index=max(index, open_from), late=index < open_from)
    assert counted == expected
