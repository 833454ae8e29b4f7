"""Reads for the billing page, always within the current tenant."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app import billing
from app.billing_portal.closing import compose_close
from app.billing_portal.ledger import ledger_for, period_used, plan_terms
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    Invoice,
    PeriodStatus,
    Plan,
    Seat,
    Subscription,
    SubscriptionStatus,
)


@dataclass(frozen=True)
class PlanOption:
    plan: Plan
    relation: str  # "current", "upgrade" or "downgrade"
    scheduled: bool


@dataclass(frozen=True)
class BillingState:
    subscription: Subscription | None
    period: BillingPeriod | None
    ledger: billing.PeriodLedger | None
    used: int
    next_invoice: tuple[billing.InvoiceLine, ...]
    options: list[PlanOption]


def billing_state(account: Account) -> BillingState:
    """The subscription, its open period, and the next invoice if the period closed now."""
    subscription = db.session.scalar(
        sa.select(Subscription).order_by(
            (Subscription.status == SubscriptionStatus.ACTIVE).desc(), Subscription.id.desc()
        )
    )
    period = db.session.scalar(
        sa.select(BillingPeriod)
        .where(BillingPeriod.status == PeriodStatus.OPEN)
        .order_by(BillingPeriod.month_index.desc())
    )
    if subscription is None or period is None:
        return BillingState(subscription, None, None, 0, (), [])
    used = period_used(period.id)
    seats_added = db.session.scalar(
        sa.select(sa.func.count(Seat.id)).where(Seat.fee_period_id == period.id)
    )
    plans = {plan.code: plan for plan in db.session.scalars(sa.select(Plan))}
    closed = compose_close(period, account, {period.id: used}, {period.id: seats_added or 0}, plans)
    options = [
        PlanOption(
            plan=plan,
            relation=(
                "current"
                if plan.code == period.plan_code
                else "upgrade"
                if plan.allowance > period.allowance
                else "downgrade"
            ),
            scheduled=subscription.scheduled_plan_id == plan.id,
        )
        for plan in sorted(plans.values(), key=lambda plan: plan.allowance)
        if not plan.retired or plan.code == period.plan_code
    ]
    return BillingState(
        subscription, period, ledger_for(period, account), used, closed.lines, options
    )


def invoices() -> list[Invoice]:
    return list(db.session.scalars(sa.select(Invoice).order_by(Invoice.issued_at.desc())))


def plan_by_code(code: str) -> Plan | None:
    return db.session.scalar(sa.select(Plan).where(Plan.code == code))


def recent_usage(limit: int = 3) -> list[tuple[str, int]]:
    """Leads called in the account's last `limit` periods, oldest first: (month key, used)."""
    periods = db.session.scalars(
        sa.select(BillingPeriod).order_by(BillingPeriod.month_index.desc()).limit(limit)
    ).all()
    return [(period.key, period_used(period.id)) for period in reversed(periods)]


def catalogue_terms() -> list[billing.PlanTerms]:
    return [
        plan_terms(plan)
        for plan in db.session.scalars(
            sa.select(Plan).where(Plan.retired.is_(False)).order_by(Plan.allowance)
        )
    ]
