"""The worker process renders reports: a master PDF checked against the database, a failure
shown with its reason and a retry button, and a worker killed mid-render that leaves no file
behind a ready status (the report is rendered again from scratch)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from app.auth.passwords import hash_password
from app.calls.operations import recompute_counters
from app.extensions import db
from app.models import (
    Account,
    AccountKind,
    CallAttempt,
    Disposition,
    Lead,
    Plan,
    Report,
    ReportFormat,
    ReportStatus,
    Seat,
    User,
)
from app.onboarding.operations import create_account
from app.pdf import files_root
from app.reports.operations import ReportRequest, queue_rendering, request_report
from app.seats.operations import PersonDetails, SeatDetails
from app.tenancy import tenant_context, unscoped
from app.usage.queries import period_totals
from tests.factories import PASSWORD
from tests.integration.test_reports import DETAIL_ROW, cells, pdf_pages
from tests.live import empty_queues, live_app, run_worker_burst, start_worker

pytestmark = [pytest.mark.live, pytest.mark.worker]


def build_agency(seats: int, leads: int, seed: int = 5) -> tuple[int, int, int]:
    """An agency with `seats` seats and `leads` called leads in its open period (bulk
    inserted, counters rebuilt from them); returns (account id, period id, owner id)."""
    rng = random.Random(seed)
    plan = Plan(code="T400", name="Team 400", allowance=400, cpl_cents=1000, price_cents=400_000)
    db.session.add(plan)
    db.session.flush()
    new = create_account(
        name="Worker Test Agency",
        kind=AccountKind.AGENCY,
        plan=plan,
        owner_email="owner@worker.example",
        start=(datetime.now(UTC) - timedelta(days=10)).date(),
        seats=tuple(
            SeatDetails(
                PersonDetails(f"Agent {n:02d}", f"agent{n}@worker.example"), None, f"Client {n % 3}"
            )
            for n in range(seats)
        ),
    )
    new.owner.password_hash = hash_password(PASSWORD)
    account, period = new.account, new.subscribed.period
    with tenant_context(account.id):
        seat_ids = list(db.session.scalars(sa.select(Seat.id).order_by(Seat.id)))
    start = period.starts_at + timedelta(hours=6)
    span = (datetime.now(UTC) - timedelta(hours=2) - start).total_seconds()
    dispositions = list(Disposition)
    lead_rows, attempt_rows = [], []
    for n in range(leads):
        received = start + timedelta(seconds=rng.random() * span)
        first = received + timedelta(minutes=rng.randint(1, 240))
        disposition = rng.choice(dispositions)
        lead_rows.append(
            {
                "id": n + 1,
                "account_id": account.id,
                "seat_id": seat_ids[n % seats],
                "external_id": f"W{n}",
                "name": f"Lead {n:05d}",
                "source": rng.choice(["Zillow", "Facebook", "Website"]),
                "received_at": received,
                "first_attempt_at": first,
                "billed_period_id": period.id,
                "last_attempt_at": first,
                "last_disposition": disposition,
                "attempts_count": 1,
                "contacted": disposition.contacted,
                "closed": disposition.closes_lead,
            }
        )
        attempt_rows.append(
            {
                "account_id": account.id,
                "event_id": f"WE{n}",
                "seat_id": seat_ids[n % seats],
                "lead_id": n + 1,
                "attempted_at": first,
                "disposition": disposition,
                "period_id": period.id,
            }
        )
    with unscoped():
        db.session.execute(sa.insert(Lead), lead_rows)
        db.session.execute(sa.insert(CallAttempt), attempt_rows)
    db.session.commit()
    recompute_counters(account.id)
    db.session.commit()
    return account.id, period.id, new.owner.id


@pytest.fixture
def live() -> Iterator[Flask]:
    """An app on a database of its own, which the worker processes read too."""
    with live_app("reports_worker") as app:
        empty_queues(app)
        yield app


def descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting to be reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_tree(pid: int) -> None:
    """SIGKILL a worker and everything it started: RQ runs each job in a work horse in a
    session of its own (`os.setsid`), which a kill of the worker's group would miss, and the
    horse runs the report's rendering processes."""
    tree = [pid, *descendants(pid)]
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(alive(member) for member in tree[1:]):
        assert time.monotonic() < deadline, "the worker's processes outlived SIGKILL"
        time.sleep(0.05)


def report_row(app: Flask, report_id: int) -> Report:
    with app.app_context(), unscoped():
        report = db.session.get_one(Report, report_id)
        db.session.expunge(report)
        return report


def test_the_worker_renders_a_master_pdf_that_matches_the_counters(live: Flask) -> None:
    app = live
    with app.app_context(), app.test_request_context():
        account_id, period_id, owner_id = build_agency(seats=6, leads=600)
        with tenant_context(account_id):
            report = request_report(
                ReportRequest(None, period_id, None, None, ReportFormat.PDF),
                db.session.get_one(User, owner_id),
            )
            db.session.commit()
            report_id = report.id
            totals = period_totals(period_id)
    result = run_worker_burst(app, ("reports",))
    assert "Job OK" in result.stderr + result.stdout
    report = report_row(app, report_id)
    assert report.status is ReportStatus.READY, report.error
    with app.app_context():
        data = (files_root() / str(report.file_path)).read_bytes()
    pages = pdf_pages(data)
    assert len(pages) == report.pages_total
    assert f"Page {len(pages)} of {len(pages)}" in pages[-1]
    text = "\n".join(pages)
    assert sum(1 for line in text.splitlines() if DETAIL_ROW.search(line)) == 600
    [all_seats] = [
        cells(line) for line in text.splitlines() if line.strip().startswith("All seats")
    ]
    assert [int(all_seats[1]), int(all_seats[2])] == [totals.leads_received, totals.leads_called]


def test_a_failure_in_the_worker_shows_its_reason_and_a_retry_button(live: Flask) -> None:
    app = live
    with app.app_context(), app.test_request_context():
        account_id, _period_id, _owner_id = build_agency(seats=2, leads=10)
        with tenant_context(account_id):
            today = datetime.now(UTC).date()
            # The form refuses this; a report row can still say it (the job checks again).
            report = Report(
                date_from=today, date_to=today - timedelta(days=3), format=ReportFormat.CSV
            )
            db.session.add(report)
            db.session.flush()
            queue_rendering(report)
            db.session.commit()
            report_id = report.id
        slug = db.session.get_one(Account, account_id).slug
    run_worker_burst(app, ("reports",))
    report = report_row(app, report_id)
    assert report.status is ReportStatus.FAILED
    assert report.error.startswith("The report's date range ends before it starts.")
    assert report.file_path is None
    client = app.test_client()
    client.post("/login", data={"email": "owner@worker.example", "password": PASSWORD})
    page = client.get(f"/a/{slug}/reports/").get_data(as_text=True)
    assert "The report&#39;s date range ends before it starts." in page
    assert f'action="/a/{slug}/reports/{report_id}/retry"' in page


def test_a_worker_killed_mid_render_leaves_no_ready_report_and_a_rerun_renders_it(
    live: Flask,
) -> None:
    app = live
    with app.app_context(), app.test_request_context():
        account_id, period_id, owner_id = build_agency(seats=20, leads=4000)
        with tenant_context(account_id):
            report = request_report(
                ReportRequest(None, period_id, None, None, ReportFormat.PDF),
                db.session.get_one(User, owner_id),
            )
            db.session.commit()
            report_id = report.id
    worker = start_worker(app, ("reports",))
    try:
        deadline = time.monotonic() + 120
        seen = report_row(app, report_id)
        # Progress is committed as chunks finish: another process sees the pages move.
        while not (
            seen.status is ReportStatus.RENDERING and 0 < seen.pages_done < seen.pages_total
        ):
            assert time.monotonic() < deadline, f"no progress seen: {seen.status} {seen.pages_done}"
            assert seen.status is not ReportStatus.READY, "rendered before the kill: make it bigger"
            time.sleep(0.05)
            seen = report_row(app, report_id)
    finally:
        kill_tree(worker.pid)
        worker.wait(timeout=30)
    killed = report_row(app, report_id)
    assert killed.status is ReportStatus.RENDERING
    assert killed.file_path is None
    # Queued again (a person would press Retry once it counts as stalled): from scratch.
    empty_queues(app)
    with app.app_context(), tenant_context(account_id):
        queue_rendering(db.session.get_one(Report, report_id))
        db.session.commit()
    burst = run_worker_burst(app, ("reports",), timeout=300)
    done = report_row(app, report_id)
    assert done.status is ReportStatus.READY, (done.status, done.error, burst.stderr[-3000:])
    with app.app_context():
        data = (files_root() / str(done.file_path)).read_bytes()
    pages = pdf_pages(data)
    assert len(pages) == done.pages_total == done.pages_done
    assert f"Page {len(pages)} of {len(pages)}" in pages[-1]
    assert sum(1 for page in pages for line in page.splitlines() if DETAIL_ROW.search(line)) == 4000
