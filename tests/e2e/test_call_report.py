"""An agency owner opens a seat's call report in the demo data, filters it in place, exports the
CSV (its rows are the page's rows), and opens a lead's timeline — at desktop and phone width."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect

from app.extensions import db
from app.models import Account, BillingPeriod, Lead, PeriodStatus, Seat
from app.seed import DEMO_PASSWORD
from app.tenancy import tenant_context
from tests.e2e.conftest import PHONE, htmx_settled, screenshot
from tests.live import live_app, serve

pytestmark = [pytest.mark.live, pytest.mark.e2e]


@dataclass(frozen=True)
class Portal:
    url: str
    report_path: str
    seat_name: str


@pytest.fixture
def portal() -> Iterator[Portal]:
    with live_app("e2e_call_report") as app:
        with app.app_context():
            result = app.test_cli_runner().invoke(args=["seed-demo"])
            assert result.exit_code == 0, result.output
            account = db.session.scalars(
                sa.select(Account).where(Account.slug == "brightpath")
            ).one()
            with tenant_context(account.id):
                # The seat with the most leads in the last closed month: a full table to filter.
                closed = db.session.scalars(
                    sa.select(BillingPeriod.id)
                    .where(BillingPeriod.status == PeriodStatus.CLOSED)
                    .order_by(BillingPeriod.month_index.desc())
                ).first()
                seat_id = db.session.scalars(
                    sa.select(Lead.seat_id)
                    .where(Lead.billed_period_id == closed)
                    .group_by(Lead.seat_id)
                    .order_by(sa.func.count().desc(), Lead.seat_id)
                ).first()
                seat = db.session.get_one(Seat, seat_id)
                path = f"/a/{account.slug}/seats/{seat.id}/calls"
                name = seat.display_name
        with serve(app) as url:
            yield Portal(url, path, name)


@dataclass(frozen=True)
class ShownRow:
    """A table row as the page shows it, in the CSV's terms."""

    name: str
    phone: str
    source: str
    received: str
    attempts: str
    last_disposition: str
    month_key: str


def shown_rows(page: Page) -> list[ShownRow]:
    rows = []
    for row in page.locator("#call-report-table tbody tr").all():
        cells = row.locator("td")
        received = cells.nth(2).locator("time").get_attribute("datetime") or ""
        rows.append(
            ShownRow(
                name=_text(cells.nth(0).locator(".cell-main")),
                phone=_text(cells.nth(0).locator(".cell-sub")),
                source=_text(cells.nth(1)),
                received=datetime.fromisoformat(received).strftime("%Y-%m-%d %H:%M"),
                attempts=_text(cells.nth(5)),
                last_disposition=_text(cells.nth(6)),
                month_key=_text(cells.nth(7)),
            )
        )
    return rows


def csv_rows(text: str) -> list[ShownRow]:
    reader = csv.DictReader(io.StringIO(text))
    received = next(name for name in reader.fieldnames or [] if name.startswith("Received"))
    return [
        ShownRow(
            name=row["Lead"],
            phone=row["Phone"],
            source=row["Source"] or "—",
            received=row[received],
            attempts=row["Attempts"],
            last_disposition=row["Last disposition"],
            month_key=row["Month key"] or "—",
        )
        for row in reader
    ]


def _text(locator: Locator) -> str:
    return " ".join(locator.inner_text().split())


def fits_the_screen(page: Page) -> bool:
    """Nothing but the table's own scroller is wider than the viewport."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_owner_filters_a_seats_call_report_exports_it_and_opens_a_lead(
    page: Page, portal: Portal
) -> None:
    page.goto(f"{portal.url}/login")
    page.get_by_label("Email").fill("owner@brightpath.example")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="BrightPath Marketing")).to_be_visible()

    page.goto(portal.url + portal.report_path)
    expect(page.get_by_role("heading", name="Call report")).to_be_visible()
    expect(page.get_by_text(portal.seat_name).first).to_be_visible()
    for kpi in ("Leads received", "Leads called", "Speed to lead", "Contact rate", "Open leads"):
        expect(page.locator("#call-report-kpis dt", has_text=kpi)).to_be_visible()
    screenshot(page, "call-report")

    # Filtering swaps the region in place (no page load) and puts the filters in the URL.
    page.evaluate("window.notReloaded = true")
    htmx_settled(page)
    page.get_by_label("Period").select_option("M2")
    expect(page).to_have_url(re.compile(r"[?&]period=M2(&|$)"))
    expect(page.get_by_role("heading", name="M2 ·")).to_be_visible()
    # A sortable header re-sorts the region in place too, and the filters keep that order.
    page.get_by_role("link", name="First attempt").click()
    expect(page).to_have_url(re.compile(r"[?&]sort=-first_attempt(&|$)"))
    expect(page.locator("th[aria-sort='descending']")).to_have_text("First attempt")
    everything = shown_rows(page)
    assert len(everything) >= 5
    assert {row.month_key for row in everything} <= {"M1", "M2", "—"}
    wanted = everything[0].last_disposition
    option = "Not called yet" if wanted == "Not called" else wanted
    page.get_by_label("Last disposition").select_option(label=option)
    expect(page).to_have_url(re.compile(r"[?&]disposition=\w+"))
    assert "sort=-first_attempt" in page.url
    expect(page.locator("#call-report-table tbody tr")).not_to_have_count(len(everything))
    filtered = shown_rows(page)
    assert filtered
    assert {row.last_disposition for row in filtered} == {wanted}
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "call-report-filtered")

    # The export holds exactly the rows the filters show, in the same order.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename.endswith("-M2.csv")
    exported = csv_rows(Path(download.path()).read_text(encoding="utf-8-sig"))
    assert exported == filtered

    # The phone layout: filters, KPIs and table stack; only the table scrolls sideways.
    page.set_viewport_size(PHONE)
    assert fits_the_screen(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    # A lead's page: its details and the timeline of its attempts.
    first = filtered[0]
    page.locator("#call-report-table tbody tr").first.locator(".cell-main").click()
    expect(page.get_by_role("heading", name=first.name, exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Call attempts")).to_be_visible()
    expect(page.locator("table tbody tr")).to_have_count(int(first.attempts))
    page.set_viewport_size(PHONE)
    assert fits_the_screen(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "call-report-lead")
