"""Reads of usage, from the counters only (never the raw call data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    BillingPeriod,
    Invoice,
    PeriodStatus,
    Person,
    Plan,
    PlanChange,
    Seat,
    SeatUsage,
    Setting,
    UsageDay,
    utcnow,
)
from app.models.seats import ACTIVE_WINDOW


@dataclass(frozen=True)
class PeriodTotals:
    leads_received: int
    leads_called: int
    leads_contacted: int
    transfers: int
    appointments: int

    @property
    def contact_rate(self) -> float | None:
        return self.leads_contacted / self.leads_called if self.leads_called else None


@dataclass(frozen=True)
class SeatUsageRow:
    seat_id: int
    reference: str
    client_label: str
    primary_name: str
    active: bool
    totals: PeriodTotals


def open_period() -> BillingPeriod | None:
    """The current account's open billing period, if it has one."""
    return db.session.scalar(
        sa.select(BillingPeriod)
        .where(BillingPeriod.status == PeriodStatus.OPEN)
        .order_by(BillingPeriod.month_index.desc())
        .limit(1)
    )


def periods() -> list[BillingPeriod]:
    """Every period of the account, newest first (for the period picker)."""
    return list(
        db.session.scalars(sa.select(BillingPeriod).order_by(BillingPeriod.month_index.desc()))
    )


def period_by_key(key: str) -> BillingPeriod | None:
    """The period named by its month key ("M3"), or None."""
    if not key.upper().startswith("M") or not key[1:].isdigit():
        return None
    return db.session.scalar(
        sa.select(BillingPeriod).where(BillingPeriod.month_index == int(key[1:])).limit(1)
    )


_SUMS = (
    sa.func.coalesce(sa.func.sum(SeatUsage.leads_received), 0),
    sa.func.coalesce(sa.func.sum(SeatUsage.leads_called), 0),
    sa.func.coalesce(sa.func.sum(SeatUsage.leads_contacted), 0),
    sa.func.coalesce(sa.func.sum(SeatUsage.transfers), 0),
    sa.func.coalesce(sa.func.sum(SeatUsage.appointments), 0),
)


def period_totals(period_id: int, seat_id: int | None = None) -> PeriodTotals:
    """Sum of the seat counters of one period (one seat's, when given)."""
    query = sa.select(*_SUMS).where(SeatUsage.period_id == period_id)
    if seat_id is not None:
        query = query.where(SeatUsage.seat_id == seat_id)
    return PeriodTotals(*(int(v) for v in db.session.execute(query).one()))


_SEAT_COUNTERS = (
    sa.func.coalesce(SeatUsage.leads_received, 0),
    sa.func.coalesce(SeatUsage.leads_called, 0),
    sa.func.coalesce(SeatUsage.leads_contacted, 0),
    sa.func.coalesce(SeatUsage.transfers, 0),
    sa.func.coalesce(SeatUsage.appointments, 0),
)
_called = sa.func.coalesce(SeatUsage.leads_called, 0)
SEAT_SORTS: dict[str, tuple[Any, ...]] = {
    "client": (Seat.client_label, Person.name),
    "seat": (Person.name,),
    "received": (sa.func.coalesce(SeatUsage.leads_received, 0),),
    "called": (_called,),
    "contact": (sa.func.coalesce(SeatUsage.leads_contacted, 0) * 1.0 / sa.func.nullif(_called, 0),),
    "outcomes": (
        sa.func.coalesce(SeatUsage.transfers, 0) + sa.func.coalesce(SeatUsage.appointments, 0),
    ),
}


@dataclass(frozen=True)
class SeatPage:
    rows: list[SeatUsageRow]
    total: int
    page: int
    pages: int


def seat_usage_page(
    period_id: int,
    sort: str = "called",
    descending: bool = True,
    page: int = 1,
    per_page: int = 50,
    seat_id: int | None = None,
) -> SeatPage:
    """One page of seats with their counters in the period (seats with no usage show
    zeros), sorted in the database so a 1,000-seat account stays quick."""
    columns = SEAT_SORTS[sort]
    order = [column.desc() if descending else column.asc() for column in columns]
    # Ties (and the client grouping) read best alphabetically, then stably by id.
    order += [Person.name.asc(), Seat.id.asc()]
    query = (
        sa.select(
            Seat.id,
            Seat.reference,
            Seat.client_label,
            Person.name,
            Seat.last_lead_at,
            *_SEAT_COUNTERS,
        )
        .join(Person, Person.id == Seat.primary_person_id)
        .outerjoin(
            SeatUsage, sa.and_(SeatUsage.seat_id == Seat.id, SeatUsage.period_id == period_id)
        )
    )
    if seat_id is not None:
        query = query.where(Seat.id == seat_id)
    total = int(db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    recent = utcnow() - ACTIVE_WINDOW
    rows = [
        SeatUsageRow(
            seat_id=row[0],
            reference=row[1],
            client_label=row[2],
            primary_name=row[3],
            active=row[4] is not None and row[4] >= recent,
            totals=PeriodTotals(*(int(v) for v in row[5:])),
        )
        for row in db.session.execute(
            query.order_by(*order).limit(per_page).offset((page - 1) * per_page)
        ).all()
    ]
    return SeatPage(rows, total, page, pages)


def daily_called(period_id: int, seat_id: int | None = None) -> dict[date, int]:
    """Leads called per local day of the period."""
    query = (
        sa.select(UsageDay.day, sa.func.sum(UsageDay.leads_called))
        .where(UsageDay.period_id == period_id)
        .group_by(UsageDay.day)
    )
    if seat_id is not None:
        query = query.where(UsageDay.seat_id == seat_id)
    return {day: int(total or 0) for day, total in db.session.execute(query).all()}


def usage_version(period: BillingPeriod, seat_id: int | None = None) -> str:
    """A tag that changes whenever anything the dashboard shows for the period does: the
    counters' versions, the period's terms and state, its plan changes, the seats and the
    operator settings. One query, so an unchanged poll costs one round trip."""
    usage = sa.select(
        sa.func.coalesce(sa.func.sum(SeatUsage.version), 0).label("versions"),
        sa.func.count(SeatUsage.id).label("rows"),
    ).where(SeatUsage.period_id == period.id)
    if seat_id is not None:
        usage = usage.where(SeatUsage.seat_id == seat_id)
    counters = usage.subquery()
    versions, rows, changes, seats, settings = db.session.execute(
        sa.select(
            counters.c.versions,
            counters.c.rows,
            sa.select(sa.func.count(PlanChange.id))
            .where(PlanChange.period_id == period.id)
            .scalar_subquery(),
            sa.select(sa.func.count(Seat.id)).scalar_subquery(),
            sa.select(sa.func.max(Setting.updated_at)).scalar_subquery(),
        )
    ).one()
    return (
        f"p{period.id}.{period.starts_at.timestamp()}.{period.status.value}.{period.plan_code}"
        f".{period.allowance}.{period.cpl_cents}.{period.grace_leads}"
        f".{changes}.v{versions}.{rows}.s{seats}.{settings}"
    )


def closing_invoice(period_id: int) -> Invoice | None:
    return db.session.scalar(sa.select(Invoice).where(Invoice.closes_period_id == period_id))


def catalogue() -> list[Plan]:
    """The plans on offer (for the "a bigger plan would be cheaper" hint)."""
    return list(
        db.session.scalars(sa.select(Plan).where(Plan.retired.is_(False)).order_by(Plan.allowance))
    )
