"""The live dashboard in a browser: call attempts posted through the dialer API while the
page is open appear without a reload, and the figures are the billing engine's."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from app.api.auth import create_api_key
from app.auth.passwords import hash_password
from app.billing_portal.closing import close_periods
from app.extensions import db
from app.models import AccountKind, BillingPeriod, Invoice, Plan, Seat
from app.onboarding.operations import create_account
from app.seats.operations import PersonDetails, SeatDetails
from app.settings import set_setting
from app.tenancy import tenant_context, unscoped
from tests.e2e.conftest import screenshot
from tests.live import live_app, serve

pytestmark = [pytest.mark.live, pytest.mark.e2e]
PASSWORD = "demo-password-1"
CLIENTS = ["Coastal Keys", "Summit Home", "Maple & Main", "Northstar", "Lakeside", "Riverbend"]


@dataclass
class Portal:
    url: str
    api_key: str
    seat_refs: list[str]
    app: object


def _account(name: str, kind: AccountKind, plan: Plan, email: str, seats: int) -> list[str]:
    new = create_account(
        name=name,
        kind=kind,
        plan=plan,
        owner_email=email,
        start=(datetime.now(UTC) - timedelta(days=9)).date(),
        seats=tuple(
            SeatDetails(
                PersonDetails(f"Agent {name[:3]}{n:02d}", f"agent{n}@{email.split('@')[1]}"),
                client_label=CLIENTS[n % len(CLIENTS)] if kind is AccountKind.AGENCY else "",
            )
            for n in range(seats)
        ),
    )
    new.owner.password_hash = hash_password(PASSWORD)
    db.session.flush()
    with tenant_context(new.account.id):
        return [seat.reference for seat in db.session.scalars(sa.select(Seat).order_by(Seat.id))]


@pytest.fixture
def portal() -> Iterator[Portal]:
    with live_app("e2e_dashboard_live") as app:
        with app.app_context(), app.test_request_context():
            plan = Plan(
                code="S25", name="Starter 25", allowance=25, cpl_cents=1400, price_cents=35_000
            )
            db.session.add(plan)
            db.session.flush()
            refs = _account(
                "BrightPath Marketing", AccountKind.AGENCY, plan, "owner@brightpath.example", 40
            )
            _account("Dana Whitfield Lending", AccountKind.SOLO, plan, "dana@solo.example", 1)
            set_setting("dashboard_refresh_seconds", 2, None)
            key = create_api_key("e2e dialer").secret
            db.session.commit()
        with serve(app) as url:
            yield Portal(url, key, refs, app)


def post_attempts(portal: Portal, count: int, prefix: str) -> dict[str, object]:
    now = datetime.now(UTC) - timedelta(minutes=1)
    attempts = [
        {
            "event_id": f"{prefix}-{n}",
            "seat": portal.seat_refs[n % 7],
            "lead_external_id": f"{prefix}-lead-{n}",
            "lead": {
                "name": f"Lead {n}",
                "phone": f"+1 (415) 555-01{n:02d}",
                "source": "Zillow",
                "received_at": (now - timedelta(minutes=5)).isoformat(),
            },
            "attempted_at": now.isoformat(),
            "disposition": "live_transfer" if n % 5 == 0 else "voicemail_no_answer",
            "duration_seconds": 42,
            "isa_agent": "Jordan",
        }
        for n in range(count)
    ]
    request = urllib.request.Request(
        f"{portal.url}/api/v1/call-attempts",
        data=json.dumps({"attempts": attempts}).encode(),
        headers={"Authorization": f"Bearer {portal.api_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        result: dict[str, object] = json.loads(response.read())
    return result


def login(page: Page, portal: Portal, email: str) -> None:
    page.goto(f"{portal.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_numbers_and_bar_update_live_and_match_the_invoice(page: Page, portal: Portal) -> None:
    login(page, portal, "owner@brightpath.example")
    leads_called = page.locator(".stat", has_text="Leads called").locator(".stat-value")
    expect(leads_called).to_have_text("0 / 25")
    bar = page.locator(".usage-meter-used")
    assert bar.get_attribute("width") == "0.0"
    page.evaluate("window.__stillTheSamePage = true")
    screenshot(page, "dashboard-agency-empty")

    posted: dict[str, object] = {}
    poster = threading.Thread(target=lambda: posted.update(post_attempts(portal, 30, "live")))
    poster.start()
    poster.join(timeout=30)
    assert posted["created"] == 30

    expect(leads_called).to_have_text("30 / 25", timeout=10_000)
    assert page.evaluate("window.__stillTheSamePage") is True  # no reload
    assert float(bar.get_attribute("width") or 0) > 0
    expect(page.locator(".usage-meter-over")).to_be_visible()
    overage = page.locator(".stat", has_text="Overage so far").locator(".stat-value")
    expect(overage).to_have_text("$70.00")  # 5 leads over at $14.00
    screenshot(page, "dashboard-agency")

    with portal.app.app_context(), unscoped():  # type: ignore[attr-defined]
        period = db.session.scalar(
            sa.select(BillingPeriod).where(BillingPeriod.allowance == 25).order_by(BillingPeriod.id)
        )
        assert period is not None
        close_periods([period.id], period.ends_at + timedelta(hours=3), trigger="test")
        invoice = db.session.scalar(sa.select(Invoice).where(Invoice.closes_period_id == period.id))
        assert invoice is not None
        billed = sum(line.amount_cents for line in invoice.lines if line.kind == "overage")
    assert billed == 7000


def test_a_solo_agent_sees_their_one_seat(page: Page, portal: Portal) -> None:
    login(page, portal, "dana@solo.example")
    expect(page.get_by_role("heading", name="Dana Whitfield Lending")).to_be_visible()
    expect(page.locator(".stat", has_text="Leads called").locator(".stat-value")).to_have_text(
        "0 / 25"
    )
    screenshot(page, "dashboard-solo")
