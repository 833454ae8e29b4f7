"""Billing writes: subscribe, plan changes, cancel, seat fees. Flush and audit; never commit.

Every function works inside the current tenant (`tenant_context` or a tenant request) and
raises `app.billing.BillingRuleError` with a sentence for the user when a rule refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from app import billing
from app.audit import record
from app.billing_portal.ledger import (
    ledger_for,
    open_billing_period,
    period_used,
    plan_terms,
    store_invoice,
    subscription_value,
)
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    Invoice,
    InvoiceKind,
    PeriodStatus,
    Plan,
    PlanChange,
    Seat,
    Subscription,
    SubscriptionStatus,
    User,
    utcnow,
)


@dataclass(frozen=True)
class Subscribed:
    subscription: Subscription
    period: BillingPeriod
    invoice: Invoice


def subscribe(
    account: Account, plan: Plan, start: date, signup_seats: int, actor: User | None = None
) -> Subscribed:
    """Start the monthly subscription: open M1 and issue the signup invoice
    (M1's price, plus the seat fees of the seats onboarded at signup)."""
    if plan.retired:
        raise billing.BillingRuleError(f"{plan.name} is no longer offered.")
    subscription = Subscription(account_id=account.id, plan_id=plan.id, anchor_date=start)
    db.session.add(subscription)
    db.session.flush()
    period = open_billing_period(account, subscription, plan, 1)
    lines = billing.signup_lines(
        plan_terms(plan),
        billing.period_bounds(start, 1, account.timezone),
        seat_count=signup_seats,
        seat_fee_cents=period.seat_fee_cents,
        account_kind=account.kind.value,
    )
    invoice = store_invoice(account, period, InvoiceKind.SIGNUP, lines)
    record(
        "subscription.created",
        account_id=account.id,
        target=subscription,
        actor=actor,
        details={"plan": plan.code, "start": start.isoformat()},
    )
    record_invoice_issued(invoice, actor)
    return Subscribed(subscription, period, invoice)


def record_invoice_issued(invoice: Invoice, actor: User | None = None) -> None:
    from app.billing_portal.jobs import enqueue_invoice_delivery

    record(
        "invoice.issued",
        account_id=invoice.account_id,
        target=invoice,
        actor=actor,
        details={"number": invoice.number, "total_cents": invoice.total_cents},
    )
    enqueue_invoice_delivery(invoice.id)


def current_subscription() -> Subscription:
    subscription = db.session.scalar(
        sa.select(Subscription).where(Subscription.status == SubscriptionStatus.ACTIVE)
    )
    if subscription is None:
        raise billing.BillingRuleError("This account has no active plan.")
    return subscription


def current_period(lock: bool = False) -> BillingPeriod:
    """The open period; `lock` takes its row lock so a concurrent close waits."""
    query = sa.select(BillingPeriod).where(BillingPeriod.status == PeriodStatus.OPEN)
    if lock:
        query = query.with_for_update()
    period = db.session.scalar(query.order_by(BillingPeriod.month_index.desc()).limit(1))
    if period is None:
        raise billing.BillingRuleError("This account has no open billing period.")
    return period


def changeable_period(lock: bool = False) -> BillingPeriod:
    """The open period, if a plan change can still apply to it.

    Between a period's end and its close (the grace window for late call data) a change
    would land on a month that is over, so it waits for the renewal to be processed.
    """
    period = current_period(lock)
    if utcnow() >= period.ends_at:
        raise billing.BillingRuleError(
            f"{period.key} has ended and is being closed; try again in a few minutes, "
            "once the new period has started."
        )
    return period


def preview_plan_change(
    account: Account, plan: Plan
) -> billing.UpgradePreview | billing.DowngradePreview:
    """What changing to `plan` would do, before anything changes."""
    period = changeable_period()
    ledger = ledger_for(period, account)
    if plan.allowance > period.allowance:
        return billing.preview_upgrade(ledger, plan_terms(plan), period_used(period.id))
    return billing.preview_downgrade(ledger, plan_terms(plan))


def change_plan(
    account: Account, plan: Plan, actor: User | None = None
) -> billing.UpgradePreview | billing.DowngradePreview:
    """Upgrade at once (bigger allowance) or schedule a downgrade for the renewal."""
    if plan.retired:
        raise billing.BillingRuleError(f"{plan.name} is no longer offered.")
    subscription = current_subscription()
    period = changeable_period(lock=True)
    if plan.allowance > period.allowance:
        return _upgrade(account, subscription, period, plan, actor)
    value = billing.schedule_downgrade(
        subscription_value(subscription), plan_terms(subscription.plan), plan_terms(plan)
    )
    preview = billing.preview_downgrade(ledger_for(period, account), plan_terms(plan))
    subscription.scheduled_plan_id = plan.id if value.scheduled_downgrade_code else None
    record(
        "plan.downgrade_scheduled",
        account_id=account.id,
        target=subscription,
        actor=actor,
        details={
            "from": subscription.plan.code,
            "to": plan.code,
            "on": preview.takes_effect_on.isoformat(),
        },
    )
    db.session.flush()
    return preview


def _upgrade(
    account: Account,
    subscription: Subscription,
    period: BillingPeriod,
    plan: Plan,
    actor: User | None,
) -> billing.UpgradePreview:
    used = period_used(period.id)
    _ledger, done = billing.upgrade(ledger_for(period, account), plan_terms(plan), used)
    old = done.from_terms
    db.session.add(
        PlanChange(
            account_id=account.id,
            period_id=period.id,
            from_plan_code=old.code,
            from_plan_name=old.name,
            from_allowance=old.allowance,
            from_price_cents=old.price_cents,
            to_plan_code=plan.code,
            to_plan_name=plan.name,
            to_allowance=plan.allowance,
            to_price_cents=plan.price_cents,
            to_cpl_cents=plan.cpl_cents,
            used_at_change=used,
            frozen_leads=done.frozen_leads,
            frozen_cpl_cents=done.frozen_rate_cents,
            price_difference_cents=done.price_difference_cents,
            changed_by_id=actor.id if actor else None,
        )
    )
    period.plan_id, period.plan_code, period.plan_name = plan.id, plan.code, plan.name
    period.allowance, period.price_cents, period.cpl_cents = (
        plan.allowance,
        plan.price_cents,
        plan.cpl_cents,
    )
    subscription.plan_id, subscription.scheduled_plan_id = plan.id, None
    db.session.flush()
    db.session.expire(period, ["plan_changes"])
    record(
        "plan.upgraded",
        account_id=account.id,
        target=subscription,
        actor=actor,
        details={
            "from": old.code,
            "to": plan.code,
            "used": used,
            "frozen_leads": done.frozen_leads,
            "frozen_rate_cents": done.frozen_rate_cents,
            "price_difference_cents": done.price_difference_cents,
        },
    )
    return done


def withdraw_downgrade(account: Account, actor: User | None = None) -> None:
    subscription = current_subscription()
    changeable_period()
    billing.withdraw_downgrade(subscription_value(subscription))
    record(
        "plan.downgrade_withdrawn",
        account_id=account.id,
        target=subscription,
        actor=actor,
        details={"to": subscription.scheduled_plan.code if subscription.scheduled_plan else None},
    )
    subscription.scheduled_plan_id = None
    db.session.flush()


def cancel(account: Account, reason: str = "", actor: User | None = None) -> BillingPeriod:
    """Cancel at the end of the open period (returned, for its end date)."""
    subscription = current_subscription()
    billing.cancel(subscription_value(subscription))
    period = changeable_period()
    subscription.cancel_at_period_end, subscription.cancel_reason = True, reason.strip()
    record(
        "subscription.cancelled",
        account_id=account.id,
        target=subscription,
        actor=actor,
        details={"ends_at": period.ends_at.isoformat(), "reason": reason.strip()},
    )
    db.session.flush()
    return period


def undo_cancel(account: Account, actor: User | None = None) -> None:
    subscription = current_subscription()
    changeable_period()
    billing.undo_cancel(subscription_value(subscription))
    subscription.cancel_at_period_end, subscription.cancel_reason = False, ""
    record("subscription.cancel_undone", account_id=account.id, target=subscription, actor=actor)
    db.session.flush()


def charge_seat_fee(account: Account, seat: Seat) -> int:
    """Put a new seat's one-time fee on the open period's closing invoice; returns the fee
    (0 for a solo account's seat)."""
    if not billing.seat_fee_applies(account.kind.value):
        return 0
    period = current_period()
    seat.fee_cents, seat.fee_period_id = period.seat_fee_cents, period.id
    db.session.flush()
    record(
        "seat.fee_added",
        account_id=account.id,
        target=seat,
        details={"fee_cents": seat.fee_cents, "period": period.key},
    )
    return seat.fee_cents
