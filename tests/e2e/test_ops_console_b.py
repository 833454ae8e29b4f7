"""An operator runs call data, billing runs and jobs from the console in a browser: creates an
API key and posts a call with it, imports a CSV (dry run, then real), re-runs a failed billing
close and retries a failed job, with a real worker process doing the queued work."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Page, expect

from app.billing_portal.jobs import close_period_batch
from app.extensions import db
from app.models import BillingPeriod, CallAttempt, PeriodStatus, utcnow
from app.queue import get_queue
from app.tenancy import tenant_context, unscoped
from tests import factories
from tests.e2e.conftest import screenshot
from tests.live import empty_queues, live_app, run_worker_burst, serve

pytestmark = [pytest.mark.live, pytest.mark.e2e]
HEADER = (
    "event_id,seat_reference,lead_external_id,lead_name,lead_phone,lead_email,lead_source,"
    "lead_received_at,attempted_at,disposition,duration_seconds,isa_agent,notes\n"
)


@dataclass
class Console:
    app: Flask
    url: str
    operator_email: str
    seat_reference: str
    seat_account_id: int
    due_account_id: int
    due_period_id: int


@pytest.fixture
def console() -> Iterator[Console]:
    with live_app("e2e_ops_console_b") as app:
        empty_queues(app)
        with app.app_context():
            operator = factories.UserFactory(is_operator=True, email="ops@seatwise.example")
            current = factories.subscribed_account(
                kind="brokerage", seats=1, start=(utcnow() - timedelta(days=10)).date()
            )
            seat = factories.first_seat(current)
            due = factories.subscribed_account(
                kind="brokerage",
                seats=1,
                start=(utcnow() - timedelta(days=45)).date(),
                name="Harbor Realty",
            )
            with tenant_context(due.id):
                period = db.session.scalars(sa.select(BillingPeriod)).one()
                period.close_error = "BillingRuleError('the renewal plan is retired')"
            db.session.commit()
            setup = (operator.email, seat.reference, current.id, due.id, period.id)
        with serve(app) as url:
            yield Console(app, url, *setup)
        empty_queues(app)


def log_in(page: Page, console: Console) -> None:
    page.goto(f"{console.url}/login")
    page.get_by_label("Email").fill(console.operator_email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Operator console sections")).to_be_visible()


def post_call(console: Console, key: str) -> dict[str, object]:
    """What the dialer does: one call attempt over HTTP with the key."""
    now = utcnow()
    body = {
        "attempts": [
            {
                "event_id": "dialer-e2e-1",
                "seat": console.seat_reference,
                "lead_external_id": "E2E-1",
                "lead": {
                    "name": "Ava Price",
                    "phone": "(415) 555-2671",
                    "received_at": now.isoformat(),
                },
                "attempted_at": now.isoformat(),
                "disposition": "live_transfer",
                "duration_seconds": 120,
                "isa_agent": "Maya Chen",
            }
        ]
    }
    request = urllib.request.Request(
        f"{console.url}/api/v1/call-attempts",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.load(response)
    return answer


def export_file(tmp_path: Path, console: Console) -> Path:
    at = (utcnow() - timedelta(hours=1)).isoformat()
    received = (utcnow() - timedelta(hours=2)).isoformat()
    path = tmp_path / "dialer-export.csv"
    path.write_text(
        HEADER + f"IMP-1,{console.seat_reference},IMP-L1,Olivia Smith,(917) 555-0101,,Zillow,"
        f"{received},{at},Booked Appointment,95,Maya Chen,\n"
        + f"IMP-2,{console.seat_reference},IMP-L2,Ben Ode,12345,,Zillow,{received},{at},"
        "Left message,30,Maya Chen,\n"
    )
    return path


def attempts(console: Console) -> int:
    with console.app.app_context(), tenant_context(console.seat_account_id):
        return db.session.scalar(sa.select(sa.func.count()).select_from(CallAttempt)) or 0


def test_an_operator_runs_call_data_billing_runs_and_jobs(
    page: Page, console: Console, tmp_path: Path
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, console)

    # Call data: a key, shown once, that the dialer then uses.
    page.get_by_role("link", name="Call data").click()
    page.get_by_label("Name").fill("Dialer production")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("The new key").input_value()
    assert key.startswith("sw_")
    screenshot(page, "ops-call-data-new-key")
    answer = post_call(console, key)
    assert answer["created"] == 1
    page.get_by_role("link", name="Call data").click()
    row = page.get_by_role("row", name="Dialer production")
    expect(row).not_to_contain_text("Never")  # last used: just now
    expect(page.get_by_label("The new key")).to_have_count(0)  # shown once only

    # The CSV import: a dry run names the bad row, the import stores the good one.
    page.get_by_label("Call-report export (CSV)").set_input_files(export_file(tmp_path, console))
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_role("heading", name="Dry run of dialer-export.csv")).to_be_visible()
    bad = page.locator("#bad-rows")
    expect(bad).to_contain_text("Line 3")
    expect(bad).to_contain_text('lead_phone "12345" is not a valid phone number')
    screenshot(page, "ops-import-dry-run")
    assert attempts(console) == 1
    page.get_by_role("button", name="Import dialer-export.csv now").click()
    expect(page.get_by_role("heading", name="Imported dialer-export.csv")).to_be_visible()
    assert attempts(console) == 2
    refusals = page.get_by_role("region", name="Recent ingestion errors")
    expect(refusals.get_by_role("row").filter(has_text="line 3")).to_contain_text(
        "dialer-export.csv"
    )

    # A job that fails: a close with a time that is not one.
    with console.app.app_context():
        failing = get_queue("billing").enqueue(close_period_batch, [0], "not-a-time").id

    # Billing runs: the failed close, with its reason, re-run.
    page.get_by_role("link", name="Billing runs").click()
    failed = page.get_by_role("region", name="Failed closes")
    expect(failed).to_contain_text("Harbor Realty")
    expect(failed).to_contain_text("the renewal plan is retired")
    screenshot(page, "ops-billing-runs-failed")
    failed.get_by_role("button", name="Re-run the close of Harbor Realty M1").click()
    expect(page.get_by_text("is queued; it runs in a moment")).to_be_visible()
    run_worker_burst(console.app, ("billing",))
    page.reload()
    expect(page.get_by_role("region", name="Failed closes")).to_contain_text("No failed closes")
    runs = page.get_by_role("region", name="Last runs")
    expect(runs.get_by_role("row").nth(1)).to_contain_text("operator")
    screenshot(page, "ops-billing-runs")
    with console.app.app_context(), unscoped():
        period = db.session.get_one(BillingPeriod, console.due_period_id)
        assert (period.status, period.close_error) == (PeriodStatus.CLOSED, "")

    # Jobs: the failed job, its traceback, and a retry.
    page.get_by_role("link", name="Jobs").click()
    jobs = page.locator("#failed-jobs")
    expect(jobs).to_contain_text("close_period_batch([0], 'not-a-time')")
    page.get_by_role("link", name="close_period_batch([0], 'not-a-time')").click()
    expect(page.locator(".traceback")).to_contain_text("ValueError: Invalid isoformat string")
    screenshot(page, "ops-job-traceback")
    page.get_by_role("button", name=f"Retry job {failing}").click()
    expect(page.get_by_text(f"Job {failing} is back on the billing queue.")).to_be_visible()
    expect(page.get_by_role("region", name="Failed jobs")).to_contain_text("No failed jobs")
    queues = page.get_by_role("region", name="Queues")
    expect(queues.get_by_role("row", name="billing")).to_contain_text("1")
    screenshot(page, "ops-jobs")
    with console.app.app_context():
        assert get_queue("billing").job_ids == [failing]
