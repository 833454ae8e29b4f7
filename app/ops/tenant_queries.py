"""Reads of the tenant list: every account with its plan and this period's usage.

Usage comes from the counters (`seat_usage`) and activity from each seat's `last_lead_at`,
never from the raw call data, so the list stays quick with many tenants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.billing.usage import overage_leads
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    Membership,
    PeriodStatus,
    PlanChange,
    Role,
    Seat,
    SeatStatus,
    SeatUsage,
    Subscription,
    SubscriptionStatus,
    User,
)
from app.tenancy import unscoped

TENANTS_PER_PAGE = 50


@dataclass(frozen=True)
class TenantRow:
    account: Account
    owner_email: str
    period: BillingPeriod | None
    seats: int
    used: int
    frozen: int
    cancelling: bool
    last_activity: datetime | None

    @property
    def overage_leads(self) -> int:
        if self.period is None:
            return 0
        return overage_leads(self.used, self.frozen, self.period.allowance, self.period.grace_leads)

    @property
    def overage_cents(self) -> int:
        return self.overage_leads * self.period.cpl_cents if self.period else 0

    @property
    def percent_used(self) -> int:
        if self.period is None:
            return 0
        return round(100 * self.used / self.period.allowance)

    @property
    def status(self) -> tuple[str, str]:
        """(label, badge kind) for the list."""
        if self.account.status.value == "ended" or self.period is None:
            return "Ended", "neutral"
        if self.cancelling:
            return "Cancelling", "warning"
        if self.overage_leads:
            return "Over plan", "danger"
        return "Active", "success"


@dataclass(frozen=True)
class TenantPage:
    rows: list[TenantRow]
    total: int
    page: int
    pages: int


def _owner_email() -> sa.ScalarSelect[str]:
    return (
        sa.select(sa.func.min(User.email))
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == Account.id, Membership.role == Role.OWNER)
        .correlate(Account)
        .scalar_subquery()
    )


def _search(q: str) -> sa.ColumnElement[bool]:
    pattern = f"%{q.lower()}%"
    owner_matches = (
        sa.select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.account_id == Account.id,
            Membership.role == Role.OWNER,
            sa.func.lower(User.email).like(pattern),
        )
        .correlate(Account)
        .exists()
    )
    return sa.or_(
        sa.func.lower(Account.name).like(pattern),
        sa.func.lower(Account.billing_email).like(pattern),
        owner_matches,
    )


def _rows(statement: sa.Select[Account, str]) -> list[TenantRow]:
    accounts = db.session.execute(statement).all()
    ids = [account.id for account, _owner in accounts]
    if not ids:
        return []
    periods = {
        period.account_id: period
        for period in db.session.scalars(
            sa.select(BillingPeriod)
            .where(BillingPeriod.account_id.in_(ids), BillingPeriod.status == PeriodStatus.OPEN)
            .order_by(BillingPeriod.month_index)
        )
    }
    period_ids = [period.id for period in periods.values()]
    used = dict(
        db.session.execute(
            sa.select(SeatUsage.period_id, sa.func.sum(SeatUsage.leads_called))
            .where(SeatUsage.period_id.in_(period_ids))
            .group_by(SeatUsage.period_id)
        ).all()
    )
    frozen = dict(
        db.session.execute(
            sa.select(PlanChange.period_id, sa.func.sum(PlanChange.frozen_leads))
            .where(PlanChange.period_id.in_(period_ids))
            .group_by(PlanChange.period_id)
        ).all()
    )
    seats = {
        account_id: (int(count), last)
        for account_id, count, last in db.session.execute(
            sa.select(
                Seat.account_id,
                sa.func.count(Seat.id).filter(Seat.status == SeatStatus.VALID),
                sa.func.max(Seat.last_lead_at),
            )
            .where(Seat.account_id.in_(ids))
            .group_by(Seat.account_id)
        ).all()
    }
    cancelling = set(
        db.session.scalars(
            sa.select(Subscription.account_id).where(
                Subscription.account_id.in_(ids),
                Subscription.status == SubscriptionStatus.ACTIVE,
                Subscription.cancel_at_period_end.is_(True),
            )
        )
    )
    rows = []
    for account, owner in accounts:
        period = periods.get(account.id)
        seat_count, last = seats.get(account.id, (0, None))
        rows.append(
            TenantRow(
                account=account,
                owner_email=owner or "",
                period=period,
                seats=seat_count,
                used=int(used.get(period.id, 0) or 0) if period else 0,
                frozen=int(frozen.get(period.id, 0) or 0) if period else 0,
                cancelling=account.id in cancelling,
                last_activity=last,
            )
        )
    return rows


def tenant_page(q: str = "", page: int = 1, per_page: int = TENANTS_PER_PAGE) -> TenantPage:
    """One page of every account, by name; `q` matches the name, billing or owner email.

    Reads across tenants (the operator console)."""
    where = [_search(q)] if q else []
    with unscoped():
        total = db.session.scalar(sa.select(sa.func.count(Account.id)).where(*where)) or 0
        pages = max(1, math.ceil(total / per_page))
        page = min(max(1, page), pages)
        statement = (
            sa.select(Account, _owner_email())
            .where(*where)
            .order_by(sa.func.lower(Account.name), Account.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        rows = _rows(statement)
    return TenantPage(rows, total, page, pages)


def tenant_row(account: Account) -> TenantRow:
    """The list's row of one account, inside its tenant context (the top of its pages)."""
    [row] = _rows(sa.select(Account, _owner_email()).where(Account.id == account.id))
    return row
