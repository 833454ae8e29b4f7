"""Closing billing periods, exactly once.

A period moves open → closing → closed inside one transaction together with everything
else of its close (invoice, next period, seat expiry). The claim comes first: on
PostgreSQL the due rows are locked with `FOR UPDATE SKIP LOCKED` (a concurrent closer
skips them instead of waiting or deadlocking) and moved to `closing` only if still open;
on SQLite the conditional UPDATE itself takes the database's write lock. A second closer
therefore finds nothing open to claim. A worker killed mid-close loses its transaction,
so its periods are still open and the next run closes them. The unique
`invoices.closes_period_id` is the last line of defence.

Periods are closed in batches (one transaction each) so that a large run costs a
handful of statements per batch rather than per period.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app import billing
from app.billing_portal.invoice_pdf import deliver_invoices
from app.billing_portal.ledger import (
    SettingsSnapshot,
    ledger_for,
    new_period_values,
    plan_terms,
    reserve_invoice_numbers,
    subscription_value,
)
from app.extensions import db
from app.models import (
    Account,
    AccountStatus,
    AuditEvent,
    BillingPeriod,
    BillingRun,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    PeriodStatus,
    Plan,
    Seat,
    SeatStatus,
    SeatUsage,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from app.queue import enqueue_after_commit
from app.settings import get_setting
from app.tenancy import unscoped

BATCH_SIZE = 100


@dataclass
class CloseResult:
    due: int = 0
    closed: int = 0
    skipped: int = 0
    failures: list[dict[str, object]] = field(default_factory=list)


@dataclass
class _Closed:
    """What one period's close writes, gathered so the batch can write it in bulk."""

    period: BillingPeriod
    lines: tuple[billing.InvoiceLine, ...]
    next_plan: Plan | None


def due_period_ids(now: datetime) -> list[int]:
    """Open periods whose end plus the close grace window has passed, oldest first."""
    grace = timedelta(minutes=int(get_setting("close_grace_minutes")))
    with unscoped():
        return list(
            db.session.scalars(
                sa.select(BillingPeriod.id)
                .where(
                    BillingPeriod.status == PeriodStatus.OPEN,
                    BillingPeriod.ends_at <= now - grace,
                )
                .order_by(BillingPeriod.ends_at, BillingPeriod.id)
            )
        )


def close_periods(period_ids: Iterable[int], now: datetime, trigger: str) -> CloseResult:
    """Close the periods (each exactly once), batch by batch, and record the run.

    A period whose invoice cannot be composed is put back to open with the reason
    (shown to operators); the others go on.
    """
    ids = list(period_ids)
    result = CloseResult(due=len(ids))
    started, started_at = time.monotonic(), utcnow()
    for start in range(0, len(ids), BATCH_SIZE):
        _close_batch(ids[start : start + BATCH_SIZE], now, result)
    db.session.add(
        BillingRun(
            trigger=trigger,
            started_at=started_at,
            finished_at=started_at + timedelta(seconds=time.monotonic() - started),
            due_count=result.due,
            closed_count=result.closed,
            skipped_count=result.skipped,
            failed_count=len(result.failures),
            failures=result.failures,
        )
    )
    db.session.commit()
    return result


def close_period(period_id: int, now: datetime) -> bool:
    """Close one period; False when it was not open (already closed, or being closed)."""
    return close_periods([period_id], now, trigger="single").closed == 1


def _claim(ids: Sequence[int], now: datetime) -> list[int]:
    """Move the still-open periods among `ids` to `closing`; returns the claimed ids.

    Must be the transaction's first statement (SQLite: a read before it would pin an
    older snapshot and make the write fail instead of wait).
    """
    where_open = sa.and_(BillingPeriod.id.in_(ids), BillingPeriod.status == PeriodStatus.OPEN)
    if db.engine.dialect.name == "postgresql":
        locked = list(
            db.session.scalars(
                sa.select(BillingPeriod.id)
                .where(where_open)
                .order_by(BillingPeriod.id)
                .with_for_update(skip_locked=True)
            )
        )
        where_open = sa.and_(
            BillingPeriod.id.in_(locked), BillingPeriod.status == PeriodStatus.OPEN
        )
    claimed = db.session.scalars(
        sa.update(BillingPeriod)
        .where(where_open)
        .values(status=PeriodStatus.CLOSING, closing_started_at=now)
        .returning(BillingPeriod.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed)


def _close_batch(ids: Sequence[int], now: datetime, result: CloseResult) -> None:
    db.session.rollback()
    with unscoped():  # a batch spans accounts; every row written names its account
        claimed = _claim(ids, now)
        result.skipped += len(ids) - len(claimed)
        if not claimed:
            db.session.rollback()
            return
        periods = db.session.scalars(
            sa.select(BillingPeriod)
            .where(BillingPeriod.id.in_(claimed))
            .options(
                selectinload(BillingPeriod.plan_changes),
                selectinload(BillingPeriod.subscription).selectinload(Subscription.plan),
                selectinload(BillingPeriod.subscription).selectinload(Subscription.scheduled_plan),
            )
            .order_by(BillingPeriod.id)
        ).all()
        accounts = _by_id(Account, {p.account_id for p in periods})
        used = _sum_by_period(SeatUsage.leads_called, SeatUsage.period_id, claimed)
        seats_added = _count_by_period(Seat.fee_period_id, claimed)
        plans = {plan.code: plan for plan in db.session.scalars(sa.select(Plan))}
        closes: list[_Closed] = []
        for period in periods:
            try:
                closes.append(
                    compose_close(period, accounts[period.account_id], used, seats_added, plans)
                )
            except (billing.BillingRuleError, ValueError, KeyError) as exc:
                result.failures.append({"period_id": period.id, "error": repr(exc)[:500]})
                _put_back(period.id, exc)
        if closes:
            _write(closes, accounts, now)
        result.closed += len(closes)
        db.session.commit()


def _by_id(model: Any, ids: set[int]) -> dict[int, Any]:
    return {row.id: row for row in db.session.scalars(sa.select(model).where(model.id.in_(ids)))}


def _sum_by_period(column: Any, period_column: Any, ids: Sequence[int]) -> dict[int, int]:
    rows = db.session.execute(
        sa.select(period_column, sa.func.sum(column))
        .where(period_column.in_(ids))
        .group_by(period_column)
    ).all()
    return {int(period_id): int(total or 0) for period_id, total in rows}


def _count_by_period(period_column: Any, ids: Sequence[int]) -> dict[int, int]:
    rows = db.session.execute(
        sa.select(period_column, sa.func.count())
        .where(period_column.in_(ids))
        .group_by(period_column)
    ).all()
    return {int(period_id): int(count) for period_id, count in rows}


def compose_close(
    period: BillingPeriod,
    account: Account,
    used: dict[int, int],
    seats_added: dict[int, int],
    plans: dict[str, Plan],
) -> _Closed:
    """The closing invoice's lines and the plan the next period runs on (None: it ends).

    Also what the billing page shows as "the next invoice if the period closed now"."""
    subscription = period.subscription
    renewal_code = billing.renewal_plan_code(subscription_value(subscription))
    next_plan = plans[renewal_code] if renewal_code else None
    renewal = None
    if next_plan is not None:
        renewal = billing.Renewal(
            terms=plan_terms(next_plan),
            period=billing.period_bounds(
                subscription.anchor_date, period.month_index + 1, account.timezone
            ),
        )
    lines = billing.closing_lines(
        ledger_for(period, account),
        used.get(period.id, 0),
        seats_added=seats_added.get(period.id, 0),
        seat_fee_cents=period.seat_fee_cents,
        account_kind=account.kind.value,
        renewal=renewal,
    )
    return _Closed(period, lines, next_plan)


def _put_back(period_id: int, exc: Exception) -> None:
    db.session.execute(
        sa.update(BillingPeriod)
        .where(BillingPeriod.id == period_id)
        .values(status=PeriodStatus.OPEN, closing_started_at=None, close_error=repr(exc)[:2000])
        .execution_options(synchronize_session=False)
    )


def _audit(
    account_id: int, action: str, target: str, target_id: int, **details: Any
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "actor_label": "system",
        "action": action,
        "target_type": target,
        "target_id": target_id,
        "details": details,
        "created_at": utcnow(),
    }


def _write(closes: list[_Closed], accounts: dict[int, Account], now: datetime) -> None:
    """Write every close of the batch: invoices and lines, next periods, subscription
    changes, ended accounts and expired seats, audit events; then mark them closed."""
    issued_at = utcnow()
    numbers = reserve_invoice_numbers(issued_at, len(closes))
    invoice_ids = db.session.scalars(
        sa.insert(Invoice).returning(Invoice.id, sort_by_parameter_order=True),
        [
            {
                "account_id": close.period.account_id,
                "number": number,
                "kind": InvoiceKind.CLOSING,
                "period_id": close.period.id,
                "closes_period_id": close.period.id,
                "issued_at": issued_at,
                "total_cents": billing.invoice_total(close.lines),
            }
            for close, number in zip(closes, numbers, strict=True)
        ],
    ).all()
    line_rows = [
        {
            "account_id": close.period.account_id,
            "invoice_id": invoice_id,
            "position": position,
            "kind": line.kind.value,
            "description": line.description,
            "quantity": line.quantity,
            "unit_cents": line.unit_cents,
            "amount_cents": line.amount_cents,
        }
        for close, invoice_id in zip(closes, invoice_ids, strict=True)
        for position, line in enumerate(close.lines, start=1)
    ]
    if line_rows:
        db.session.execute(sa.insert(InvoiceLine), line_rows)
    audit = [
        _audit(close.period.account_id, "invoice.issued", "invoice", invoice_id, number=number)
        for close, invoice_id, number in zip(closes, invoice_ids, numbers, strict=True)
    ]
    renewing = [close for close in closes if close.next_plan is not None]
    ending = [close for close in closes if close.next_plan is None]
    if renewing:
        snapshot = SettingsSnapshot.now()
        db.session.execute(
            sa.insert(BillingPeriod),
            [
                new_period_values(
                    accounts[close.period.account_id],
                    close.period.subscription,
                    close.next_plan,
                    close.period.month_index + 1,
                    snapshot,
                )
                for close in renewing
                if close.next_plan is not None
            ],
        )
        db.session.execute(
            sa.update(Subscription),
            [
                {
                    "id": close.period.subscription_id,
                    "plan_id": close.next_plan.id,
                    "scheduled_plan_id": None,
                }
                for close in renewing
                if close.next_plan is not None
            ],
        )
        audit += [
            _audit(
                close.period.account_id,
                "period.renewed",
                "billingperiod",
                close.period.id,
                closed=close.period.key,
                plan=close.next_plan.code,
            )
            for close in renewing
            if close.next_plan is not None
        ]
    if ending:
        _end_subscriptions(ending, now)
        audit += [
            _audit(
                close.period.account_id,
                "subscription.ended",
                "subscription",
                close.period.subscription_id,
            )
            for close in ending
        ]
    db.session.execute(sa.insert(AuditEvent), audit)
    closed_ids = [close.period.id for close in closes]
    db.session.execute(
        sa.update(BillingPeriod)
        .where(BillingPeriod.id.in_(closed_ids), BillingPeriod.status == PeriodStatus.CLOSING)
        .values(status=PeriodStatus.CLOSED, closed_at=now, close_error="")
        .execution_options(synchronize_session=False)
    )
    enqueue_after_commit("reports", deliver_invoices, list(invoice_ids))
    # A multi-seat account gets its master call report of the period (the job picks them).
    from app.reports.jobs import deliver_master_reports  # here: app.reports reads billing

    enqueue_after_commit("reports", deliver_master_reports, [close.period.id for close in closes])


def _end_subscriptions(ending: list[_Closed], now: datetime) -> None:
    """The last close of a cancelled plan: the subscription and account end, seats expire."""
    account_ids = [close.period.account_id for close in ending]
    db.session.execute(
        sa.update(Subscription)
        .where(Subscription.id.in_([close.period.subscription_id for close in ending]))
        .values(status=SubscriptionStatus.ENDED, ended_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(Account)
        .where(Account.id.in_(account_ids))
        .values(status=AccountStatus.ENDED)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(Seat)
        .where(Seat.account_id.in_(account_ids), Seat.status == SeatStatus.VALID)
        .values(status=SeatStatus.EXPIRED, expired_at=now)
        .execution_options(synchronize_session=False)
    )
