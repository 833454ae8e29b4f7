"""An operator in a browser: creates a plan (a wrong price first), changes the seat fee, finds a
tenant with the live search and looks at its dashboard, which shows the client's figures, and
resends one of the tenant's mails from the outbox."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from app.calls.operations import record_attempt, record_lead
from app.extensions import db
from app.mail.operations import queue_email
from app.models import Disposition, Role, Seat, utcnow
from app.tenancy import tenant_context
from tests import factories
from tests.e2e.conftest import htmx_settled, screenshot
from tests.live import empty_queues, live_app, serve

pytestmark = [pytest.mark.live, pytest.mark.e2e]


@dataclass
class Console:
    url: str
    operator_email: str


@pytest.fixture
def console() -> Iterator[Console]:
    with live_app("e2e_ops_console_a") as app:
        with app.app_context():
            operator = factories.UserFactory(
                is_operator=True, email="ops@seatwise.example", name="Olivia Ops"
            )
            starter = factories.make_plan(20, 1400, code="S20", name="Starter 20")
            factories.make_plan(100, 1000, code="G100", name="Growth 100")
            harbor = factories.subscribed_account(
                kind="brokerage",
                seats=2,
                plan=starter,
                start=(utcnow() - timedelta(days=9)).date(),
                name="Harbor Realty",
            )
            factories.member(harbor, Role.OWNER, email="owner@harbor.example")
            factories.subscribed_account(kind="agency", seats=3, name="BrightPath Marketing")
            with tenant_context(harbor.id):
                seats = db.session.scalars(sa.select(Seat).order_by(Seat.id)).all()
                at = utcnow() - timedelta(hours=5)
                for n in range(24):
                    lead, _ = record_lead(seats[n % 2], f"L{n}", f"Lead {n}", "", "", "Zillow", at)
                    record_attempt(
                        seats[n % 2], lead, f"E{n}", at, Disposition.LIVE_TRANSFER, 40, "Isa", ""
                    )
            with app.test_request_context():
                queue_email(
                    "owner@harbor.example",
                    "password_reset",
                    account_id=harbor.id,
                    user=operator,
                    token="e2e",
                )
            db.session.commit()
            email = operator.email
        with serve(app) as url:
            yield Console(url, email)
        empty_queues(app)


def test_an_operator_runs_the_catalogue_settings_and_a_tenants_dashboard(
    page: Page, console: Console
) -> None:
    page.goto(f"{console.url}/login")
    page.get_by_label("Email").fill(console.operator_email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    sections = page.get_by_role("navigation", name="Operator console sections")
    expect(sections).to_be_visible()

    # A plan: a price that is not leads x CPL is refused beside the price, values kept.
    sections.get_by_role("link", name="Plans").click()
    page.get_by_role("link", name="New plan").click()
    page.get_by_label("Code").fill("m50")
    page.get_by_label("Name").fill("Medium 50")
    page.get_by_label("Leads a month").fill("50")
    page.get_by_label("Cost per lead").fill("12")
    page.get_by_label("Price a month").fill("650")
    page.get_by_role("button", name="Add plan").click()
    expect(page.locator("#price-error-1")).to_have_text("Must be 50 leads × $12.00 = $600.00.")
    expect(page.get_by_label("Name")).to_have_value("Medium 50")
    screenshot(page, "ops-plan-refused")
    page.get_by_label("Price a month").fill("600")
    page.get_by_role("button", name="Add plan").click()
    row = page.locator("#plan-M50")
    expect(row).to_contain_text("Medium 50")
    expect(row).to_contain_text("$600.00")
    screenshot(page, "ops-plans")

    # The seat fee: a bad value first, then $75; the table says who changed it.
    sections.get_by_role("link", name="Settings").click()
    page.get_by_label("Seat fee").fill("75 dollars")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#seat_fee_cents-error-1")).to_contain_text("Enter an amount in dollars")
    page.get_by_label("Seat fee").fill("75")
    page.get_by_role("button", name="Save settings").click()
    fee = page.locator("#setting-seat_fee_cents")
    expect(fee).to_contain_text("$75.00")
    expect(fee).to_contain_text("ops@seatwise.example")
    screenshot(page, "ops-settings")

    # A tenant found by the live search, then its dashboard as the client sees it.
    sections.get_by_role("link", name="Tenants").click()
    expect(page.locator("#tenant-results")).to_contain_text("BrightPath Marketing")
    htmx_settled(page)
    page.get_by_label("Search").fill("owner@harb")
    expect(page.locator("#tenant-results")).not_to_contain_text("BrightPath Marketing")
    htmx_settled(page)
    harbor = page.locator("#tenant-results tbody tr")
    expect(harbor).to_have_count(1)
    expect(harbor).to_contain_text("24 / 20")
    expect(harbor).to_contain_text("Over plan")
    screenshot(page, "ops-tenants")
    harbor.get_by_role("link", name="Harbor Realty").click()
    expect(page.get_by_role("heading", name="Harbor Realty")).to_be_visible()
    expect(page.get_by_text("owner@harbor.example").first).to_be_visible()
    screenshot(page, "ops-tenant-overview")
    page.get_by_role("navigation", name="Harbor Realty pages").get_by_role(
        "link", name="Dashboard"
    ).click()
    expect(page.get_by_text("24 / 20")).to_be_visible()
    expect(page.locator("#usage-live")).to_contain_text("Overage so far")
    expect(page.locator("#usage-live")).to_contain_text("$56.00")  # 4 over at $14
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    screenshot(page, "ops-tenant-dashboard")

    page.get_by_role("navigation", name="Harbor Realty pages").get_by_role(
        "link", name="Audit log"
    ).click()
    expect(page.locator("#audit-results")).to_contain_text(
        "The Seatwise team viewed the dashboard page"
    )

    # The outbox: the tenant's mail, resent.
    sections.get_by_role("link", name="Outbox").click()
    page.locator("#outbox-results").get_by_role("link").first.click()
    expect(page.get_by_text("To owner@harbor.example")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=re.compile("Send now|Resend")).click()
    expect(
        page.get_by_text("The mail to owner@harbor.example is on its way again.")
    ).to_be_visible()
    screenshot(page, "ops-outbox-email")

    # The new plan is offered to the public at once.
    page.goto(f"{console.url}/pricing")
    expect(page.get_by_text("Medium 50").first).to_be_visible()
