"""Translate between billing rows and the pure values of `app.billing`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app import billing
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    Counter,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    Plan,
    SeatUsage,
    Subscription,
    utcnow,
)
from app.settings import get_setting


def plan_terms(plan: Plan) -> billing.PlanTerms:
    return billing.PlanTerms(
        code=plan.code,
        name=plan.name,
        allowance=plan.allowance,
        price_cents=plan.price_cents,
        cpl_cents=plan.cpl_cents,
    )


def period_value(period: BillingPeriod, account: Account) -> billing.Period:
    return billing.period_bounds(
        period.subscription.anchor_date, period.month_index, account.timezone
    )


def period_terms(period: BillingPeriod) -> billing.PlanTerms:
    """The terms the period runs on now (its snapshot, moved by upgrades)."""
    return billing.PlanTerms(
        code=period.plan_code,
        name=period.plan_name,
        allowance=period.allowance,
        price_cents=period.price_cents,
        cpl_cents=period.cpl_cents,
    )


def ledger_for(period: BillingPeriod, account: Account) -> billing.PeriodLedger:
    """The period's ledger: its current terms and every upgrade made in it."""
    steps = tuple(
        billing.UpgradeStep(
            from_terms=billing.PlanTerms(
                code=change.from_plan_code,
                name=change.from_plan_name,
                allowance=change.from_allowance,
                price_cents=change.from_price_cents,
                cpl_cents=change.frozen_cpl_cents,
            ),
            to_terms=billing.PlanTerms(
                code=change.to_plan_code,
                name=change.to_plan_name,
                allowance=change.to_allowance,
                price_cents=change.to_price_cents,
                cpl_cents=change.to_cpl_cents,
            ),
            used_at_change=change.used_at_change,
            frozen_leads=change.frozen_leads,
        )
        for change in period.plan_changes
    )
    return billing.PeriodLedger(
        period=period_value(period, account),
        terms=period_terms(period),
        grace=period.grace_leads,
        upgrades=steps,
    )


def subscription_value(subscription: Subscription) -> billing.Subscription:
    scheduled = subscription.scheduled_plan
    return billing.Subscription(
        plan_code=subscription.plan.code,
        scheduled_downgrade_code=scheduled.code if scheduled else None,
        cancel_at_period_end=subscription.cancel_at_period_end,
    )


def period_used(period_id: int) -> int:
    """Called leads counted in a period, across all seats (from the counters)."""
    used = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(SeatUsage.leads_called), 0)).where(
            SeatUsage.period_id == period_id
        )
    )
    return int(used or 0)


def reserve_invoice_numbers(issued_at: datetime, count: int) -> list[str]:
    """`count` consecutive numbers `SW-<year>-<000123>`, gap-free per year: the counter
    moves in the issuing transaction, so a rollback gives the numbers back."""
    name = f"invoice-{issued_at.year}"
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = (
        insert(Counter)
        .values(name=name, value=count)
        .on_conflict_do_update(index_elements=[Counter.name], set_={"value": Counter.value + count})
        .returning(Counter.value)
    )
    last = db.session.execute(statement).scalar_one()
    return [f"SW-{issued_at.year}-{value:06d}" for value in range(last - count + 1, last + 1)]


def store_invoice(
    account: Account,
    period: BillingPeriod,
    kind: InvoiceKind,
    lines: tuple[billing.InvoiceLine, ...],
) -> Invoice:
    """Write an invoice and its lines (flushed). `closes_period_id` is unique, so a
    second closing invoice for the same period cannot exist."""
    issued_at = utcnow()
    invoice = Invoice(
        account_id=account.id,
        number=reserve_invoice_numbers(issued_at, 1)[0],
        kind=kind,
        period_id=period.id,
        closes_period_id=period.id if kind is InvoiceKind.CLOSING else None,
        issued_at=issued_at,
        total_cents=billing.invoice_total(lines),
    )
    db.session.add(invoice)
    db.session.flush()
    db.session.add_all(
        InvoiceLine(
            account_id=account.id,
            invoice_id=invoice.id,
            position=position,
            kind=line.kind.value,
            description=line.description,
            quantity=line.quantity,
            unit_cents=line.unit_cents,
            amount_cents=line.amount_cents,
        )
        for position, line in enumerate(lines, start=1)
    )
    db.session.flush()
    return invoice


def new_period_values(
    account: Account, subscription: Subscription, plan: Plan, index: int, snapshot: SettingsSnapshot
) -> dict[str, Any]:
    """Column values of period `index` on `plan`'s current catalogue terms and the
    current overage grace and seat fee, all snapshotted so later edits never reach it."""
    bounds = billing.period_bounds(subscription.anchor_date, index, account.timezone)
    return {
        "account_id": account.id,
        "subscription_id": subscription.id,
        "month_index": index,
        "starts_at": bounds.starts_at,
        "ends_at": bounds.ends_at,
        "plan_id": plan.id,
        "plan_code": plan.code,
        "plan_name": plan.name,
        "allowance": plan.allowance,
        "price_cents": plan.price_cents,
        "cpl_cents": plan.cpl_cents,
        "grace_leads": snapshot.grace_leads,
        "seat_fee_cents": snapshot.seat_fee_cents,
    }


@dataclass(frozen=True)
class SettingsSnapshot:
    """The operator settings a new period copies."""

    grace_leads: int
    seat_fee_cents: int

    @classmethod
    def now(cls) -> SettingsSnapshot:
        return cls(int(get_setting("overage_grace_leads")), int(get_setting("seat_fee_cents")))


def open_billing_period(
    account: Account, subscription: Subscription, plan: Plan, index: int
) -> BillingPeriod:
    """Open period `index` (see `new_period_values`)."""
    period = BillingPeriod(
        **new_period_values(account, subscription, plan, index, SettingsSnapshot.now())
    )
    db.session.add(period)
    db.session.flush()
    return period
