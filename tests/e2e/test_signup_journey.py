"""A new client's whole first journey, as they would try it: pricing → chooser → signup as an
agency with two seats → the invitation in the outbox → set a password → the dashboard → add a
seat with a Backup → replace the Backup → remove it → a new seat with a different Primary →
the upcoming charges show the seat fees. Then the team and the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Locator, Page, expect

from app.auth.passwords import hash_password
from app.extensions import db
from app.models import Account, AccountKind, OutboxEmail, Person, Plan, Seat, SeatUsage
from app.onboarding.operations import create_account
from app.seed import CATALOGUE
from app.tenancy import tenant_context
from tests.e2e.conftest import htmx_settled, screenshot
from tests.live import live_app, serve

pytestmark = [pytest.mark.live, pytest.mark.e2e]

OWNER_EMAIL = "morgan@brightpath.example"
PASSWORD = "a long enough password"


@dataclass
class Portal:
    app: Flask
    url: str


@pytest.fixture
def portal() -> Iterator[Portal]:
    with live_app("e2e_signup_journey") as app:
        with app.app_context():
            for code, name, allowance, cpl in CATALOGUE:
                db.session.add(
                    Plan(
                        code=code,
                        name=name,
                        allowance=allowance,
                        cpl_cents=cpl,
                        price_cents=allowance * cpl,
                    )
                )
            db.session.commit()
        with serve(app) as url:
            yield Portal(app, url)


def fill_seat(seat: Locator, client: str, name: str, email: str, mobile: str) -> None:
    seat.locator("[id$='client_label']").fill(client)
    primary = seat.locator("[id$='primary-name']")
    primary.fill(name)
    seat.locator("[id$='primary-email']").fill(email)
    seat.locator("[id$='primary-mobile']").fill(mobile)
    seat.get_by_label("Zillow").check()
    seat.get_by_label("Realtor.com").check()
    seat.get_by_label("A CRM, such as Follow Up Boss").check()
    seat.get_by_label("Which CRM").fill("Follow Up Boss")
    seat.get_by_label("First number").fill(mobile)


def invitation_link(app: Flask) -> str:
    with app.app_context():
        body = db.session.scalars(
            sa.select(OutboxEmail.body_text).where(OutboxEmail.to_address == OWNER_EMAIL)
        ).one()
    match = re.search(r"https?://\S+/invite/\S+", body)
    assert match, body
    return match.group(0)


def test_a_new_agency_signs_up_and_manages_its_seats(page: Page, portal: Portal) -> None:
    url = portal.url
    page.on("dialog", lambda dialog: dialog.accept())

    # Pricing, and the chooser: 150 leads a month is cheapest on Pro 100.
    page.goto(f"{url}/pricing")
    expect(page.get_by_role("heading", name="Your leads, called by our ISA team")).to_be_visible()
    screenshot(page, "pricing")
    page.get_by_label("Leads you expect a month").fill("150")
    cheapest = page.locator("#chooser-panel tr.is-highlighted")
    expect(cheapest).to_contain_text("Pro 100")
    expect(cheapest).to_contain_text("Cheapest")
    expect(cheapest).to_contain_text("$1,800.00")
    page.locator("#chooser").scroll_into_view_if_needed()
    screenshot(page, "pricing-chooser")
    cheapest.get_by_role("link", name="Choose").click()

    # Signup as an agency with two seats; a bad phone number first.
    expect(page.get_by_role("heading", name="Start your lead package")).to_be_visible()
    expect(page.get_by_role("radio", name=re.compile("^Pro 100"))).to_be_checked()
    page.get_by_role("radio", name=re.compile("^Marketing agency")).check()
    page.get_by_label("Company or team name").fill("BrightPath Marketing")
    page.get_by_label("Your name").fill("Morgan Ellis")
    page.get_by_label("Your email").fill(OWNER_EMAIL)
    page.get_by_label("Time zone").select_option("America/Chicago")
    fill_seat(
        page.locator("#seat-1"),
        "Summit Home Team",
        "Avery Stone",
        "avery@summit.example",
        "(312) 555-0141",
    )
    page.get_by_role("button", name="+ Add another seat").click()
    expect(page.get_by_role("heading", name="3. Seat 2")).to_be_visible()
    expect(page.locator("#seat-1").locator("[id$='primary-name']")).to_have_value("Avery Stone")
    fill_seat(
        page.locator("#seat-2"),
        "Coastal Keys Realty",
        "Blake Rivera",
        "blake@coastal.example",
        "555-0199",
    )
    page.get_by_role("button", name="Start my plan").click()
    seat_2 = page.locator("#seat-2")
    expect(seat_2.locator(".field-error").first).to_contain_text("valid phone number")
    expect(seat_2.locator("[id$='primary-name']")).to_have_value("Blake Rivera")
    seat_2.locator("[id$='primary-mobile']").scroll_into_view_if_needed()
    screenshot(page, "signup-errors")
    seat_2.locator("[id$='primary-mobile']").fill("(305) 555-0199")
    seat_2.get_by_label("First number").fill("(305) 555-0199")
    expect(page.locator(".invoice-total")).to_contain_text("$1,314.00")  # $1,200 + 2 × $57
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "signup")
    page.get_by_role("button", name="Start my plan").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    screenshot(page, "signup-done")

    # The invitation is in the outbox; its link sets the password and opens the portal.
    page.goto(invitation_link(portal.app))
    expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Save password and sign in").click()
    expect(page.get_by_role("heading", name="BrightPath Marketing")).to_be_visible()

    # Seats: the two signup seats.
    page.get_by_role("navigation", name=re.compile("sections")).get_by_role(
        "link", name="Seats"
    ).click()
    expect(page.get_by_role("heading", name="Seats", exact=True)).to_be_visible()
    expect(page.locator("#seat-results tbody tr")).to_have_count(2)
    screenshot(page, "seats")

    # Add a seat with a Backup: the fee and when it is billed are shown first.
    page.get_by_role("link", name="Add a seat").click()
    expect(page.get_by_text("one-time seat fee")).to_be_visible()
    expect(page.get_by_text("closing invoice")).to_be_visible()
    form = page.locator("#seat-form")
    fill_seat(form, "Maple & Main Group", "Casey Morgan", "casey@maple.example", "(773) 555-0110")
    form.locator("[id$='backup-name']").fill("Drew Patel")
    form.locator("[id$='backup-email']").fill("drew@maple.example")
    form.locator("[id$='backup-mobile']").fill("(773) 555-0111")
    screenshot(page, "seat-new")
    page.get_by_role("button", name=re.compile("^Add seat")).click()
    expect(page.get_by_text(re.compile(r"Seat ST-\w+ added"))).to_be_visible()
    backup = page.locator("#seat-backup")
    expect(backup).to_contain_text("Drew Patel")
    screenshot(page, "seat")

    # Replace the Backup inline.
    htmx_settled(page)
    backup.get_by_role("link", name="Replace").click()
    expect(backup.get_by_role("heading", name="Replace the Backup")).to_be_visible()
    htmx_settled(page)
    backup.get_by_label("Full name").fill("Emery Lee")
    backup.get_by_label("Email").fill("emery@maple.example")
    backup.get_by_label("Mobile").fill("(773) 555-0112")
    screenshot(page, "seat-backup-replace")
    htmx_settled(page)
    backup.get_by_role("button", name="Save Backup").click()
    htmx_settled(page)
    expect(page.locator("#seat-backup .field-error")).to_have_count(0)
    expect(page.get_by_text("Backup replaced: Emery Lee.")).to_be_visible()
    expect(page.locator("#seat-backup")).to_contain_text("emery@maple.example")

    # Remove it.
    htmx_settled(page)
    page.locator("#seat-backup").get_by_role("button", name="Remove").click()
    expect(page.locator("#seat-backup")).to_contain_text("No Backup")
    expect(page.get_by_text("Backup removed.")).to_be_visible()

    # A different Primary: a new seat, prefilled with this one's other details.
    page.get_by_role("link", name="Start a new seat with a different Primary").click()
    form = page.locator("#seat-form")
    expect(form.locator("[id$='client_label']")).to_have_value("Maple & Main Group")
    expect(form.locator("[id$='primary-name']")).to_have_value("")
    expect(form.get_by_label("Which CRM")).to_have_value("Follow Up Boss")
    screenshot(page, "seat-new-primary")
    form.locator("[id$='primary-name']").fill("Finley Brooks")
    form.locator("[id$='primary-email']").fill("finley@maple.example")
    form.locator("[id$='primary-mobile']").fill("(773) 555-0113")
    page.get_by_role("button", name=re.compile("^Add seat")).click()
    expect(page.get_by_role("heading", name="Maple & Main Group · Finley Brooks")).to_be_visible()

    # The upcoming charges: both seats added after signup, $57 each.
    page.get_by_role("navigation", name=re.compile("sections")).get_by_role(
        "link", name="Seats"
    ).click()
    charges = page.locator("section", has=page.get_by_role("heading", name="Upcoming charges"))
    expect(charges).to_contain_text("2 seat fees")
    expect(charges).to_contain_text("$114.00")
    expect(page.locator("#seat-results tbody tr")).to_have_count(4)
    expect(page.locator("#seat-results")).to_contain_text("Deactivated")
    screenshot(page, "seats-upcoming-charges")

    # The team: invite a viewer.
    page.get_by_role("link", name="Team").click()
    invite = page.get_by_role("region", name="Invite someone")
    invite.get_by_label("Email").fill("jordan@brightpath.example")
    invite.get_by_label("Name").fill("Jordan Reyes")
    invite.get_by_label("Role").select_option("viewer")
    invite.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#team")).to_contain_text("Jordan Reyes")
    expect(page.get_by_text("Invitation sent to jordan@brightpath.example.")).to_be_visible()
    screenshot(page, "team")
    page.get_by_role("link", name="Edit Jordan Reyes's role").click()
    save = page.get_by_role("button", name="Save role")
    expect(save).to_be_visible()
    row = page.locator("#team tbody tr", has=save)
    row.get_by_role("combobox", name="Role").select_option("admin")
    screenshot(page, "team-edit")
    row.get_by_role("button", name="Save role").click()
    expect(page.get_by_text("Jordan Reyes is now admin.")).to_be_visible()

    # The audit log has every change, with who made it.
    page.get_by_role("link", name="Audit log").click()
    expect(
        page.get_by_text("Replaced Backup drew@maple.example with emery@maple.example")
    ).to_be_visible()
    expect(page.get_by_text("Removed Backup emery@maple.example")).to_be_visible()
    screenshot(page, "audit-log")
    page.get_by_label("Kind of change").select_option("members")
    expect(page).to_have_url(re.compile("kind=members"))
    expect(page.locator("#audit-results tbody tr")).to_have_count(2)  # invited, role changed

    with portal.app.app_context():
        account = db.session.scalars(sa.select(Account)).one()
        with tenant_context(account.id):
            fees = db.session.scalars(sa.select(Seat.fee_cents).order_by(Seat.id)).all()
    assert fees == [0, 0, 5700, 5700]


@pytest.fixture
def big_agency() -> Iterator[Portal]:
    """An agency with 1,000 seats, 40 clients, some active, some idle, a few deactivated."""
    with live_app("e2e_big_agency") as app:
        with app.app_context(), app.test_request_context():
            plan = Plan(
                code="S800", name="Scale 800", allowance=800, cpl_cents=900, price_cents=720_000
            )
            db.session.add(plan)
            db.session.flush()
            new = create_account(
                name="Northwind Lead Partners",
                kind=AccountKind.AGENCY,
                plan=plan,
                owner_email=OWNER_EMAIL,
                owner_name="Morgan Ellis",
            )
            new.owner.password_hash = hash_password(PASSWORD)
            now = datetime.now(UTC)
            with tenant_context(new.account.id):
                people = [
                    Person(
                        name=f"{FIRST[n % 10]} {LAST[(n // 10) % 10]}",
                        email=f"{FIRST[n % 10]}.{LAST[(n // 10) % 10]}{n}@clients.example".lower(),
                        mobile=f"+1312555{n:04d}",
                    )
                    for n in range(1000)
                ]
                db.session.add_all(people)
                db.session.flush()
                seats = [
                    Seat(
                        reference=f"ST-B{n:05d}",
                        client_label=CLIENTS[(n // 7) % len(CLIENTS)],
                        primary_person_id=person.id,
                        last_lead_at=now - timedelta(days=n % 23),
                        deactivated_at=now if n % 97 == 0 else None,
                    )
                    for n, person in enumerate(people)
                ]
                db.session.add_all(seats)
                db.session.flush()
                db.session.add_all(
                    SeatUsage(
                        seat_id=seat.id,
                        period_id=new.subscribed.period.id,
                        leads_received=(n * 7) % 31,
                        leads_called=(n * 7) % 29,
                    )
                    for n, seat in enumerate(seats)
                )
                db.session.flush()
            db.session.commit()
        with serve(app) as url:
            yield Portal(app, url)


FIRST = ["Avery", "Blake", "Casey", "Drew", "Emery", "Finley", "Harper", "Jordan", "Kai", "Logan"]
LAST = ["Stone", "Rivera", "Morgan", "Patel", "Lee", "Brooks", "Nguyen", "Garcia", "Kim", "Diaz"]
CLIENTS = [f"{name} Realty" for name in ("Summit", "Coastal", "Maple", "Harbor", "Lakeside")] + [
    f"{name} Home Team" for name in ("Alvarez", "Keystone", "Northstar", "Riverbend", "Cedar")
]


def test_an_agency_with_a_thousand_seats_finds_one_quickly(page: Page, big_agency: Portal) -> None:
    page.goto(f"{big_agency.url}/login")
    page.get_by_label("Email").fill(OWNER_EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{big_agency.url}/a/northwind-lead-partners/seats/")
    expect(page.get_by_text("Page 1 of 20", exact=True)).to_be_visible()
    expect(page.locator("#seat-results tbody tr")).to_have_count(50)
    screenshot(page, "seats-1000")
    htmx_settled(page)
    page.get_by_label("Client", exact=True).select_option("Harbor Realty")
    page.get_by_label("Status", exact=True).select_option("deactivated")
    expect(page.locator("#seat-results")).to_contain_text("Showing 1–2 of 2 seats matching")
    expect(page).to_have_url(re.compile("status=deactivated"))
    page.get_by_label("Search").fill("jordan")
    expect(page.locator("#seat-results tbody tr")).to_have_count(1)
    screenshot(page, "seats-1000-filtered")
