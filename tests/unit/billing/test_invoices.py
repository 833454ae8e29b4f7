"""Invoice lines: their arithmetic, seat fees, and the shape of closing invoices."""

from dataclasses import FrozenInstanceError
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing import (
    InvoiceLine,
    LineKind,
    PeriodLedger,
    Renewal,
    closing_lines,
    invoice_total,
    period_bounds,
    seat_fee_applies,
    signup_lines,
    upgrade,
)

from .catalogue import GROWTH, PRO, PROPERTY_SETTINGS, STARTER

ANCHOR = date(2026, 2, 1)
M1 = period_bounds(ANCHOR, 1, "America/Chicago")
M2 = period_bounds(ANCHOR, 2, "America/Chicago")
M3 = period_bounds(ANCHOR, 3, "America/Chicago")


def test_line_amount_must_be_quantity_times_unit() -> None:
    with pytest.raises(ValueError, match="amount 2999 is not 3 x 1000"):
        InvoiceLine("Overage", LineKind.OVERAGE, quantity=3, unit_cents=1_000, amount_cents=2_999)


@pytest.mark.parametrize(("quantity", "unit_cents"), [(0, 1_000), (1, 0), (-1, -1_000)])
def test_line_that_charges_nothing_or_credits_is_refused(quantity: int, unit_cents: int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        InvoiceLine("Overage", LineKind.OVERAGE, quantity, unit_cents, quantity * unit_cents)


def test_line_needs_a_description() -> None:
    with pytest.raises(ValueError, match="description"):
        InvoiceLine("", LineKind.SEAT_FEE, 1, 5_700, 5_700)


def test_issued_lines_cannot_be_changed() -> None:
    line = InvoiceLine("Seat fee", LineKind.SEAT_FEE, 1, 5_700, 5_700)

    with pytest.raises(FrozenInstanceError):
        line.amount_cents = 0  # type: ignore[misc]


def test_line_kinds_are_stored_as_plain_strings() -> None:
    assert [str(kind) for kind in LineKind] == [
        "plan_advance",
        "overage",
        "upgrade_difference",
        "seat_fee",
    ]


@pytest.mark.parametrize(
    ("kind", "applies"), [("solo", False), ("brokerage", True), ("agency", True)]
)
def test_seat_fee_applies_to_brokerages_and_agencies(kind: str, applies: bool) -> None:
    assert seat_fee_applies(kind) is applies


def test_unknown_account_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown account kind 'team'"):
        seat_fee_applies("team")


def test_signup_invoice_bills_first_period_and_onboarded_seats() -> None:
    lines = signup_lines(STARTER, M1, seat_count=3, seat_fee_cents=5_700, account_kind="brokerage")

    assert [line.description for line in lines] == [
        "Lead package Starter 100, M1 (1 Feb 2026 \N{EN DASH} 28 Feb 2026)",
        "Seat fee: 3 new seats at $57.00, M1",
    ]
    assert invoice_total(lines) == 100_000 + 3 * 5_700


def test_zero_seat_fee_or_no_new_seat_adds_no_line() -> None:
    free = signup_lines(STARTER, M1, seat_count=2, seat_fee_cents=0, account_kind="agency")
    no_seats = signup_lines(STARTER, M1, seat_count=0, seat_fee_cents=5_700, account_kind="agency")

    assert [line.kind for line in free] == [LineKind.PLAN_ADVANCE]
    assert [line.kind for line in no_seats] == [LineKind.PLAN_ADVANCE]


def test_negative_seat_figures_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid seat figures"):
        signup_lines(STARTER, M1, seat_count=-1, seat_fee_cents=5_700, account_kind="agency")


def test_closing_invoice_lists_frozen_overage_final_overage_differences_seats_and_renewal() -> None:
    ledger, _ = upgrade(PeriodLedger(M1, STARTER, grace=0), GROWTH, used_now=90)  # nothing frozen
    ledger, _ = upgrade(ledger, PRO, used_now=230)  # 30 frozen at Growth's $9.00

    lines = closing_lines(
        ledger,
        450,
        seats_added=2,
        seat_fee_cents=5_700,
        account_kind="agency",
        renewal=Renewal(PRO, M2),
    )

    assert [(line.kind, line.description, line.amount_cents) for line in lines] == [
        (LineKind.OVERAGE, "Overage: 30 leads at $9.00 (Growth 200)", 27_000),
        (LineKind.OVERAGE, "Overage: 20 leads at $8.00 (Pro 400)", 16_000),
        (
            LineKind.UPGRADE_DIFFERENCE,
            "Upgrade Starter 100 → Growth 200, M1: price difference",
            80_000,
        ),
        (
            LineKind.UPGRADE_DIFFERENCE,
            "Upgrade Growth 200 → Pro 400, M1: price difference",
            140_000,
        ),
        (LineKind.SEAT_FEE, "Seat fee: 2 new seats at $57.00, M1", 11_400),
        (
            LineKind.PLAN_ADVANCE,
            "Lead package Pro 400, M2 (1 Mar 2026 \N{EN DASH} 31 Mar 2026)",
            320_000,
        ),
    ]
    assert invoice_total(lines) == 27_000 + 16_000 + 80_000 + 140_000 + 11_400 + 320_000


def test_closing_invoice_of_a_quiet_cancelled_period_is_empty() -> None:
    lines = closing_lines(
        PeriodLedger(M1, STARTER, grace=0),
        40,
        seats_added=0,
        seat_fee_cents=5_700,
        account_kind="agency",
        renewal=None,
    )

    assert lines == ()
    assert invoice_total(lines) == 0


def test_renewal_must_be_the_next_period() -> None:
    with pytest.raises(ValueError, match="the renewal M3 does not follow the closing M1"):
        closing_lines(
            PeriodLedger(M1, STARTER, grace=0),
            0,
            seats_added=0,
            seat_fee_cents=5_700,
            account_kind="solo",
            renewal=Renewal(STARTER, M3),
        )


@given(
    used=st.integers(0, 1_000),
    upgraded_at=st.integers(0, 1_000),
    seats_added=st.integers(0, 20),
    seat_fee_cents=st.integers(0, 10_000),
    account_kind=st.sampled_from(["solo", "brokerage", "agency"]),
    renews=st.booleans(),
)
@PROPERTY_SETTINGS
def test_closing_lines_are_positive_and_sum_to_the_total(
    used: int,
    upgraded_at: int,
    seats_added: int,
    seat_fee_cents: int,
    account_kind: str,
    renews: bool,
) -> None:
    ledger, _ = upgrade(PeriodLedger(M1, STARTER, grace=0), GROWTH, min(used, upgraded_at))

    lines = closing_lines(
        ledger,
        used,
        seats_added=seats_added,
        seat_fee_cents=seat_fee_cents,
        account_kind=account_kind,
        renewal=Renewal(GROWTH, M2) if renews else None,
    )

    assert all(line.amount_cents == line.quantity * line.unit_cents > 0 for line in lines)
    assert invoice_total(lines) == sum(line.amount_cents for line in lines)
    seat_fees = [line for line in lines if line.kind is LineKind.SEAT_FEE]
    expected_fee = seat_fee_applies(account_kind) and seats_added > 0 and seat_fee_cents > 0
    assert [line.quantity for line in seat_fees] == ([seats_added] if expected_fee else [])
    advance = [line for line in lines if line.kind is LineKind.PLAN_ADVANCE]
    assert [line.amount_cents for line in advance] == ([GROWTH.price_cents] if renews else [])
