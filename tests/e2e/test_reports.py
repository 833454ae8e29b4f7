"""The demo agency's owner asks for a master report of every lead since signup, watches it go
from queued to rendering page by page to ready while a real worker renders it, and downloads
the PDF."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Page, expect

from app.extensions import db
from app.models import Account, BillingPeriod
from app.seed import DEMO_PASSWORD
from app.tenancy import tenant_context
from tests.e2e.conftest import screenshot
from tests.live import empty_queues, live_app, serve, start_worker

pytestmark = [pytest.mark.live, pytest.mark.e2e, pytest.mark.worker]


@dataclass(frozen=True)
class Portal:
    app: Flask
    url: str
    first_day: date
    last_day: date


@pytest.fixture
def portal() -> Iterator[Portal]:
    with live_app("e2e_reports") as app:
        empty_queues(app)
        with app.app_context():
            result = app.test_cli_runner().invoke(args=["seed-demo"])
            assert result.exit_code == 0, result.output
            account = db.session.scalars(
                sa.select(Account).where(Account.slug == "brightpath")
            ).one()
            zone = ZoneInfo(account.timezone)
            with tenant_context(account.id):
                periods = db.session.scalars(
                    sa.select(BillingPeriod).order_by(BillingPeriod.month_index)
                ).all()
            first = periods[0].starts_at.astimezone(zone).date()
            last = (periods[-1].ends_at.astimezone(zone) - timedelta(microseconds=1)).date()
        with serve(app) as url:
            yield Portal(app, url, first, last)


def test_owner_requests_a_master_report_watches_it_render_and_downloads_it(
    page: Page, portal: Portal
) -> None:
    page.goto(f"{portal.url}/login")
    page.get_by_label("Email").fill("owner@brightpath.example")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Reports").first.click()
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    expect(page.get_by_text("No reports yet")).to_be_visible()

    page.get_by_label("Report", exact=True).select_option("master")
    page.get_by_label("Covering").select_option("dates")
    page.get_by_label("First day").fill(portal.first_day.isoformat())
    page.get_by_label("Last day").fill(portal.last_day.isoformat())
    page.get_by_label("PDF, to read and print").check()
    page.get_by_role("button", name="Create report").click()

    row = page.locator("tr.report-row").first
    expect(row.get_by_text("Queued")).to_be_visible()
    expect(row.locator("progress")).to_be_visible()  # no worker yet: the bar waits
    screenshot(page, "reports-queued")

    worker = start_worker(portal.app, ("reports",))
    try:
        # The row polls itself: pages rendered out of the total, then the download.
        rendering = row.locator("progress[max]")
        expect(rendering).to_be_visible(timeout=60_000)
        total = int(rendering.get_attribute("max") or 0)
        assert total > 20
        expect(row.get_by_text(f"of {total} pages")).to_be_visible()
        screenshot(page, "reports-rendering")
        download_link = row.get_by_role("link", name="Download PDF")
        expect(download_link).to_be_visible(timeout=120_000)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    expect(row.get_by_text("Ready")).to_be_visible()
    expect(row.locator("progress")).to_have_count(0)
    screenshot(page, "reports-ready")

    with page.expect_download() as download_info:
        download_link.click()
    download = download_info.value
    assert download.suggested_filename == (
        f"brightpath-master-report-{portal.first_day.isoformat()}-to-"
        f"{portal.last_day.isoformat()}.pdf"
    )
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"%PDF")
    text = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()
    assert "BrightPath Marketing" in text
    assert f"Page 1 of {total}" in text
    assert f"Page {total} of {total}" in text
