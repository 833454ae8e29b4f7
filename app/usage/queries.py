"""Reads of usage, from the counters only (never the raw call data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import sqlalchemy as sa

from app.billing import month_index
from app.extensions import db
from app.models import (
    Account,
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


_USAGE = SeatUsage.__table__
_PLAN_CHANGES = PlanChange.__table__
_SEATS = Seat.__table__
_PERIODS = BillingPeriod.__table__
# An alias: the poll's own query joins the accounts table, which this one must not correlate to.
_ACCOUNTS = Account.__table__.alias("version_account")
_SETTINGS = Setting.__table__


def usage_version(
    account_id: Any, seat_id: int | sa.ColumnElement[Any] | None
) -> sa.ColumnElement[str]:
    """The usage version of the period in the enclosing query (`billing_periods`), as one text
    the database puts together: a tag that changes whenever anything a usage page shows for
    the period does.

    It is made of the account's creation time, the period's terms and state, the counters'
    versions summed (of one seat, when `seat_id` is given; an SQL expression that may be NULL
    means "one seat, or all when NULL") — a counter row starts at version 1 and every change
    adds 1, so the sum moves with every new row and every change — the period's plan changes,
    the account's newest seat (a seat added moves it) and the latest operator setting. Core
    on purpose: the unchanged-poll middleware correlates it to its own query before any
    tenant is set."""
    period = _PERIODS.c
    versions = sa.select(sa.func.coalesce(sa.func.sum(_USAGE.c.version), 0)).where(
        _USAGE.c.period_id == period.id
    )
    summed: sa.ColumnElement[Any]
    if isinstance(seat_id, sa.ColumnElement):
        # Two sums, of which the database evaluates one: a filter on the expression would be
        # evaluated for every counter row.
        summed = sa.case(
            (seat_id.is_(None), versions.scalar_subquery()),
            else_=versions.where(_USAGE.c.seat_id == seat_id).scalar_subquery(),
        )
    elif seat_id is not None:
        summed = versions.where(_USAGE.c.seat_id == seat_id).scalar_subquery()
    else:
        summed = versions.scalar_subquery()
    parts: list[sa.ColumnElement[Any]] = [
        sa.select(_ACCOUNTS.c.created_at).where(_ACCOUNTS.c.id == account_id).scalar_subquery(),
        period.id,
        period.starts_at,
        period.status,
        period.plan_code,
        period.allowance,
        period.cpl_cents,
        period.grace_leads,
        summed,
        sa.select(sa.func.count(_PLAN_CHANGES.c.id))
        .where(_PLAN_CHANGES.c.period_id == period.id)
        .scalar_subquery(),
        sa.select(sa.func.max(_SEATS.c.id))
        .where(_SEATS.c.account_id == account_id)
        .scalar_subquery(),
        sa.select(sa.func.max(_SETTINGS.c.updated_at)).scalar_subquery(),
    ]
    # Constants in the SQL text, not parameters: nothing to send and convert on each query.
    dot, empty = sa.literal_column("'.'", sa.Text), sa.literal_column("''", sa.Text)
    version: sa.ColumnElement[str] = sa.literal_column("'u'", sa.Text)
    for part in parts:
        version = version + dot + sa.func.coalesce(sa.cast(part, sa.Text), empty)
    return version


@cache
def _shown_period(keyed: bool, one_seat: bool) -> sa.Select[BillingPeriod, str]:
    """`shown_period`'s statement, built once for each kind of page."""
    seat = sa.bindparam("seat_id", type_=sa.Integer) if one_seat else None
    query = sa.select(BillingPeriod, usage_version(BillingPeriod.account_id, seat))
    if keyed:
        query = query.where(BillingPeriod.month_index == sa.bindparam("month_index"))
    return query.order_by(
        (BillingPeriod.status == PeriodStatus.OPEN).desc(), BillingPeriod.month_index.desc()
    ).limit(1)


class UnknownPeriod(LookupError):
    """The month key names no period of the account."""


def shown_period(key: str, seat_id: int | None = None) -> tuple[BillingPeriod, str] | None:
    """The period a usage page shows — the one named by its month key ("M3"), else the open
    one, else the newest — with its usage version, in one query; None when the account has no
    period yet. The version is a tag that changes whenever anything the page shows for the
    period does: the counters' versions, the period's terms and state, its plan changes, a
    new seat and the operator settings."""
    params: dict[str, int] = {}
    if key:
        index = month_index(key)
        if index is None:
            raise UnknownPeriod(key)
        params["month_index"] = index
    if seat_id is not None:
        params["seat_id"] = seat_id
    found = db.session.execute(_shown_period(bool(key), seat_id is not None), params).first()
    if found is None:
        if key:
            raise UnknownPeriod(key)
        return None
    period, version = found
    return period, version


def closing_invoice(period_id: int) -> Invoice | None:
    return db.session.scalar(sa.select(Invoice).where(Invoice.closes_period_id == period_id))


def catalogue() -> list[Plan]:
    """The plans on offer (for the "a bigger plan would be cheaper" hint)."""
    return list(
        db.session.scalars(sa.select(Plan).where(Plan.retired.is_(False)).order_by(Plan.allowance))
    )
