"""The app as gunicorn serves it for `bench/dashboard.py`, plus one benchmark-only page:
the same dashboard with every figure computed from the raw call data (the baseline the
counters are measured against). Not part of the product."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import Response

from app import create_app
from app.extensions import db
from app.models import CallAttempt, Disposition, Lead
from app.usage.queries import PeriodTotals, SeatPage, SeatUsageRow, seat_usage_page
from app.usage.views import UsageSource, usage_page
from app.web import tenant_blueprint


def raw_totals(period_id: int, seat_id: int | None = None) -> PeriodTotals:
    """Totals of a period (or one seat) from the leads and their attempts."""
    billed = sa.select(Lead.id, Lead.contacted).where(Lead.billed_period_id == period_id)
    if seat_id is not None:
        billed = billed.where(Lead.seat_id == seat_id)
    leads = billed.subquery()
    attempts = CallAttempt.__table__

    def leads_with(disposition: Disposition) -> sa.ColumnElement[int]:
        matched = sa.case((attempts.c.disposition == disposition.value, leads.c.id))
        return sa.func.count(sa.distinct(matched))

    row = db.session.execute(
        sa.select(
            sa.func.count(sa.distinct(leads.c.id)),
            sa.func.count(sa.distinct(sa.case((leads.c.contacted, leads.c.id)))),
            leads_with(Disposition.LIVE_TRANSFER),
            leads_with(Disposition.BOOKED_APPOINTMENT),
        ).select_from(leads.join(attempts, attempts.c.lead_id == leads.c.id))
    ).one()
    called = int(row[0])
    # Every lead in this benchmark is received and called in the same period.
    return PeriodTotals(called, called, int(row[1]), int(row[2]), int(row[3]))


def raw_seat_page(
    period_id: int, sort: str, descending: bool, page: int, per_page: int, seat_id: int | None
) -> SeatPage:
    """The same seats, each one's figures recounted from raw data."""
    listed = seat_usage_page(period_id, sort, descending, page, per_page, seat_id)
    rows = [
        SeatUsageRow(
            row.seat_id,
            row.reference,
            row.client_label,
            row.primary_name,
            row.active,
            raw_totals(period_id, row.seat_id),
        )
        for row in listed.rows
    ]
    return SeatPage(rows, listed.total, listed.page, listed.pages)


def raw_daily(period_id: int, seat_id: int | None = None) -> dict[date, int]:
    day = sa.func.date(Lead.first_attempt_at)
    query = (
        sa.select(day, sa.func.count(Lead.id))
        .where(Lead.billed_period_id == period_id)
        .group_by(day)
    )
    if seat_id is not None:
        query = query.where(Lead.seat_id == seat_id)
    return {
        (value if isinstance(value, date) else date.fromisoformat(str(value))): int(count)
        for value, count in db.session.execute(query).all()
    }


RAW = UsageSource(raw_totals, raw_seat_page, raw_daily)
raw = tenant_blueprint("bench_raw", __name__, "/raw")


@raw.get("/")
def raw_dashboard() -> Response:
    return usage_page(None, RAW)


app = create_app()
app.register_blueprint(raw)
