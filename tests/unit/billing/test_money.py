"""Formatting cents for people."""

import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing import format_cents, format_count, format_day

from .catalogue import PROPERTY_SETTINGS


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "$0.00"),
        (7, "$0.07"),
        (5_700, "$57.00"),
        (123_456, "$1,234.56"),
        (100_000_000, "$1,000,000.00"),
        (-500, "-$5.00"),
    ],
)
def test_format_cents(cents: int, text: str) -> None:
    assert format_cents(cents) == text


@given(cents=st.integers(0, 10**12))
@PROPERTY_SETTINGS
def test_format_cents_loses_nothing(cents: int) -> None:
    text = format_cents(cents)

    assert re.fullmatch(r"\$\d{1,3}(,\d{3})*\.\d{2}", text)
    assert int(re.sub(r"[$,.]", "", text)) == cents


def test_format_count_and_day() -> None:
    assert [format_count(n, "lead") for n in (0, 1, 2)] == ["0 leads", "1 lead", "2 leads"]
    assert [format_day(date(2026, month, 1)) for month in (1, 12)] == ["1 Jan 2026", "1 Dec 2026"]
