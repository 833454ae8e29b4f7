"""Anniversary periods: clamping, contiguity, DST, and finding the period of a moment."""

import calendar
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing import Period, month_index, month_key, period_bounds, period_index_at

from .catalogue import PROPERTY_SETTINGS, TIME_ZONES, anchors, time_zones, utc
from .reference import brute_force_period_index

MONTHS = 40
ONE_MICROSECOND = timedelta(microseconds=1)


def _assert_starts_at_first_instant_of_local_day(
    period: Period, moment: datetime, day: date
) -> None:
    zone = ZoneInfo(period.tz)
    assert moment.tzinfo is UTC
    assert moment.astimezone(zone).date() == day
    assert (moment - ONE_MICROSECOND).astimezone(zone).date() < day


def test_month_key_numbers_periods_from_m1() -> None:
    assert [month_key(index) for index in (1, 2, 12, 13)] == ["M1", "M2", "M12", "M13"]


@given(st.integers(min_value=1, max_value=10_000))
def test_month_index_reads_back_a_month_key(index: int) -> None:
    assert month_index(month_key(index)) == index
    assert month_index(month_key(index).lower()) == index


@pytest.mark.parametrize("key", ["", "M", "3", "M-1", "M3a", "X3", "M 3"])
def test_month_index_is_none_for_what_is_not_a_month_key(key: str) -> None:
    assert month_index(key) is None


def test_month_key_refuses_index_below_one() -> None:
    with pytest.raises(ValueError, match="1 or more"):
        month_key(0)


def test_period_bounds_refuses_index_below_one() -> None:
    with pytest.raises(ValueError, match="1 or more"):
        period_bounds(date(2026, 1, 1), 0, "UTC")


@pytest.mark.parametrize("anchor_day", range(1, 32))
def test_40_months_are_contiguous_and_clamped_for_every_anchor_day(anchor_day: int) -> None:
    anchor = date(2024, 1, anchor_day)
    for tz in TIME_ZONES:
        periods = [period_bounds(anchor, index, tz) for index in range(1, MONTHS + 1)]

        for earlier, later in pairwise(periods):
            assert earlier.ends_at == later.starts_at
            assert earlier.end_date == later.start_date
        for period in periods:
            last_day_of_month = calendar.monthrange(period.start_date.year, period.start_date.month)
            assert period.start_date.day == min(anchor_day, last_day_of_month[1])
            assert period.starts_at < period.ends_at
            assert period.key == f"M{period.index}"
            _assert_starts_at_first_instant_of_local_day(
                period, period.starts_at, period.start_date
            )
            _assert_starts_at_first_instant_of_local_day(period, period.ends_at, period.end_date)
        # Month by month from the anchor: 40 periods span exactly 40 calendar months.
        assert periods[-1].end_date == date(2027, 5, anchor_day)


@given(anchor=anchors, tz=time_zones)
@PROPERTY_SETTINGS
def test_periods_of_any_anchor_are_contiguous_and_start_at_local_midnight(
    anchor: date, tz: str
) -> None:
    periods = [period_bounds(anchor, index, tz) for index in range(1, MONTHS + 1)]

    assert periods[0].start_date == anchor
    for earlier, later in pairwise(periods):
        assert earlier.ends_at == later.starts_at
        assert 28 <= earlier.day_count <= 31
    for period in periods:
        _assert_starts_at_first_instant_of_local_day(period, period.starts_at, period.start_date)


@given(
    anchor=anchors,
    tz=time_zones,
    index=st.integers(1, MONTHS),
    millionths=st.integers(0, 999_999),
)
@PROPERTY_SETTINGS
def test_period_index_at_agrees_with_period_bounds(
    anchor: date, tz: str, index: int, millionths: int
) -> None:
    period = period_bounds(anchor, index, tz)
    inside = period.starts_at + (period.ends_at - period.starts_at) * millionths // 1_000_000

    assert period_index_at(anchor, tz, inside) == index
    assert period_index_at(anchor, tz, period.starts_at) == index
    assert period_index_at(anchor, tz, period.ends_at - ONE_MICROSECOND) == index
    assert period_index_at(anchor, tz, period.ends_at) == index + 1
    assert period.contains(inside)
    assert not period.contains(period.ends_at)


@given(anchor=anchors, tz=time_zones, hours=st.integers(0, 24 * 400))
@PROPERTY_SETTINGS
def test_period_index_at_agrees_with_walking_from_m1(anchor: date, tz: str, hours: int) -> None:
    moment = period_bounds(anchor, 1, tz).starts_at + timedelta(hours=hours)

    assert period_index_at(anchor, tz, moment) == brute_force_period_index(anchor, tz, moment)


def test_period_index_at_refuses_moment_before_anchor() -> None:
    first = period_bounds(date(2026, 2, 1), 1, "America/New_York")

    with pytest.raises(ValueError, match="before the billing anchor"):
        period_index_at(date(2026, 2, 1), "America/New_York", first.starts_at - ONE_MICROSECOND)


def test_period_index_at_refuses_naive_moment() -> None:
    naive = datetime(2026, 2, 3, 12, 0)  # noqa: DTZ001 - the naive moment is the point of the test

    with pytest.raises(ValueError, match="naive datetime"):
        period_index_at(date(2026, 2, 1), "UTC", naive)


def test_period_index_at_accepts_any_utc_offset() -> None:
    moment = datetime(2026, 3, 1, 0, 30, tzinfo=ZoneInfo("America/New_York"))

    assert period_index_at(date(2026, 2, 1), "America/New_York", moment) == 2
    assert period_index_at(date(2026, 2, 1), "UTC", moment) == 2
    assert period_index_at(date(2026, 2, 1), "Asia/Kolkata", moment) == 2


def test_period_boundaries_are_local_midnight_converted_to_utc() -> None:
    period = period_bounds(date(2026, 1, 15), 1, "America/Los_Angeles")

    assert period.starts_at == utc(2026, 1, 15, 8)
    assert period.ends_at == utc(2026, 2, 15, 8)
    assert period.label == "M1 (15 Jan 2026 \N{EN DASH} 14 Feb 2026)"


def test_period_on_a_day_without_midnight_starts_at_the_dst_jump() -> None:
    # America/Santiago went from 00:00 straight to 01:00 on 11 Sep 2022.
    period = period_bounds(date(2022, 9, 11), 1, "America/Santiago")

    assert period.starts_at == utc(2022, 9, 11, 4)
    assert period.starts_at.astimezone(ZoneInfo("America/Santiago")).hour == 1


def test_period_in_southern_hemisphere_is_shorter_when_dst_starts() -> None:
    # New Zealand moved its clocks forward on 27 Sep 2026.
    period = period_bounds(date(2026, 9, 10), 1, "Pacific/Auckland")

    assert period.ends_at - period.starts_at == timedelta(days=30, hours=-1)


@pytest.mark.parametrize(
    ("now", "days_left"),
    [
        pytest.param(utc(2026, 1, 1), 28, id="before-start"),
        pytest.param(utc(2026, 2, 1, 5), 28, id="first-instant"),
        pytest.param(utc(2026, 2, 14, 12), 15, id="mid-period"),
        pytest.param(utc(2026, 3, 1, 4, 59), 1, id="last-minute-local"),
        pytest.param(utc(2026, 3, 1, 5), 0, id="at-end"),
        pytest.param(utc(2026, 4, 1), 0, id="after-end"),
    ],
)
def test_days_left_counts_local_days_including_today(now: datetime, days_left: int) -> None:
    period = period_bounds(date(2026, 2, 1), 1, "America/New_York")

    assert period.day_count == 28
    assert period.days_left(now) == days_left
