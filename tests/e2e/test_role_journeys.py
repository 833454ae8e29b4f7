"""The whole product in a browser, role by role, on the demo data (`flask seed-demo`).

Each role signs in in a browser context of its own and does its main work: the owner reads
the dashboard, downloads a master report and schedules then withdraws a downgrade; the admin
adds a seat; the viewer reads and finds nothing to manage; the seat member sees their own seat
only; the operator goes through the console and a tenant's pages; a visitor reads the public
pages and meets the sign-in errors. Every page visited is screenshotted at desktop and phone
width and checked by axe-core (`check_page`); a Content-Security-Policy violation fails the
journey. One owner works by keyboard alone: skip link, each main page's main action, sign-out.
"""

from __future__ import annotations

import csv
import io
import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Browser, Locator, Page, expect

from app.extensions import db
from app.models import Account, Membership, Seat, User
from app.seed import DEMO_PASSWORD
from app.tenancy import tenant_context
from tests.e2e.accessibility import check_page
from tests.e2e.conftest import DESKTOP, htmx_settled
from tests.live import empty_queues, live_app, serve, start_worker

pytestmark = [pytest.mark.live, pytest.mark.e2e, pytest.mark.worker]


@dataclass(frozen=True)
class SeatFacts:
    id: int
    reference: str
    primary_name: str


@dataclass(frozen=True)
class Demo:
    app: Flask
    url: str
    member_seat: SeatFacts  # the demo seat member's seat (agent@brightpath.example)
    other_seat: SeatFacts  # another BrightPath seat


@pytest.fixture(scope="module")
def demo(app: Flask) -> Iterator[Demo]:
    """The demo data served over HTTP (`app` first: it prepares the database template)."""
    with live_app("e2e_role_journeys") as live:
        with live.app_context():
            result = live.test_cli_runner().invoke(args=["seed-demo"])
            assert result.exit_code == 0, result.output
            account = db.session.scalars(
                sa.select(Account).where(Account.slug == "brightpath")
            ).one()
            with tenant_context(account.id):
                member_seat_id = db.session.scalars(
                    sa.select(Membership.seat_id)
                    .join(User, User.id == Membership.user_id)
                    .where(User.email == "agent@brightpath.example")
                ).one()
                seats = {
                    seat.id: SeatFacts(seat.id, seat.reference, seat.primary.name)
                    for seat in db.session.scalars(sa.select(Seat).order_by(Seat.id).limit(5))
                }
        assert member_seat_id is not None
        other = next(facts for seat_id, facts in seats.items() if seat_id != member_seat_id)
        # The seed's period closes queued invoice mail and master reports: left out here, so
        # the worker renders only what the owner asks for.
        empty_queues(live)
        # A real worker for the owner's report; it starts up while the other roles work.
        worker = start_worker(live, ("reports",))
        try:
            with serve(live) as url:
                yield Demo(live, url, seats[member_seat_id], other)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)


@contextmanager
def browser_page(browser: Browser) -> Iterator[Page]:
    """A browser context of its own with one page, reused throughout. Everything the pages do
    must work under their Content-Security-Policy: a violation the browser reports fails."""
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    try:
        yield page
        assert not violations, "\n".join(violations)
    finally:
        context.close()


@contextmanager
def signed_in(browser: Browser, demo: Demo, email: str) -> Iterator[Page]:
    """A browser page of the role's own, signed in."""
    with browser_page(browser) as page:
        page.goto(f"{demo.url}/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).not_to_have_url(re.compile(r"/login"))
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        yield page


def sections(page: Page) -> list[str]:
    return page.locator("nav.tabs .tab").all_inner_texts()


def open_section(page: Page, label: str) -> None:
    page.locator("nav.tabs").get_by_role("link", name=label, exact=True).click()
    expect(page.locator("nav.tabs [aria-current='page']")).to_have_text(label)


def stat(page: Page, label: str) -> str:
    tile = page.locator(".stat").filter(has=page.locator(".stat-label", has_text=label))
    return tile.locator(".stat-value").inner_text().strip()


def status(page: Page, url: str) -> int:
    """Open `url`; the HTTP status it answered with."""
    response = page.goto(url)
    assert response is not None
    return response.status


def main_actions(page: Page) -> list[str]:
    """The buttons and button-styled links of the page's content."""
    return [
        text.strip()
        for text in page.locator("main").locator("a.btn, button").all_inner_texts()
        if text.strip()
    ]


def test_admin_adds_a_seat(browser: Browser, demo: Demo) -> None:
    with signed_in(browser, demo, "admin@brightpath.example") as page:
        expect(page.get_by_role("heading", name="BrightPath Marketing")).to_be_visible()
        assert sections(page) == ["Dashboard", "Seats", "Reports", "Audit log"]
        check_page(page, "admin-dashboard")
        open_section(page, "Seats")
        seats_before = int(page.locator(".page-subtitle").inner_text().split()[0])
        page.get_by_role("link", name="Add a seat").click()
        expect(page.get_by_text("one-time seat fee")).to_be_visible()
        check_page(page, "admin-seat-new")

        # Sent empty: each problem is shown by its field, and axe checks that state too.
        page.get_by_role("button", name=re.compile("^Add seat")).click()
        form = page.locator("#seat-form")
        expect(form.locator(".field-error").first).to_be_visible()
        expect(page.get_by_text("Name the client this seat is for.")).to_be_visible()
        check_page(page, "admin-seat-new-errors")

        form.locator("[id$='client_label']").fill("Riverbend Properties")
        form.locator("[id$='primary-name']").fill("Casey Morgan")
        form.locator("[id$='primary-email']").fill("casey.morgan@riverbend.example")
        form.locator("[id$='primary-mobile']").fill("(917) 555-0142")
        form.get_by_label("Zillow").check()
        form.get_by_label("A CRM, such as Follow Up Boss").check()
        form.get_by_label("Which CRM").fill("Follow Up Boss")
        form.get_by_label("First number").fill("(917) 555-0142")
        page.get_by_role("button", name=re.compile("^Add seat")).click()
        added = page.locator("#flash").get_by_text(re.compile(r"Seat ST-\w+ added"))
        expect(added).to_be_visible()
        reference = re.search(r"ST-\w+", added.inner_text())
        expect(page.get_by_role("heading", name=re.compile("Casey Morgan"))).to_be_visible()
        check_page(page, "admin-seat-added")

        open_section(page, "Seats")
        expect(page.locator(".page-subtitle")).to_contain_text(f"{seats_before + 1} seats")
        open_section(page, "Audit log")
        assert reference is not None
        expect(page.locator("main table")).to_contain_text(
            f"Added seat {reference.group(0)} for casey.morgan@riverbend.example"
        )
        check_page(page, "admin-audit-log")


def test_viewer_reads_the_dashboard_and_reports_and_finds_nothing_to_manage(
    browser: Browser, demo: Demo
) -> None:
    with signed_in(browser, demo, "viewer@brightpath.example") as page:
        expect(page.get_by_role("heading", name="BrightPath Marketing")).to_be_visible()
        assert sections(page) == ["Dashboard", "Seats", "Reports"]
        assert stat(page, "Leads called").endswith("/ 400")
        check_page(page, "viewer-dashboard")

        open_section(page, "Seats")
        assert main_actions(page) == ["Apply"]  # the filter; no "Add a seat", no history
        check_page(page, "viewer-seats")
        page.goto(f"{demo.url}/a/brightpath/seats/{demo.other_seat.id}")
        expect(
            page.get_by_role("heading", name=re.compile(demo.other_seat.primary_name))
        ).to_be_visible()
        assert main_actions(page) == ["Call report"]  # no deactivate, no Backup changes
        check_page(page, "viewer-seat")
        page.get_by_role("link", name="Call report").click()
        expect(page.get_by_role("heading", name="Call report", level=1)).to_be_visible()
        expect(page.locator("main tbody tr").first).to_be_visible()
        check_page(page, "viewer-seat-call-report")

        open_section(page, "Reports")
        expect(page.get_by_role("heading", name="Your reports")).to_be_visible()
        check_page(page, "viewer-reports")

        for path in ("billing/", "members", "seats/new", "audit"):
            assert status(page, f"{demo.url}/a/brightpath/{path}") in (403, 404), path


def test_seat_member_sees_only_their_own_seat(browser: Browser, demo: Demo) -> None:
    mine, other = demo.member_seat, demo.other_seat
    with signed_in(browser, demo, "agent@brightpath.example") as page:
        expect(page.get_by_role("heading", name=mine.primary_name, level=1)).to_be_visible()
        expect(page.locator(".eyebrow")).to_contain_text(f"Seat {mine.reference}")
        expect(page.locator(".page-subtitle")).to_contain_text(re.compile(r"\b[1-9]\d* days? left"))
        assert sections(page) == ["Dashboard", "Seats", "Reports"]
        expect(page.get_by_text("this seat's leads in M3")).to_be_visible()
        check_page(page, "seat-member-dashboard")

        open_section(page, "Seats")
        rows = page.locator("#seat-results tbody tr")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text(mine.reference)
        rows.get_by_role("link").first.click()
        page.get_by_role("link", name="Call report").click()
        expect(page.get_by_role("heading", name="Call report", level=1)).to_be_visible()
        expect(page.locator("main")).to_contain_text(f"Seat {mine.reference}")
        check_page(page, "seat-member-call-report")
        page.locator("main tbody tr").first.get_by_role("link").first.click()
        check_page(page, "seat-member-lead")

        open_section(page, "Reports")
        scope = page.get_by_label("Report", exact=True)
        expect(scope.locator("option")).to_have_count(1)  # their seat; no master report
        expect(scope.locator("option")).to_contain_text(mine.reference)
        check_page(page, "seat-member-reports")

        for path in (f"seats/{other.id}/calls", f"seats/{other.id}/usage", f"seats/{other.id}"):
            assert status(page, f"{demo.url}/a/brightpath/{path}") == 404, path
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        check_page(page, "seat-member-other-seat-not-found")
        assert status(page, f"{demo.url}/ops/") == 404


def test_operator_goes_through_the_console(browser: Browser, demo: Demo) -> None:
    with signed_in(browser, demo, "ops@seatwise.example") as page:
        page.goto(f"{demo.url}/ops/")
        nav = page.get_by_role("navigation", name="Operator console sections")
        expect(nav).to_be_visible()
        tenants = page.locator("main table")
        for name in ("BrightPath Marketing", "Harbor Realty Group", "Dana Whitfield Lending"):
            expect(tenants).to_contain_text(name)
        check_page(page, "operator-tenants")
        tab_to(page, tenants.get_by_role("link", name="BrightPath Marketing").first)  # keyboard

        # Every section of the console that exists: its link in the operator navigation.
        visit_each_link(page, nav, "operator")

        # A tenant: the client's pages, read-only, each behind a link of the tenant's own.
        page.goto(f"{demo.url}/ops/")
        tenants.get_by_role("link", name="BrightPath Marketing").first.click()
        expect(page.get_by_role("heading", name="BrightPath Marketing", level=1)).to_be_visible()
        check_page(page, "operator-tenant")
        visit_each_link(
            page,
            page.get_by_role("navigation", name="BrightPath Marketing pages"),
            "operator-tenant",
        )


def visit_each_link(page: Page, nav: Locator, prefix: str) -> None:
    """Open each link of the navigation `nav` but the current page's, and check its page."""
    links = [
        (link.inner_text().strip(), link.get_attribute("href") or "")
        for link in nav.get_by_role("link").all()
        if link.get_attribute("aria-current") != "page"
    ]
    assert links, f"{nav} has no links"
    for label, href in links:
        page.goto(urljoin(page.url, href))
        expect(nav.get_by_role("link", name=label, exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        check_page(page, f"{prefix}-{re.sub(r'[^a-z]+', '-', label.lower())}")


def test_owner_reads_the_dashboard_downloads_the_master_report_and_changes_plan(
    browser: Browser, demo: Demo
) -> None:
    # After the other roles: the worker has started up meanwhile.
    with signed_in(browser, demo, "owner@brightpath.example") as page:
        expect(page.get_by_role("heading", name="BrightPath Marketing")).to_be_visible()
        assert sections(page) == ["Dashboard", "Seats", "Reports", "Billing", "Team", "Audit log"]
        expect(page.locator(".page-subtitle")).to_contain_text(re.compile(r"\b[1-9]\d* days? left"))
        assert stat(page, "Leads called").endswith("/ 400")  # Brokerage 400
        check_page(page, "owner-dashboard")

        # Last month, closed: its invoice and the leads called, which the report must match.
        page.get_by_label("Billing period").select_option("M2")
        expect(page.locator("#usage-live")).to_contain_text(re.compile(r"M2 is closed\. Invoice"))
        called_in_m2 = int(stat(page, "Leads called").split("/")[0])
        assert called_in_m2 > 400  # the demo agency went over its plan in M2
        check_page(page, "owner-dashboard-closed-month")

        open_section(page, "Reports")
        page.get_by_label("Report", exact=True).select_option("master")
        page.get_by_label("Covering").select_option("M2")
        page.get_by_label("CSV, for a spreadsheet").check()
        page.get_by_role("button", name="Create report").click()
        row = page.locator("tr.report-row").first
        expect(row).to_contain_text("Master report · CSV")
        download_link = row.get_by_role("link", name="Download CSV")
        # The row polls itself until the worker has made the report.
        expect(download_link).to_be_visible(timeout=60_000)
        check_page(page, "owner-reports")
        with page.expect_download() as download_info:
            download_link.click()
        text = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len({row["Seat reference"] for row in rows}) > 20  # a master report: every seat
        assert {"Summit Home Team", "Keystone Home Loans"} <= {row["Client"] for row in rows}
        assert sum(row["Month key"] == "M2" for row in rows) == called_in_m2

        open_section(page, "Seats")
        expect(page.get_by_role("heading", name="Seats", exact=True)).to_be_visible()
        check_page(page, "owner-seats")
        page.locator("#seat-results tbody tr").first.get_by_role("link").first.click()
        expect(page.get_by_role("link", name="Call report")).to_be_visible()
        check_page(page, "owner-seat")
        page.get_by_role("link", name="Start a new seat with a different Primary").click()
        expect(
            page.get_by_role("heading", name="A new seat with a different Primary")
        ).to_be_visible()
        check_page(page, "owner-seat-new-primary")
        page.go_back()
        page.get_by_role("link", name="Call report").click()
        expect(page.get_by_role("heading", name="Call report", level=1)).to_be_visible()
        check_page(page, "owner-seat-call-report")

        open_section(page, "Team")
        check_page(page, "owner-team")
        htmx_settled(page)
        page.get_by_role("link", name="Edit Priya Raman's role").click()
        expect(page.get_by_role("button", name="Save role")).to_be_visible()
        htmx_settled(page)
        check_page(page, "owner-team-edit-role")
        open_section(page, "Audit log")
        check_page(page, "owner-audit-log")

        open_section(page, "Billing")
        expect(page.get_by_role("heading", name="Billing", exact=True)).to_be_visible()
        check_page(page, "owner-billing")
        page.get_by_role("link", name="Which plan should I choose?").click()
        check_page(page, "owner-billing-choose")
        open_section(page, "Billing")
        page.get_by_role("link", name=re.compile(r"SW-\d{4}-\d{6}")).first.click()
        expect(page.get_by_text("Brokerage 400").first).to_be_visible()
        check_page(page, "owner-invoice")

        # Schedule a downgrade for the renewal, then withdraw it.
        open_section(page, "Billing")
        page.get_by_role("row", name=re.compile("Team 200")).get_by_role(
            "link", name="Downgrade…"
        ).click()
        preview = page.locator("#change-preview")
        expect(preview).to_contain_text("You can withdraw this change until then.")
        htmx_settled(page)
        check_page(page, "owner-billing-downgrade-preview")
        preview.get_by_role("button", name="Confirm downgrade").click()
        expect(page.get_by_text(re.compile("Downgrade to Team 200 on"))).to_be_visible()
        htmx_settled(page)
        check_page(page, "owner-billing-downgrade-scheduled")
        page.get_by_role("button", name="Withdraw the downgrade").click()
        expect(page.locator("#flash")).to_contain_text("The downgrade is withdrawn")
        expect(page.get_by_text(re.compile("Downgrade to Team 200 on"))).to_have_count(0)


def test_visitors_pages_sign_in_errors_and_not_found(browser: Browser, demo: Demo) -> None:
    with browser_page(browser) as page:
        page.goto(f"{demo.url}/pricing")
        expect(page.get_by_text("Brokerage 400").first).to_be_visible()
        check_page(page, "visitor-pricing")
        page.goto(f"{demo.url}/signup")
        check_page(page, "visitor-signup")
        page.goto(f"{demo.url}/login")
        check_page(page, "visitor-login")
        page.get_by_label("Email").fill("owner@brightpath.example")
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("That email and password do not match an account.")).to_be_visible()
        expect(page.get_by_label("Email")).to_have_value("owner@brightpath.example")
        check_page(page, "visitor-login-refused")
        page.get_by_role("link", name="Forgot password?").click()
        check_page(page, "visitor-reset")
        page.get_by_label("Email").fill("owner@brightpath.example")
        page.get_by_role("button", name="Send reset link").click()
        expect(page.get_by_role("link", name="Back to sign in")).to_be_visible()
        check_page(page, "visitor-reset-sent")
        assert status(page, f"{demo.url}/no-such-page") == 404
        check_page(page, "visitor-not-found")


# The focused element, and whether it shows that it has the focus: an outline that is not
# transparent, or a ring (box-shadow), on it or on the option box around a radio button.
FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const shows = (node) => {
    if (!node) return false;
    const style = getComputedStyle(node);
    const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0
      && style.outlineColor !== "rgba(0, 0, 0, 0)";
    return outline || style.boxShadow !== "none";
  };
  const box = el.getBoundingClientRect();
  return {
    what: `${el.tagName} ${(el.innerText || el.name || el.id || "").trim().slice(0, 40)}`,
    indicated: shows(el) || shows(el.closest(".option")),
    visible: box.width > 0 && box.height > 0,
  };
}"""


def tab_to(page: Page, target: Locator, key: str = "Tab", limit: int = 80) -> None:
    """Press Tab (or `key`, Shift+Tab to go back) until `target` has the focus, checking at
    every stop that the focused element is on screen and shows the focus."""
    for _ in range(limit):
        page.keyboard.press(key)
        focus = page.evaluate(FOCUS)
        assert focus is not None, f"the focus left the page before reaching {target}"
        assert focus["visible"], f"{focus['what']} has the focus but is not shown"
        assert focus["indicated"], f"{focus['what']} has the focus but does not show it"
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{target} was not reached in {limit} presses of {key}")


def test_an_owner_works_by_keyboard_alone(browser: Browser, demo: Demo) -> None:
    """Sign in, skip to the content, reach each main page's main action and sign out, with
    the keyboard only; every focus stop on the way must show the focus."""
    with browser_page(browser) as page:
        page.goto(f"{demo.url}/login")
        expect(page.get_by_label("Email")).to_be_focused()  # autofocus, before any key
        page.keyboard.type("owner@harbor.example")
        tab_to(page, page.get_by_label("Password"))
        page.keyboard.type(DEMO_PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Harbor Realty Group")).to_be_visible()

        # The skip link is the first stop, is visible, and moves the focus to the content.
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        expect(skip).to_be_focused()
        box = skip.bounding_box()
        assert box is not None
        assert box["y"] >= 0
        assert box["height"] > 0
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        tab_to(page, page.get_by_label("Billing period"))

        nav = page.locator("nav.tabs")
        main_actions = {
            "Seats": page.get_by_role("link", name="Add a seat"),
            "Reports": page.get_by_role("button", name="Create report"),
            "Billing": page.get_by_role("link", name="Which plan should I choose?"),
            "Team": page.get_by_role("button", name="Send invitation"),
            "Audit log": page.get_by_label("Kind of change"),
            "Dashboard": page.get_by_label("Billing period"),
        }
        for section, action in main_actions.items():
            # Back up from the content to the section's link, open it, reach its action.
            tab_to(page, nav.get_by_role("link", name=section, exact=True), "Shift+Tab")
            page.keyboard.press("Enter")
            expect(nav.locator("[aria-current='page']")).to_have_text(section)
            tab_to(page, action)

        # The profile menu opens and signs out from the keyboard.
        tab_to(page, page.locator("summary", has_text="Your profile"), "Shift+Tab")
        page.keyboard.press("Enter")
        tab_to(page, page.get_by_role("button", name="Sign out"))
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
