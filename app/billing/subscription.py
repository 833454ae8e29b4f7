"""What happens at the next renewal: scheduled downgrades and cancellation.

Leads are bought in advance and nothing is refunded, so a downgrade or a cancellation never
touches the current period: both take effect when it ends, and both can be taken back until then.

Choices the rules leave open, decided here:

* While a cancellation is pending, the renewal plan is moot, so scheduling or withdrawing a
  downgrade is refused; a downgrade scheduled before the cancellation is kept, so undoing the
  cancellation restores exactly what was planned before it.
* An upgrade drops a scheduled downgrade: the latest explicit plan choice wins, and renewing onto
  a plan smaller than the one just bought would surprise. It leaves a pending cancellation alone
  (more leads this month is not a wish to renew).
"""

from dataclasses import dataclass, replace
from datetime import date, datetime

from app.billing.changes import PeriodLedger, UpgradePreview
from app.billing.errors import BillingRuleError
from app.billing.money import format_cents
from app.billing.plans import PlanTerms
from app.billing.wording import format_day


@dataclass(frozen=True)
class Subscription:
    """The subscription's plan and its intentions for the next renewal."""

    plan_code: str
    scheduled_downgrade_code: str | None = None
    cancel_at_period_end: bool = False


@dataclass(frozen=True)
class DowngradePreview:
    """When a downgrade takes effect and what is charged then."""

    from_terms: PlanTerms
    to_terms: PlanTerms
    takes_effect_on: date
    takes_effect_at: datetime
    price_cents: int
    statements: tuple[str, ...]


def preview_downgrade(ledger: PeriodLedger, target: PlanTerms) -> DowngradePreview:
    """Describe downgrading from the period's plan to ``target`` at the next renewal.

    Raises ``BillingRuleError`` unless ``target`` has a strictly smaller allowance.
    """
    current = ledger.terms
    _require_smaller(current, target)
    renewal_day = ledger.period.end_date
    statements = (
        f"{current.name} stays in force until the end of {ledger.period.label}; this period's "
        f"overage is billed at {format_cents(current.cpl_cents)} per lead.",
        f"{target.name} ({target.allowance} leads) starts at renewal on "
        f"{format_day(renewal_day)}, when {format_cents(target.price_cents)} is charged.",
        "You can withdraw this change until then.",
    )
    return DowngradePreview(
        from_terms=current,
        to_terms=target,
        takes_effect_on=renewal_day,
        takes_effect_at=ledger.period.ends_at,
        price_cents=target.price_cents,
        statements=statements,
    )


def schedule_downgrade(
    subscription: Subscription, current: PlanTerms, target: PlanTerms
) -> Subscription:
    """Schedule a downgrade from ``current`` to ``target`` for the next renewal.

    Replaces a different downgrade already scheduled. Raises ``BillingRuleError`` when ``target``
    is not strictly smaller, is already scheduled, or a cancellation is pending; ``ValueError``
    when ``current`` is not the subscription's plan.
    """
    _require_current(subscription, current)
    if subscription.cancel_at_period_end:
        raise BillingRuleError(
            "Your subscription ends at the end of this period; undo the cancellation before "
            "scheduling a downgrade."
        )
    _require_smaller(current, target)
    if subscription.scheduled_downgrade_code == target.code:
        raise BillingRuleError(f"A downgrade to {target.name} is already scheduled.")
    return replace(subscription, scheduled_downgrade_code=target.code)


def withdraw_downgrade(subscription: Subscription) -> Subscription:
    """Withdraw the scheduled downgrade; the plan renews unchanged.

    Raises ``BillingRuleError`` when none is scheduled or a cancellation is pending.
    """
    if subscription.cancel_at_period_end:
        raise BillingRuleError(
            "Your subscription ends at the end of this period; undo the cancellation first."
        )
    if subscription.scheduled_downgrade_code is None:
        raise BillingRuleError("No downgrade is scheduled.")
    return replace(subscription, scheduled_downgrade_code=None)


def cancel(subscription: Subscription) -> Subscription:
    """Cancel at the end of the current period. Raises ``BillingRuleError`` if already pending."""
    if subscription.cancel_at_period_end:
        raise BillingRuleError("The subscription is already set to end with this period.")
    return replace(subscription, cancel_at_period_end=True)


def undo_cancel(subscription: Subscription) -> Subscription:
    """Undo a pending cancellation. Raises ``BillingRuleError`` when none is pending."""
    if not subscription.cancel_at_period_end:
        raise BillingRuleError("There is no cancellation to undo.")
    return replace(subscription, cancel_at_period_end=False)


def subscription_after_upgrade(subscription: Subscription, done: UpgradePreview) -> Subscription:
    """The subscription once the upgrade ``done`` (returned by ``changes.upgrade``) is applied.

    Drops any scheduled downgrade (see the module docstring). Raises ``ValueError`` when the
    upgrade did not start from the subscription's plan.
    """
    _require_current(subscription, done.from_terms)
    return replace(subscription, plan_code=done.to_terms.code, scheduled_downgrade_code=None)


def renewal_plan_code(subscription: Subscription) -> str | None:
    """The plan the next period runs on, or ``None`` when the subscription ends."""
    if subscription.cancel_at_period_end:
        return None
    return subscription.scheduled_downgrade_code or subscription.plan_code


def renew(subscription: Subscription) -> Subscription:
    """The subscription for the next period, with any scheduled downgrade now in force.

    Raises ``BillingRuleError`` when a cancellation is pending: that subscription ends instead.
    """
    plan_code = renewal_plan_code(subscription)
    if plan_code is None:
        raise BillingRuleError(
            "A cancelled subscription ends at the period end; it does not renew."
        )
    return Subscription(plan_code=plan_code)


def _require_current(subscription: Subscription, current: PlanTerms) -> None:
    if current.code != subscription.plan_code:
        raise ValueError(
            f"plan {current.code!r} is not the subscription's {subscription.plan_code!r}"
        )


def _require_smaller(current: PlanTerms, target: PlanTerms) -> None:
    if target.code == current.code:
        raise BillingRuleError(f"{current.name} is already your plan.")
    if target.allowance >= current.allowance:
        raise BillingRuleError(
            f"{target.name} ({target.allowance} leads) is not smaller than your plan "
            f"{current.name} ({current.allowance} leads); a downgrade needs fewer leads."
        )
