"""The operator console's billing runs: due and overdue periods, failed closes with their
reason, the last runs, and re-runs that a real worker carries out exactly once."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import (
    Account,
    AuditEvent,
    BillingPeriod,
    BillingRun,
    Invoice,
    PeriodStatus,
    User,
    utcnow,
)
from app.queue import get_queue
from app.tenancy import tenant_context, unscoped
from tests import factories
from tests.conftest import Auth
from tests.live import empty_queues, live_app, run_worker_burst


def ended_account(days_ago: int = 45, name: str = "Harbor Realty") -> Account:
    """An account whose first month ended weeks ago and is still open: due for closing."""
    start = (utcnow() - timedelta(days=days_ago)).date()
    return factories.subscribed_account(kind="brokerage", seats=1, start=start, name=name)


def first_period(account: Account) -> BillingPeriod:
    with tenant_context(account.id):
        period = db.session.scalars(
            sa.select(BillingPeriod)
            .order_by(BillingPeriod.month_index)
            .execution_options(populate_existing=True)
        ).first()
    assert period is not None
    return period


def page(client: FlaskClient) -> str:
    response = client.get("/ops/billing-runs")
    assert response.status_code == 200
    return html.unescape(response.text)


@pytest.fixture
def ops(client: FlaskClient, auth: Auth, operator: User) -> FlaskClient:
    auth.login(operator)
    return client


def test_due_overdue_failed_and_last_runs_are_shown(ops: FlaskClient) -> None:
    failing = ended_account(name="Harbor Realty")
    with unscoped():
        first_period(failing).close_error = "BillingRuleError('no plan to renew on')"
    ended_account(name="Brightpath Homes")
    started = utcnow() - timedelta(minutes=5)
    db.session.add(
        BillingRun(
            trigger="schedule",
            started_at=started,
            finished_at=started + timedelta(seconds=2.5),
            due_count=3,
            closed_count=2,
            skipped_count=0,
            failed_count=1,
        )
    )
    db.session.flush()

    text = page(ops)
    assert "Harbor Realty" in text
    assert "Brightpath Homes" in text
    assert text.count("Overdue</span>") == 3  # both, and Harbor again among the failures
    assert "BillingRuleError('no plan to renew on')" in text
    assert "2.50 s" in text
    assert f"{started:%-d %b %Y, %H:%M} UTC" in text


def test_a_period_in_its_grace_window_or_closed_is_not_rerun(ops: FlaskClient) -> None:
    account = ended_account()
    period = first_period(account)
    with unscoped():
        period.ends_at = utcnow() - timedelta(minutes=5)  # the 120-minute grace is running
    db.session.commit()
    response = ops.post(f"/ops/billing-runs/periods/{period.id}/rerun")
    assert response.status_code == 303
    assert "is not due yet" in page(ops)
    with unscoped():
        period.status = PeriodStatus.CLOSED
    db.session.commit()
    ops.post(f"/ops/billing-runs/periods/{period.id}/rerun")
    assert "is closed already" in page(ops)
    assert ops.post("/ops/billing-runs/periods/999999/rerun").status_code == 404


@pytest.fixture
def live() -> Iterator[Flask]:
    with live_app("ops_billing_runs") as app:
        empty_queues(app)
        yield app
        empty_queues(app)


@pytest.mark.live
def test_reruns_are_closed_by_the_worker_exactly_once(live: Flask) -> None:
    with live.app_context():
        operator = factories.UserFactory(is_operator=True)
        failed = ended_account(name="Harbor Realty")
        period = first_period(failed)
        with unscoped():
            period.close_error = "ValueError('seat fee missing')"
        others = [ended_account(name=f"Account {n}").id for n in range(2)]
        db.session.commit()
        failed_id, period_id, operator_email = failed.id, period.id, operator.email
    client = live.test_client()
    login = {"email": operator_email, "password": factories.PASSWORD}
    assert client.post("/login", data=login).status_code == 302
    text = page(client)
    assert "ValueError('seat fee missing')" in text
    assert "Account 1" in text

    # The failed period twice, then every due period (the failed one a third time): the
    # later closes find it closed and change nothing.
    for _ in range(2):
        assert client.post(f"/ops/billing-runs/periods/{period_id}/rerun").status_code == 303
    assert client.post("/ops/billing-runs/close-due").status_code == 303
    with live.app_context():
        assert get_queue("billing").count == 3
    run_worker_burst(live, ("billing",))

    with live.app_context():
        with tenant_context(failed_id):
            closed = db.session.get_one(BillingPeriod, period_id)
            assert (closed.status, closed.close_error) == (PeriodStatus.CLOSED, "")
            closing = sa.select(Invoice.id).where(Invoice.closes_period_id == period_id)
            assert len(db.session.scalars(closing).all()) == 1
            assert (
                db.session.scalars(
                    sa.select(AuditEvent.action).where(
                        AuditEvent.action == "billing.close_enqueued"
                    )
                ).all()
                == ["billing.close_enqueued"] * 2
            )
        for account_id in others:
            assert first_period_status(account_id) is PeriodStatus.CLOSED
        runs = db.session.execute(
            sa.select(
                BillingRun.trigger, BillingRun.closed_count, BillingRun.skipped_count
            ).order_by(BillingRun.id)
        ).all()
    assert [tuple(run) for run in runs] == [
        ("operator", 1, 0),
        ("operator", 0, 1),
        ("schedule", 2, 0),
    ]
    text = page(client)
    assert "No failed closes" in text
    assert "Nothing due" in text


def first_period_status(account_id: int) -> PeriodStatus:
    with tenant_context(account_id):
        status = db.session.scalar(
            sa.select(BillingPeriod.status).order_by(BillingPeriod.month_index)
        )
    assert status is not None
    return status
