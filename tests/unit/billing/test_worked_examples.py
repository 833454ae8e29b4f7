"""The worked examples of the billing rules, one named test each."""

from datetime import date, timedelta
from functools import partial

import pytest

from app.billing import (
    BillingRuleError,
    CallAttempt,
    InvoiceLine,
    LineKind,
    PeriodLedger,
    PlanTerms,
    Renewal,
    Subscription,
    cancel,
    closing_lines,
    count_new_leads,
    invoice_total,
    overage_leads,
    period_bounds,
    period_index_at,
    plan_costs,
    preview_downgrade,
    renewal_plan_code,
    schedule_downgrade,
    signup_lines,
    undo_cancel,
    upgrade,
    validate_catalogue,
)

from .catalogue import CATALOGUE, GROWTH, PLANS_BY_CODE, PRO, SCALE, STARTER

TZ = "America/New_York"
ANCHOR = date(2026, 2, 1)
M1 = period_bounds(ANCHOR, 1, TZ)
M2 = period_bounds(ANCHOR, 2, TZ)


def _closing(ledger: PeriodLedger, used: int, renewal: Renewal | None) -> tuple[InvoiceLine, ...]:
    return closing_lines(
        ledger,
        used,
        seats_added=0,
        seat_fee_cents=5_700,
        account_kind="brokerage",
        renewal=renewal,
    )


def _summary(lines: tuple[InvoiceLine, ...]) -> list[tuple[LineKind, int, int, int]]:
    return [(line.kind, line.quantity, line.unit_cents, line.amount_cents) for line in lines]


def test_overage_of_30_leads_on_100_lead_plan_is_billed_with_next_period_in_advance() -> None:
    lines = _closing(PeriodLedger(M1, STARTER, grace=0), 130, Renewal(STARTER, M2))

    assert _summary(lines) == [
        (LineKind.OVERAGE, 30, 1_000, 30_000),
        (LineKind.PLAN_ADVANCE, 1, 100_000, 100_000),
    ]
    assert [line.description for line in lines] == [
        "Overage: 30 leads at $10.00 (Starter 100)",
        "Lead package Starter 100, M2 (1 Mar 2026 \N{EN DASH} 31 Mar 2026)",
    ]
    assert invoice_total(lines) == 130_000


def test_upgrade_after_120_leads_freezes_20_at_old_rate_and_bills_40_at_new_rate() -> None:
    ledger, preview = upgrade(PeriodLedger(M1, STARTER, grace=0), GROWTH, used_now=120)

    lines = _closing(ledger, 260, Renewal(GROWTH, M2))

    assert (preview.frozen_leads, preview.frozen_rate_cents, preview.frozen_cents) == (
        20,
        1_000,
        20_000,
    )
    assert preview.price_difference_cents == 80_000
    assert preview.new_allowance == 200
    assert _summary(lines) == [
        (LineKind.OVERAGE, 20, 1_000, 20_000),
        (LineKind.OVERAGE, 40, 900, 36_000),
        (LineKind.UPGRADE_DIFFERENCE, 1, 80_000, 80_000),
        (LineKind.PLAN_ADVANCE, 1, 180_000, 180_000),
    ]
    assert [line.description for line in lines[:3]] == [
        "Overage: 20 leads at $10.00 (Starter 100)",
        "Overage: 40 leads at $9.00 (Growth 200)",
        "Upgrade Starter 100 → Growth 200, M1: price difference",
    ]


def test_upgrade_preview_states_frozen_leads_rate_amount_difference_and_new_allowance() -> None:
    _, preview = upgrade(PeriodLedger(M1, STARTER, grace=0), GROWTH, used_now=120)

    assert preview.statements == (
        "Overage so far: 20 leads at $10.00 (Starter 100) = $200.00, billed on this period's "
        "closing invoice.",
        "Price difference: $800.00 (Growth 200 at $1,800.00, Starter 100 at $1,000.00), billed "
        "on this period's closing invoice.",
        "The new allowance of 200 leads applies now, to the whole of "
        "M1 (1 Feb 2026 \N{EN DASH} 28 Feb 2026); later overage is billed at $9.00 per lead.",
    )


def test_downgrade_requested_mid_period_changes_nothing_until_renewal() -> None:
    ledger = PeriodLedger(M1, GROWTH, grace=0)
    subscription = schedule_downgrade(Subscription(plan_code="growth"), GROWTH, STARTER)

    renewal_code = renewal_plan_code(subscription)
    assert renewal_code is not None
    lines = _closing(ledger, 230, Renewal(PLANS_BY_CODE[renewal_code], M2))

    preview = preview_downgrade(ledger, STARTER)
    assert preview.takes_effect_on == date(2026, 3, 1)
    assert preview.takes_effect_at == M1.ends_at
    assert preview.price_cents == 100_000
    # This period keeps Growth's allowance and CPL; the renewal bills Starter's price.
    assert _summary(lines) == [
        (LineKind.OVERAGE, 30, 900, 27_000),
        (LineKind.PLAN_ADVANCE, 1, 100_000, 100_000),
    ]
    assert (
        lines[1].description == "Lead package Starter 100, M2 (1 Mar 2026 \N{EN DASH} 31 Mar 2026)"
    )


@pytest.mark.parametrize(
    ("year", "february_day"),
    [pytest.param(2026, 28, id="common-year"), pytest.param(2028, 29, id="leap-year")],
)
def test_anchor_on_31_jan_becomes_end_of_february_then_returns_to_31_mar(
    year: int, february_day: int
) -> None:
    starts = [period_bounds(date(year, 1, 31), index, "UTC").start_date for index in (1, 2, 3)]

    assert starts == [date(year, 1, 31), date(year, 2, february_day), date(year, 3, 31)]


@pytest.mark.parametrize(
    ("anchor", "hours"),
    [
        pytest.param(date(2026, 3, 1), 31 * 24 - 1, id="march-spring-forward"),
        pytest.param(date(2026, 10, 15), 31 * 24 + 1, id="november-fall-back"),
    ],
)
def test_period_crossing_dst_change_in_new_york_has_right_length(anchor: date, hours: int) -> None:
    period = period_bounds(anchor, 1, "America/New_York")

    assert period.ends_at - period.starts_at == timedelta(hours=hours)
    assert period.day_count == 31


def test_lead_called_in_last_minute_of_m1_and_again_in_m2_counts_once_in_m1() -> None:
    period_of = partial(period_index_at, ANCHOR, TZ)
    attempts = [
        CallAttempt(lead_id=7, attempted_at=M1.ends_at - timedelta(minutes=1)),
        CallAttempt(lead_id=7, attempted_at=M2.starts_at + timedelta(days=3)),
    ]

    counted = count_new_leads(attempts, period_of, already_counted=set(), open_from=1)
    counted_again = count_new_leads(attempts[1:], period_of, already_counted={7}, open_from=2)

    assert {lead: c.period_index for lead, c in counted.items()} == {7: 1}
    assert counted_again == {}


@pytest.mark.parametrize(("used", "billed"), [(105, 0), (108, 3)])
def test_grace_of_5_leads_on_100_lead_plan(used: int, billed: int) -> None:
    lines = _closing(PeriodLedger(M1, STARTER, grace=5), used, renewal=None)

    assert overage_leads(used, 0, 100, 5) == billed
    assert [line.quantity for line in lines if line.kind is LineKind.OVERAGE] == (
        [billed] if billed else []
    )


def test_catalogue_refuses_bigger_plan_without_lower_cpl_and_equal_allowances() -> None:
    flat_cpl = PlanTerms(
        code="flat", name="Flat 300", allowance=300, price_cents=300_000, cpl_cents=1_000
    )
    twin = PlanTerms(
        code="twin", name="Twin 200", allowance=200, price_cents=170_000, cpl_cents=850
    )

    assert validate_catalogue(CATALOGUE) == []
    assert validate_catalogue([STARTER, GROWTH, flat_cpl]) == [
        "Flat 300 has more leads than Growth 200 but its cost per lead $10.00 is not lower than "
        "$9.00."
    ]
    assert validate_catalogue([STARTER, GROWTH, twin]) == [
        "Growth 200 and Twin 200 both have 200 leads; each plan needs its own allowance."
    ]


def test_plan_whose_price_is_not_allowance_times_cpl_is_refused() -> None:
    with pytest.raises(BillingRuleError, match=r"the price \$1,500.00 is not 100 leads x \$10.00"):
        PlanTerms(code="odd", name="Odd 100", allowance=100, price_cents=150_000, cpl_cents=1_000)


def test_recommender_lists_cheapest_first_and_prefers_smaller_plan_on_a_tie() -> None:
    at_150 = plan_costs(CATALOGUE, 150)
    at_180 = plan_costs(CATALOGUE, 180)
    at_190 = plan_costs(CATALOGUE, 190)

    assert [(cost.plan, cost.total_cents) for cost in at_150] == [
        (STARTER, 150_000),
        (GROWTH, 180_000),
        (PRO, 320_000),
        (SCALE, 560_000),
    ]
    assert [cost.recommended for cost in at_150] == [True, False, False, False]
    assert (at_150[0].overage_leads, at_150[0].overage_cents) == (50, 50_000)
    # Starter: $1,000 + 80 x $10 = $1,800, the same as Growth: the smaller plan wins the tie.
    assert [cost.plan for cost in at_180[:2]] == [STARTER, GROWTH]
    assert at_190[0].plan == GROWTH


def test_cancel_then_undo_restores_renewal() -> None:
    cancelled = cancel(Subscription(plan_code="starter"))
    ledger = PeriodLedger(M1, STARTER, grace=0)

    last_invoice = _closing(ledger, 130, renewal=None)
    restored = undo_cancel(cancelled)

    assert renewal_plan_code(cancelled) is None
    assert _summary(last_invoice) == [(LineKind.OVERAGE, 30, 1_000, 30_000)]
    assert restored == Subscription(plan_code="starter")
    assert renewal_plan_code(restored) == "starter"


def test_solo_account_has_no_seat_fee() -> None:
    solo = signup_lines(STARTER, M1, seat_count=1, seat_fee_cents=5_700, account_kind="solo")
    agency = signup_lines(STARTER, M1, seat_count=1, seat_fee_cents=5_700, account_kind="agency")

    assert [line.kind for line in solo] == [LineKind.PLAN_ADVANCE]
    assert _summary(agency) == [
        (LineKind.PLAN_ADVANCE, 1, 100_000, 100_000),
        (LineKind.SEAT_FEE, 1, 5_700, 5_700),
    ]
    assert agency[1].description == "Seat fee: 1 new seat at $57.00, M1"
