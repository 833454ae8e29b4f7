"""Owners change their plans in a browser; the period close bills exactly what the
previews said."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Page, expect

from app.auth.passwords import hash_password
from app.calls.operations import record_attempt, record_lead
from app.extensions import db
from app.models import (
    Account,
    AccountKind,
    BillingPeriod,
    Disposition,
    Invoice,
    InvoiceKind,
    Plan,
    Seat,
    SeatStatus,
    Subscription,
    SubscriptionStatus,
)
from app.onboarding.operations import create_account
from app.seats.operations import PersonDetails, SeatDetails
from app.tenancy import tenant_context
from tests.e2e.conftest import htmx_settled, screenshot
from tests.live import live_app, serve

pytestmark = [pytest.mark.live, pytest.mark.e2e]
PASSWORD = "demo-password-1"
_n = count(1)


@dataclass
class Portal:
    app: Flask
    url: str


def call(app: Flask, account_id: int, leads: int) -> None:
    with app.app_context(), tenant_context(account_id):
        seat = db.session.scalars(sa.select(Seat)).first()
        assert seat is not None
        at = datetime.now(UTC) - timedelta(minutes=30)
        for _ in range(leads):
            n = next(_n)
            lead, _ = record_lead(seat, f"J{n}", "Lead", "", "", "Zillow", at)
            record_attempt(seat, lead, f"JE{n}", at, Disposition.CALLBACK_LATER, 30, "Isa", "")
        db.session.commit()


def new_owner(app: Flask, name: str, email: str) -> int:
    with app.app_context(), app.test_request_context():
        plans = {plan.code: plan for plan in db.session.scalars(sa.select(Plan))}
        new = create_account(
            name=name,
            kind=AccountKind.BROKERAGE,
            plan=plans["S100"],
            owner_email=email,
            start=(datetime.now(UTC) - timedelta(days=2)).date(),
            seats=(SeatDetails(PersonDetails(f"Agent of {name}", f"agent@{email.split('@')[1]}")),),
        )
        new.owner.password_hash = hash_password(PASSWORD)
        db.session.commit()
        return new.account.id


@pytest.fixture
def portal() -> Iterator[Portal]:
    with live_app("e2e_billing") as app:
        with app.app_context():
            db.session.add_all(
                [
                    Plan(
                        code="M50", name="Mini 50", allowance=50, cpl_cents=1100, price_cents=55_000
                    ),
                    Plan(
                        code="S100",
                        name="Starter 100",
                        allowance=100,
                        cpl_cents=1000,
                        price_cents=100_000,
                    ),
                    Plan(
                        code="G200",
                        name="Growth 200",
                        allowance=200,
                        cpl_cents=900,
                        price_cents=180_000,
                    ),
                ]
            )
            db.session.commit()
        with serve(app) as url:
            yield Portal(app, url)


def login(page: Page, portal: Portal, email: str) -> None:
    page.goto(f"{portal.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Billing", exact=True)).to_be_visible()


def close_period(portal: Portal, account_id: int) -> None:
    """`flask billing close-due --now <after the period's end>`, as an operator runs it."""
    with portal.app.app_context(), tenant_context(account_id):
        ends_at = db.session.scalar(sa.select(BillingPeriod.ends_at).order_by(BillingPeriod.id))
    assert ends_at is not None
    runner = portal.app.test_cli_runner()
    result = runner.invoke(
        args=["billing", "close-due", "--now", (ends_at + timedelta(hours=3)).isoformat()]
    )
    assert result.exit_code == 0, result.output


def closing_lines(portal: Portal, account_id: int) -> list[tuple[str, int, int]]:
    with portal.app.app_context(), tenant_context(account_id):
        invoice = db.session.scalar(sa.select(Invoice).where(Invoice.kind == InvoiceKind.CLOSING))
        assert invoice is not None
        return [(line.kind, line.quantity, line.unit_cents) for line in invoice.lines]


def test_an_upgrade_is_billed_exactly_as_previewed(page: Page, portal: Portal) -> None:
    account_id = new_owner(portal.app, "Harbor Realty", "owner@harbor.example")
    call(portal.app, account_id, 120)
    login(page, portal, "owner@harbor.example")
    screenshot(page, "billing")
    page.get_by_role("row", name=re.compile("Growth 200")).get_by_role(
        "link", name="Upgrade…"
    ).click()
    preview = page.locator("#change-preview")
    expect(preview).to_contain_text("20 leads at $10.00 (Starter 100) = $200.00")
    expect(preview).to_contain_text("Price difference: $800.00")
    screenshot(page, "billing-upgrade-preview")
    htmx_settled(page)
    preview.get_by_role("button", name="Confirm upgrade").click()
    expect(page.locator("#flash")).to_contain_text("You are on Growth 200 now")
    expect(
        page.get_by_role("row", name=re.compile("Growth 200")).get_by_text("Current plan")
    ).to_be_visible()
    call(portal.app, account_id, 140)
    close_period(portal, account_id)
    assert closing_lines(portal, account_id) == [
        ("overage", 20, 1000),
        ("overage", 40, 900),
        ("upgrade_difference", 1, 80_000),
        ("plan_advance", 1, 180_000),
    ]
    page.reload()
    page.get_by_role("link", name=re.compile(r"SW-\d{4}-\d{6}")).first.click()
    expect(page.get_by_text("Overage: 20 leads at $10.00 (Starter 100)")).to_be_visible()
    expect(page.get_by_text("Overage: 40 leads at $9.00 (Growth 200)")).to_be_visible()
    screenshot(page, "billing-invoice")


def test_a_downgrade_is_scheduled_then_withdrawn(page: Page, portal: Portal) -> None:
    account_id = new_owner(portal.app, "Summit Homes", "owner@summit.example")
    login(page, portal, "owner@summit.example")
    page.get_by_role("row", name=re.compile("Mini 50")).get_by_role(
        "link", name="Downgrade…"
    ).click()
    expect(page.locator("#change-preview")).to_contain_text(
        "You can withdraw this change until then."
    )
    page.get_by_role("button", name="Confirm downgrade").click()
    expect(page.get_by_text(re.compile("Downgrade to Mini 50 on"))).to_be_visible()
    page.get_by_role("button", name="Withdraw the downgrade").click()
    expect(page.locator("#flash")).to_contain_text("The downgrade is withdrawn")
    expect(page.get_by_text(re.compile("Downgrade to Mini 50 on"))).to_have_count(0)
    with portal.app.app_context(), tenant_context(account_id):
        assert db.session.scalar(sa.select(Subscription.scheduled_plan_id)) is None


def test_cancel_undo_cancel_then_the_close_ends_the_plan(page: Page, portal: Portal) -> None:
    account_id = new_owner(portal.app, "Maple Group", "owner@maple.example")
    login(page, portal, "owner@maple.example")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_label("Why are you leaving?").fill("Seasonal pause")
    page.get_by_role("button", name=re.compile("Cancel at the end of M1")).click()
    expect(page.get_by_text(re.compile(r"Your plan ends on \d+ \w+ \d{4}")).first).to_be_visible()
    screenshot(page, "billing-cancelled")
    page.get_by_role("button", name="Undo the cancellation").click()
    expect(page.locator("#flash")).to_contain_text("Welcome back")
    page.get_by_role("button", name=re.compile("Cancel at the end of M1")).click()
    expect(page.get_by_role("button", name="Undo the cancellation")).to_be_visible()
    close_period(portal, account_id)
    with portal.app.app_context(), tenant_context(account_id):
        subscription = db.session.scalar(sa.select(Subscription))
        assert subscription is not None
        assert subscription.status is SubscriptionStatus.ENDED
        assert subscription.cancel_reason == ""  # the second cancel gave no reason
        statuses = db.session.scalars(sa.select(Seat.status)).all()
        assert statuses == [SeatStatus.EXPIRED]
        assert db.session.get_one(Account, account_id).status.value == "ended"
    assert closing_lines(portal, account_id) == []  # nothing used, nothing renewed
    page.reload()
    expect(page.get_by_text("No active plan")).to_be_visible()
