"""`flask seed-demo`: a valid catalogue, the three demo accounts with their seats, real closing
invoices for the two past months, the agency over its plan once, and a second run that does
nothing."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from app import billing
from app.auth.passwords import check_password
from app.calls.operations import recompute_counters
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    Lead,
    Membership,
    PeriodStatus,
    Plan,
    Role,
    Seat,
    User,
)
from app.seed import CATALOGUE, DEMO_PASSWORD
from app.tenancy import tenant_context

SEAT_COUNTS = {"brightpath": 40, "harbor": 12, "dana": 1}


def _seed(app: Flask) -> str:
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_demo_loads_once_with_real_invoices(app: Flask) -> None:
    output = _seed(app)

    assert "Demo data loaded: 3 accounts, 53 seats" in output
    plans = db.session.scalars(sa.select(Plan).order_by(Plan.allowance)).all()
    assert [plan.code for plan in plans] == [code for code, *_ in CATALOGUE]
    terms = [
        billing.PlanTerms(p.code, p.name, p.allowance, p.price_cents, p.cpl_cents) for p in plans
    ]
    assert billing.validate_catalogue(terms) == []
    operator = db.session.scalars(sa.select(User).where(User.email == "ops@seatwise.example")).one()
    assert operator.is_operator
    assert check_password(operator, DEMO_PASSWORD)

    accounts = {a.slug: a for a in db.session.scalars(sa.select(Account))}
    assert set(SEAT_COUNTS) <= set(accounts)
    for slug, seat_count in SEAT_COUNTS.items():
        account = accounts[slug]
        with tenant_context(account.id):
            assert db.session.scalar(sa.select(sa.func.count(Seat.id))) == seat_count
            assert db.session.scalar(sa.select(sa.func.count(Lead.id)))
            periods = db.session.scalars(
                sa.select(BillingPeriod).order_by(BillingPeriod.month_index)
            ).all()
            assert [(p.key, p.status) for p in periods] == [
                ("M1", PeriodStatus.CLOSED),
                ("M2", PeriodStatus.CLOSED),
                ("M3", PeriodStatus.OPEN),
            ]
            closes = set(
                db.session.scalars(
                    sa.select(Invoice.closes_period_id).where(Invoice.kind == InvoiceKind.CLOSING)
                )
            )
            assert closes == {periods[0].id, periods[1].id}
        assert recompute_counters(account.id) == []

    with tenant_context(accounts["brightpath"].id):
        roles = set(db.session.scalars(sa.select(Membership.role)))
        overage_months = set(
            db.session.scalars(
                sa.select(BillingPeriod.month_index)
                .join(Invoice, Invoice.closes_period_id == BillingPeriod.id)
                .join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
                .where(InvoiceLine.kind == "overage")
            )
        )
    assert roles == set(Role)
    assert overage_months == {2}
    with tenant_context(accounts["harbor"].id):
        assert not db.session.scalar(
            sa.select(sa.func.count(InvoiceLine.id)).where(InvoiceLine.kind == "overage")
        )

    assert _seed(app).strip() == "demo data already loaded"
    assert db.session.scalar(sa.select(sa.func.count(Account.id))) == len(accounts)
