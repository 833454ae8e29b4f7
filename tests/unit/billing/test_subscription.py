"""Renewal intentions: scheduled downgrades, cancellation, and their illegal moves."""

from datetime import date

import pytest

from app.billing import (
    BillingRuleError,
    PeriodLedger,
    PlanTerms,
    Subscription,
    cancel,
    period_bounds,
    preview_downgrade,
    renew,
    renewal_plan_code,
    schedule_downgrade,
    subscription_after_upgrade,
    undo_cancel,
    upgrade,
    withdraw_downgrade,
)

from .catalogue import GROWTH, PRO, SCALE, STARTER

M1 = period_bounds(date(2026, 1, 31), 1, "America/New_York")
ON_PRO = Subscription(plan_code="pro")


def test_downgrade_is_scheduled_for_renewal_and_can_be_withdrawn() -> None:
    scheduled = schedule_downgrade(ON_PRO, PRO, STARTER)

    assert scheduled.plan_code == "pro"
    assert renewal_plan_code(scheduled) == "starter"
    assert renew(scheduled) == Subscription(plan_code="starter")
    assert withdraw_downgrade(scheduled) == ON_PRO


def test_scheduling_another_downgrade_replaces_the_first() -> None:
    scheduled = schedule_downgrade(schedule_downgrade(ON_PRO, PRO, STARTER), PRO, GROWTH)

    assert scheduled.scheduled_downgrade_code == "growth"


@pytest.mark.parametrize(
    ("subscription", "target", "message"),
    [
        pytest.param(ON_PRO, SCALE, "a downgrade needs fewer leads", id="bigger-plan"),
        pytest.param(ON_PRO, PRO, "Pro 400 is already your plan", id="same-plan"),
        pytest.param(
            Subscription(plan_code="pro", scheduled_downgrade_code="starter"),
            STARTER,
            "already scheduled",
            id="already-scheduled",
        ),
        pytest.param(
            Subscription(plan_code="pro", cancel_at_period_end=True),
            STARTER,
            "undo the cancellation",
            id="while-cancelling",
        ),
    ],
)
def test_illegal_downgrades_are_refused(
    subscription: Subscription, target: PlanTerms, message: str
) -> None:
    with pytest.raises(BillingRuleError, match=message):
        schedule_downgrade(subscription, PRO, target)


def test_downgrade_from_a_plan_that_is_not_the_subscriptions_is_a_bug() -> None:
    with pytest.raises(ValueError, match="is not the subscription's"):
        schedule_downgrade(ON_PRO, GROWTH, STARTER)


def test_withdrawing_without_a_scheduled_downgrade_is_refused() -> None:
    with pytest.raises(BillingRuleError, match="No downgrade is scheduled"):
        withdraw_downgrade(ON_PRO)


def test_cancel_keeps_a_scheduled_downgrade_for_undo() -> None:
    scheduled = schedule_downgrade(ON_PRO, PRO, GROWTH)

    cancelled = cancel(scheduled)

    assert renewal_plan_code(cancelled) is None
    with pytest.raises(BillingRuleError, match="undo the cancellation first"):
        withdraw_downgrade(cancelled)
    assert undo_cancel(cancelled) == scheduled


def test_cancelling_twice_and_undoing_without_cancel_are_refused() -> None:
    with pytest.raises(BillingRuleError, match="already set to end"):
        cancel(cancel(ON_PRO))
    with pytest.raises(BillingRuleError, match="no cancellation to undo"):
        undo_cancel(ON_PRO)


def test_cancelled_subscription_does_not_renew() -> None:
    with pytest.raises(BillingRuleError, match="does not renew"):
        renew(cancel(ON_PRO))


def test_upgrade_drops_a_scheduled_downgrade_but_keeps_a_cancellation() -> None:
    subscription = cancel(Subscription(plan_code="growth", scheduled_downgrade_code="starter"))
    _, done = upgrade(PeriodLedger(M1, GROWTH, grace=0), PRO, used_now=0)

    after = subscription_after_upgrade(subscription, done)

    assert after == Subscription(plan_code="pro", cancel_at_period_end=True)


def test_upgrade_from_another_plan_than_the_subscriptions_is_a_bug() -> None:
    _, done = upgrade(PeriodLedger(M1, STARTER, grace=0), PRO, used_now=0)

    with pytest.raises(ValueError, match="is not the subscription's"):
        subscription_after_upgrade(ON_PRO, done)


def test_downgrade_preview_gives_renewal_date_and_new_price() -> None:
    preview = preview_downgrade(PeriodLedger(M1, PRO, grace=0), STARTER)

    assert preview.takes_effect_on == date(2026, 2, 28)
    assert preview.takes_effect_at == M1.ends_at
    assert preview.price_cents == 100_000
    assert preview.statements == (
        "Pro 400 stays in force until the end of M1 (31 Jan 2026 \N{EN DASH} 27 Feb 2026); "
        "this period's overage is billed at $8.00 per lead.",
        "Starter 100 (100 leads) starts at renewal on 28 Feb 2026, when $1,000.00 is charged.",
        "You can withdraw this change until then.",
    )


def test_downgrade_preview_refuses_a_bigger_plan() -> None:
    with pytest.raises(BillingRuleError, match="a downgrade needs fewer leads"):
        preview_downgrade(PeriodLedger(M1, PRO, grace=0), SCALE)
