"""Upgrades inside a period: freezing overage, several upgrades, refusals."""

from dataclasses import FrozenInstanceError
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing import (
    BillingRuleError,
    LineKind,
    PeriodLedger,
    PlanTerms,
    closing_lines,
    period_bounds,
    preview_upgrade,
    upgrade,
)

from .catalogue import CATALOGUE, GROWTH, PRO, PROPERTY_SETTINGS, SCALE, STARTER
from .reference import ReferencePeriod

M1 = period_bounds(date(2026, 2, 1), 1, "America/New_York")


def test_preview_changes_nothing_and_matches_the_upgrade() -> None:
    ledger = PeriodLedger(M1, STARTER, grace=0)

    preview = preview_upgrade(ledger, GROWTH, used_now=120)
    upgraded, done = upgrade(ledger, GROWTH, used_now=120)

    assert ledger.terms == STARTER
    assert ledger.upgrades == ()
    assert preview == done
    assert upgraded.terms == GROWTH
    assert upgraded.frozen_leads == 20


def test_upgrade_to_a_plan_of_equal_allowance_is_refused() -> None:
    twin = PlanTerms(code="twin", name="Twin 100", allowance=100, price_cents=90_000, cpl_cents=900)

    with pytest.raises(BillingRuleError, match="an upgrade needs more leads"):
        upgrade(PeriodLedger(M1, STARTER, grace=0), twin, used_now=10)


def test_upgrade_to_a_smaller_plan_is_refused() -> None:
    with pytest.raises(BillingRuleError, match="an upgrade needs more leads"):
        preview_upgrade(PeriodLedger(M1, GROWTH, grace=0), STARTER, used_now=10)


def test_upgrade_to_the_same_plan_is_refused() -> None:
    with pytest.raises(BillingRuleError, match="Starter 100 is already your plan"):
        upgrade(PeriodLedger(M1, STARTER, grace=0), STARTER, used_now=10)


def test_several_upgrades_repeat_the_step() -> None:
    ledger = PeriodLedger(M1, STARTER, grace=0)

    ledger, first = upgrade(ledger, GROWTH, used_now=130)  # 30 over Starter
    ledger, second = upgrade(ledger, PRO, used_now=250)  # 250 - 30 - 200 = 20 over Growth
    ledger, third = upgrade(ledger, SCALE, used_now=300)  # nothing over Pro

    assert [step.frozen_leads for step in ledger.upgrades] == [30, 20, 0]
    assert [p.frozen_cents for p in (first, second, third)] == [30_000, 18_000, 0]
    assert [p.price_difference_cents for p in (first, second, third)] == [80_000, 140_000, 240_000]
    assert ledger.overage_leads(900) == 900 - 50 - 800


def test_usage_lower_than_at_the_last_upgrade_is_refused() -> None:
    ledger, _ = upgrade(PeriodLedger(M1, STARTER, grace=0), GROWTH, used_now=120)

    with pytest.raises(ValueError, match="less than the 120 recorded"):
        ledger.overage_leads(119)
    with pytest.raises(ValueError, match="less than the 120 recorded"):
        upgrade(ledger, PRO, used_now=100)


def test_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="grace"):
        PeriodLedger(M1, STARTER, grace=-1)


def test_ledger_is_immutable() -> None:
    ledger = PeriodLedger(M1, STARTER, grace=0)

    with pytest.raises(FrozenInstanceError):
        ledger.terms = GROWTH  # type: ignore[misc]


def test_price_difference_is_never_negative_after_a_catalogue_edit() -> None:
    # The period snapshotted an old, pricier Starter; the catalogue has since made Growth cheaper.
    old_starter = PlanTerms(
        code="starter", name="Starter 100", allowance=100, price_cents=200_000, cpl_cents=2_000
    )
    ledger, preview = upgrade(PeriodLedger(M1, old_starter, grace=0), GROWTH, used_now=0)

    lines = closing_lines(
        ledger, 0, seats_added=0, seat_fee_cents=5_700, account_kind="solo", renewal=None
    )

    assert preview.price_difference_cents == 0
    assert lines == ()


# An event is either a number of newly called leads or a plan the user tries to upgrade to.
events = st.lists(st.one_of(st.integers(0, 300), st.sampled_from(CATALOGUE)), max_size=12)


@given(initial=st.sampled_from(CATALOGUE[:-1]), grace=st.sampled_from([0, 5]), steps=events)
@PROPERTY_SETTINGS
def test_every_called_lead_is_paid_exactly_once(
    initial: PlanTerms, grace: int, steps: list[int | PlanTerms]
) -> None:
    ledger = PeriodLedger(M1, initial, grace=grace)
    reference = ReferencePeriod(terms=initial, grace=grace)
    used = 0
    for step in steps:
        if isinstance(step, int):
            used += step
            for _ in range(step):
                reference.call_lead()
        elif step.allowance <= ledger.terms.allowance:
            with pytest.raises(BillingRuleError):
                upgrade(ledger, step, used)
        else:
            ledger, _ = upgrade(ledger, step, used)
            reference.upgrade(step)

    lines = closing_lines(
        ledger, used, seats_added=0, seat_fee_cents=0, account_kind="solo", renewal=None
    )

    overage = [(line.quantity, line.unit_cents) for line in lines if line.kind is LineKind.OVERAGE]
    assert overage == reference.billed_overage()
    # Every called lead took a free place (allowance or grace) or was billed once as overage.
    assert reference.free_places_taken + sum(leads for leads, _ in overage) == used
    assert reference.free_places_taken <= ledger.terms.allowance + grace
    differences = sum(
        line.amount_cents for line in lines if line.kind is LineKind.UPGRADE_DIFFERENCE
    )
    # Paid in advance plus the differences: the period costs exactly its final plan's price.
    assert initial.price_cents + differences == ledger.terms.price_cents
    assert all(line.amount_cents > 0 for line in lines)
