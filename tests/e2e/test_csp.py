"""The Content-Security-Policy in a real browser: Chromium loads the main pages of every area,
with the demo data and a seat, a lead and a note full of markup, and reports no violation
(each page listens for `securitypolicyviolation`, and the console is watched for refusals).
htmx works under the policy: a filter swaps its results in without a violation."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import ConsoleMessage, Dialog, Page, expect

from app.api.auth import create_api_key
from app.extensions import db
from app.models import Account, Invoice, Lead
from app.seats.operations import PersonDetails, SeatDetails, create_seat
from app.seed import DEMO_PASSWORD, load_demo
from app.tenancy import tenant_context
from tests.e2e.conftest import htmx_settled
from tests.live import live_app, serve

pytestmark = [pytest.mark.live, pytest.mark.e2e]

HOSTILE = "<script>alert('x')</script><img src=x onerror=alert('y')>\"><b style=color:red>"
LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


@dataclass
class Site:
    url: str
    slug: str
    seat_id: int
    lead_id: int
    invoice_id: int


@pytest.fixture(scope="module")
def site(app: Flask) -> Iterator[Site]:
    """The demo data served on loopback; BrightPath's first seat, one of its leads and notes
    are full of markup. (`app`: the migrated template database the live app copies.)"""
    with live_app("e2e_csp") as live:
        with live.app_context(), live.test_request_context():
            load_demo(datetime.now(UTC))
            account = db.session.scalars(sa.select(Account).where(Account.slug == "brightpath"))
            found = account.one()
            account_id, slug = found.id, found.slug
            with tenant_context(found.id):
                seat = create_seat(
                    found,
                    SeatDetails(
                        PersonDetails(HOSTILE[:100], "hostile@brightpath.example"),
                        backup=PersonDetails(HOSTILE[:100], "backup@brightpath.example"),
                        client_label=HOSTILE[:60],
                    ),
                )
                invoice = db.session.scalars(sa.select(Invoice).order_by(Invoice.id)).first()
                assert invoice is not None
                seat_id, reference, invoice_id = seat.id, seat.reference, invoice.id
            key = create_api_key("csp").secret
            db.session.commit()
        with serve(live) as url:
            post_hostile_attempt(url, key, reference)
            with live.app_context(), tenant_context(account_id):
                lead = db.session.scalars(sa.select(Lead).where(Lead.external_id == "csp-1")).one()
                lead_id = lead.id
            yield Site(url, slug, seat_id, lead_id, invoice_id)


def post_hostile_attempt(url: str, key: str, reference: str) -> None:
    now = datetime.now(UTC) - timedelta(minutes=2)
    attempt = {
        "event_id": "csp-attempt-1",
        "seat": reference,
        "lead_external_id": "csp-1",
        "lead": {
            "name": HOSTILE[:200],
            "phone": "+14155550123",
            "source": HOSTILE[:64],
            "received_at": (now - timedelta(minutes=3)).isoformat(),
        },
        "attempted_at": now.isoformat(),
        "disposition": "live_transfer",
        "duration_seconds": 42,
        "isa_agent": HOSTILE[:100],
        "notes": HOSTILE,
    }
    request = urllib.request.Request(
        f"{url}/api/v1/call-attempts",
        data=json.dumps({"attempts": [attempt]}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        answer = json.loads(response.read())
    assert answer["created"] == 1, answer


@dataclass
class Watch:
    """What the browser refused, and any dialog a script of the page's data would open."""

    console: list[str]
    dialogs: list[str]

    def violations(self, page: Page) -> list[str]:
        reported: list[str] = page.evaluate("window.__violations || []")
        return reported + self.console


def watch(page: Page) -> Watch:
    seen = Watch([], [])
    page.add_init_script(LISTEN)

    def on_console(message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text:
            seen.console.append(text)

    def on_dialog(dialog: Dialog) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("dialog", on_dialog)
    return seen


def log_in(page: Page, site: Site, email: str) -> None:
    page.goto(f"{site.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def visit_all(page: Page, seen: Watch, urls: list[str]) -> dict[str, list[str]]:
    found = {}
    for url in urls:
        response = page.goto(url)
        assert response is not None
        assert response.status == 200, (url, response.status)
        assert "'unsafe-inline'" not in response.headers["content-security-policy"]
        page.wait_for_load_state("load")
        if problems := seen.violations(page):
            found[url] = problems
            seen.console.clear()
    return found


def test_the_pages_of_every_area_break_no_rule_of_the_policy(page: Page, site: Site) -> None:
    seen = watch(page)
    base = site.url
    public = [f"{base}/login", f"{base}/pricing", f"{base}/signup"]
    assert visit_all(page, seen, public) == {}

    log_in(page, site, "owner@brightpath.example")
    tenant = f"{base}/a/{site.slug}"
    seat = f"{tenant}/seats/{site.seat_id}"
    pages = [
        f"{tenant}/",
        f"{tenant}/seats/",
        seat,
        f"{seat}/usage",
        f"{seat}/calls",
        f"{seat}/leads/{site.lead_id}",
        f"{tenant}/reports/",
        f"{tenant}/billing/",
        f"{tenant}/billing/choose?leads=300",
        f"{tenant}/billing/invoices/{site.invoice_id}",
        f"{tenant}/members",
        f"{tenant}/audit",
    ]
    assert visit_all(page, seen, pages) == {}
    # The hostile text is shown as text, escaped, and ran nothing.
    page.goto(f"{seat}/leads/{site.lead_id}")
    expect(page.get_by_text("<script>alert('x')</script>").first).to_be_visible()
    assert page.locator("img[src='x']").count() == 0
    assert seen.dialogs == []

    # htmx under the policy: configured to need no eval and to inject no <style> of its own...
    page.goto(f"{tenant}/seats/")
    assert page.evaluate(
        "[htmx.config.allowEval, htmx.config.includeIndicatorStyles,"
        " document.querySelectorAll('style').length]"
    ) == [False, False, 0]
    # ...and the seat filter swaps its results in.
    search = page.get_by_role("searchbox")
    search.fill("ST-")
    search.press("Enter")
    htmx_settled(page)
    assert seen.violations(page) == []
    assert seen.dialogs == []


def test_the_operator_console_breaks_no_rule_of_the_policy(page: Page, site: Site) -> None:
    seen = watch(page)
    log_in(page, site, "ops@seatwise.example")
    page.goto(f"{site.url}/ops/")
    links = page.locator("nav.tabs a.tab")
    urls = [f"{site.url}/ops/"] + [
        site.url + (links.nth(n).get_attribute("href") or "") for n in range(links.count())
    ]
    assert visit_all(page, seen, urls) == {}


def test_a_violation_would_be_seen(page: Page, site: Site) -> None:
    """The listener works: markup with a style attribute, added the way a swap adds it, is
    refused by the policy and reported."""
    seen = watch(page)
    page.goto(f"{site.url}/login")
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">styled</p>')"
    )
    page.wait_for_function("window.__violations.length > 0")
    assert any("style-src" in text for text in seen.violations(page))
