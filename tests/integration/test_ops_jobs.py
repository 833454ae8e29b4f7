"""The operator console's jobs page: queue counts, workers, failed jobs with their traceback,
retry and delete, against real Redis queues and real worker processes."""

from __future__ import annotations

import html
import os
import signal
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job

from app.billing_portal.jobs import close_period_batch
from app.extensions import db
from app.models import AuditEvent, User
from app.queue import get_queue, redis_connection
from app.tenancy import unscoped
from tests import factories
from tests.conftest import Auth
from tests.live import empty_queues, live_app, start_worker


@pytest.fixture
def live() -> Iterator[Flask]:
    with live_app("ops_jobs") as app:
        empty_queues(app)
        yield app
        empty_queues(app)


def operator_client(app: Flask) -> FlaskClient:
    with app.app_context():
        operator: User = factories.UserFactory(is_operator=True)
        db.session.commit()
        login = {"email": operator.email, "password": factories.PASSWORD}
    client = app.test_client()
    assert client.post("/login", data=login).status_code == 302
    return client


def text(client: FlaskClient, url: str = "/ops/jobs") -> str:
    response = client.get(url)
    assert response.status_code == 200
    return html.unescape(response.text)


def failing_job(app: Flask, period_id: int) -> str:
    """A real job with a bad argument: the close's time is not a time."""
    with app.app_context():
        job = get_queue("billing").enqueue(close_period_batch, [period_id], "not-a-time")
        return job.id


def actions(app: Flask) -> list[str]:
    with app.app_context(), unscoped():
        return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def wait_for(client: FlaskClient, *wanted: str) -> str:
    """The jobs page once it shows every one of `wanted` (a worker is at work meanwhile)."""
    deadline = time.monotonic() + 30
    while True:
        page = text(client)
        if all(part in page for part in wanted) or time.monotonic() > deadline:
            return page
        time.sleep(0.2)


@pytest.mark.live
def test_failed_jobs_are_shown_retried_and_deleted(live: Flask) -> None:
    client = operator_client(live)
    assert "No worker is running" in text(client)
    worker = start_worker(live, ("billing",))
    try:
        retried, deleted = failing_job(live, 1), failing_job(live, 2)
        page = wait_for(client, "close_period_batch([1]", "close_period_batch([2]")
        assert "close_period_batch([1], 'not-a-time')" in page
        assert "close_period_batch([2], 'not-a-time')" in page
        assert "ValueError: Invalid isoformat string: 'not-a-time'" in page
        with live.app_context():
            [running] = Worker.all(connection=redis_connection())
        assert running.name in page
        detail = text(client, f"/ops/jobs/{retried}")
        assert "Traceback (most recent call last)" in detail
        assert "fromisoformat" in detail

        assert client.post(f"/ops/jobs/{deleted}/delete").status_code == 303
        page = text(client)
        assert f"Deleted job {deleted}." in page
        assert "close_period_batch([2]" not in page
        with live.app_context(), pytest.raises(NoSuchJobError):
            Job.fetch(deleted, connection=redis_connection())
        assert client.post(f"/ops/jobs/{deleted}/retry").status_code == 404

        with live.app_context():
            first_end = Job.fetch(retried, connection=redis_connection()).ended_at
        assert client.post(f"/ops/jobs/{retried}/retry").status_code == 303
        assert f"Job {retried} is back on the billing queue." in text(client)
        # The worker runs it again, and with the same bad argument it fails again.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with live.app_context():
                again = Job.fetch(retried, connection=redis_connection())
                if again.ended_at != first_end and again.get_status().value == "failed":
                    break
            time.sleep(0.2)
        assert again.ended_at != first_end
        assert again.get_status().value == "failed"
        assert "close_period_batch([1], 'not-a-time')" in text(client)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)
    assert actions(live) == ["job.deleted", "job.retried"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/ops/jobs/no-such-job"),
        ("POST", "/ops/jobs/no-such-job/retry"),
        ("POST", "/ops/jobs/no-such-job/delete"),
    ],
)
def test_an_unknown_job_is_404(
    client: FlaskClient, auth: Auth, operator: User, method: str, url: str
) -> None:
    auth.login(operator)
    assert client.open(url, method=method).status_code == 404
