"""A period closes exactly once: run twice, raced by two worker processes, or with its
worker killed (SIGKILL) in the middle — one closing invoice per period every time."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from app.billing_portal.closing import close_periods, due_period_ids
from app.billing_portal.jobs import close_period_batch
from app.extensions import db
from app.models import (
    AccountKind,
    BillingPeriod,
    Invoice,
    InvoiceKind,
    PeriodStatus,
    Plan,
    utcnow,
)
from app.onboarding.operations import create_account
from app.queue import get_queue
from app.seats.operations import PersonDetails, SeatDetails
from tests.live import empty_queues, live_app, run_worker_burst, start_worker

pytestmark = [pytest.mark.live, pytest.mark.worker]


def _accounts_with_an_ended_period(app: Flask, count: int) -> list[int]:
    """`count` accounts whose M1 ended a day ago; returns their due period ids."""
    start = (utcnow() - timedelta(days=40)).date()
    with app.app_context(), app.test_request_context():
        plan = Plan(
            code="GROWTH-100", name="Growth 100", allowance=100, cpl_cents=1000, price_cents=100_000
        )
        db.session.add(plan)
        db.session.flush()
        for n in range(count):
            create_account(
                name=f"Close Test {n}",
                kind=AccountKind.BROKERAGE,
                plan=plan,
                owner_email=f"owner{n}@close.example",
                start=start,
                seats=(SeatDetails(PersonDetails(f"Agent {n}", f"agent{n}@close.example")),),
            )
        db.session.commit()
        return due_period_ids(utcnow())


def _closing_invoices_by_period(app: Flask) -> dict[int, int]:
    with app.app_context():
        from app.tenancy import unscoped

        with unscoped():
            rows = db.session.execute(
                sa.select(Invoice.closes_period_id, sa.func.count(Invoice.id))
                .where(Invoice.kind == InvoiceKind.CLOSING)
                .group_by(Invoice.closes_period_id)
            ).all()
            stuck = db.session.scalar(
                sa.select(sa.func.count(BillingPeriod.id)).where(
                    BillingPeriod.status == PeriodStatus.CLOSING
                )
            )
    assert stuck == 0, "a period was left half-closed"
    return {int(period_id): int(count) for period_id, count in rows}


def test_running_the_close_twice_issues_one_invoice_per_period() -> None:
    with live_app("close_twice") as app:
        due = _accounts_with_an_ended_period(app, 5)
        assert len(due) == 5
        with app.app_context():
            first = close_periods(due, utcnow(), trigger="test")
            second = close_periods(due, utcnow(), trigger="test")
            assert due_period_ids(utcnow()) == []
        assert (first.closed, first.skipped) == (5, 0)
        assert (second.closed, second.skipped) == (0, 5)
        assert _closing_invoices_by_period(app) == dict.fromkeys(due, 1)


def test_two_workers_racing_on_the_same_periods_close_each_once() -> None:
    with live_app("close_race") as app:
        empty_queues(app)
        due = _accounts_with_an_ended_period(app, 40)
        now = utcnow().isoformat()
        with app.app_context():
            queue = get_queue("billing")
            queue.enqueue(close_period_batch, due, now)
            queue.enqueue(close_period_batch, list(reversed(due)), now)
        workers = [start_worker(app, ("billing",), burst=True) for _ in range(2)]
        for worker in workers:
            assert worker.wait(timeout=180) == 0
        assert _closing_invoices_by_period(app) == dict.fromkeys(due, 1)
        with app.app_context():
            from app.models import BillingRun

            runs = db.session.scalars(sa.select(BillingRun)).all()
            assert sum(run.closed_count for run in runs) == 40
            assert sum(run.skipped_count for run in runs) == 40


def test_a_worker_killed_mid_close_leaves_nothing_half_done_and_the_next_run_finishes() -> None:
    with live_app("close_killed") as app:
        empty_queues(app)
        due = _accounts_with_an_ended_period(app, 350)
        with app.app_context():
            get_queue("billing").enqueue(close_period_batch, due, utcnow().isoformat())
        worker = start_worker(app, ("billing",))
        deadline = time.monotonic() + 120
        closed = 0
        while time.monotonic() < deadline and closed == 0:
            time.sleep(0.05)
            closed = len(_closing_invoices_by_period(app))
        assert 0 < closed < 350, f"could not catch the close in the middle ({closed} closed)"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        partly = _closing_invoices_by_period(app)
        assert set(partly.values()) == {1}
        with app.app_context():
            get_queue("billing").enqueue(close_period_batch, due, utcnow().isoformat())
        run_worker_burst(app, ("billing",))
        assert _closing_invoices_by_period(app) == dict.fromkeys(due, 1)
