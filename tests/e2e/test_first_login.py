"""The first journey: an agency owner logs in and finds their account and its seats."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from app.auth.passwords import hash_password
from app.extensions import db
from app.models import AccountKind, Plan
from app.onboarding.operations import create_account
from app.seats.operations import PersonDetails, SeatDetails
from tests.e2e.conftest import screenshot
from tests.live import live_app, serve

pytestmark = [pytest.mark.live, pytest.mark.e2e]


@pytest.fixture
def portal() -> Iterator[str]:
    with live_app("e2e_first_login") as app:
        with app.app_context(), app.test_request_context():
            plan = Plan(
                code="G200", name="Growth 200", allowance=200, cpl_cents=900, price_cents=180_000
            )
            db.session.add(plan)
            db.session.flush()
            new = create_account(
                name="BrightPath Marketing",
                kind=AccountKind.AGENCY,
                plan=plan,
                owner_email="owner@brightpath.example",
                owner_name="Morgan Reyes",
                start=datetime.now(UTC).date(),
                seats=tuple(
                    SeatDetails(
                        PersonDetails(f"Agent {n}", f"agent{n}@brightpath.example"),
                        client_label=f"Client {n % 3}",
                    )
                    for n in range(5)
                ),
            )
            new.owner.password_hash = hash_password("demo-password-1")
            db.session.commit()
        with serve(app) as url:
            yield url


def test_agency_owner_logs_in_and_sees_the_account_with_its_seats(page: Page, portal: str) -> None:
    page.goto(f"{portal}/login")
    screenshot(page, "login")
    page.get_by_label("Email").fill("owner@brightpath.example")
    page.get_by_label("Password").fill("demo-password-1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="BrightPath Marketing")).to_be_visible()
    screenshot(page, "dashboard")
    page.get_by_role("link", name="Seats").first.click()
    expect(page.get_by_role("heading", name="Seats")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(5)
    expect(page.get_by_text("Agent 3")).to_be_visible()
    screenshot(page, "seats")
