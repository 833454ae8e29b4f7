"""The billing page: owners act, everyone else is refused; previews state exactly what a
change will charge; cancel and undo; invoices; the plan chooser; team notices."""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from itertools import count
from typing import ClassVar

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from pypdf import PdfReader

from app.billing_portal.notify import notify
from app.calls.operations import record_attempt, record_lead
from app.extensions import db
from app.models import (
    Account,
    AccountKind,
    AuditEvent,
    BillingPeriod,
    Disposition,
    Invoice,
    OutboxEmail,
    Plan,
    Role,
    Seat,
    Subscription,
)
from app.onboarding.operations import create_account
from app.settings import set_setting
from app.tenancy import tenant_context
from tests.conftest import Auth
from tests.factories import make_plan, member, subscribed_account
from tests.live import empty_queues, live_app, run_worker_burst

_n = count(1)


def text(response: object) -> str:
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


@pytest.fixture
def plans() -> dict[str, Plan]:
    return {
        "S100": make_plan(100, 1000, code="S100", name="Starter 100"),
        "G200": make_plan(200, 900, code="G200", name="Growth 200"),
        "M50": make_plan(50, 1100, code="M50", name="Mini 50"),
    }


@pytest.fixture
def customer(plans: dict[str, Plan]) -> Account:
    """On Starter 100 since yesterday, 120 leads called."""
    account = subscribed_account(
        kind="brokerage",
        seats=1,
        plan=plans["S100"],
        start=(datetime.now(UTC) - timedelta(days=1)).date(),
    )
    with tenant_context(account.id):
        seat = db.session.scalars(sa.select(Seat)).one()
    at = datetime.now(UTC) - timedelta(hours=2)
    for _ in range(120):
        n = next(_n)
        lead, _ = record_lead(seat, f"B{n}", "Lead", "", "", "Zillow", at)
        record_attempt(seat, lead, f"BE{n}", at, Disposition.CALLBACK_LATER, 30, "Isa", "")
    db.session.commit()
    return account


@pytest.fixture
def owner_client(client: FlaskClient, auth: Auth, customer: Account) -> FlaskClient:
    auth.login(member(customer, Role.OWNER))
    return client


@pytest.mark.parametrize("role", [Role.ADMIN, Role.VIEWER, Role.SEAT_MEMBER])
def test_only_owners_see_or_change_billing(
    client: FlaskClient, auth: Auth, customer: Account, role: Role
) -> None:
    with tenant_context(customer.id):
        seat_id = db.session.scalars(sa.select(Seat.id)).first()
    auth.login(member(customer, role, seat_id=seat_id if role is Role.SEAT_MEMBER else None))
    base = f"/a/{customer.slug}/billing"
    for path in ("/", "/choose", "/change/G200"):
        assert client.get(base + path).status_code == 403
    for path in ("/change/G200", "/cancel", "/cancel/undo", "/downgrade/withdraw"):
        assert client.post(base + path).status_code == 403
    assert "Billing" not in text(client.get(f"/a/{customer.slug}/")).split("Dashboard")[0]


def test_the_page_shows_the_plan_and_the_next_invoice_if_it_closed_now(
    owner_client: FlaskClient, customer: Account
) -> None:
    page = text(owner_client.get(f"/a/{customer.slug}/billing/"))
    assert "Starter 100" in page
    assert "Overage: 20 leads at $10.00 (Starter 100) $200.00" in page
    assert "Lead package Starter 100, M2" in page
    assert "Total $1,200.00" in page
    assert "no penalty for going over" in page


def test_an_upgrade_preview_states_the_frozen_overage_and_the_difference(
    owner_client: FlaskClient, customer: Account
) -> None:
    response = owner_client.get(
        f"/a/{customer.slug}/billing/change/G200", headers={"HX-Request": "true"}
    )
    preview = text(response)
    assert "<html" not in response.get_data(as_text=True)
    assert "20 leads at $10.00 (Starter 100) = $200.00" in preview
    assert "Price difference: $800.00" in preview
    with tenant_context(customer.id):
        assert db.session.scalar(sa.select(BillingPeriod.allowance)) == 100  # nothing changed
    confirmed = owner_client.post(
        f"/a/{customer.slug}/billing/change/G200", headers={"HX-Request": "true"}
    )
    assert confirmed.status_code == 200
    assert 'id="billing-panel"' in confirmed.get_data(as_text=True)
    assert "You are on Growth 200 now" in text(confirmed)
    with tenant_context(customer.id):
        period = db.session.scalar(sa.select(BillingPeriod))
        assert period is not None
        assert (period.plan_code, period.allowance, period.cpl_cents) == ("G200", 200, 900)
        assert db.session.scalar(
            sa.select(AuditEvent.action).where(AuditEvent.action == "plan.upgraded")
        )


def test_a_downgrade_is_scheduled_and_can_be_withdrawn(
    owner_client: FlaskClient, customer: Account
) -> None:
    base = f"/a/{customer.slug}/billing"
    assert "takes effect" in text(
        owner_client.get(f"{base}/change/M50")
    ) or "starts at renewal" in text(owner_client.get(f"{base}/change/M50"))
    owner_client.post(f"{base}/change/M50")
    page = text(owner_client.get(f"{base}/"))
    assert "Downgrade to Mini 50 on" in page
    owner_client.post(f"{base}/downgrade/withdraw")
    assert "Downgrade to Mini 50 on" not in text(owner_client.get(f"{base}/"))
    with tenant_context(customer.id):
        assert db.session.scalar(sa.select(Subscription.scheduled_plan_id)) is None


def test_cancel_states_the_end_date_and_can_be_undone(
    owner_client: FlaskClient, customer: Account
) -> None:
    base = f"/a/{customer.slug}/billing"
    done = owner_client.post(
        f"{base}/cancel", data={"reason": "Slow season"}, follow_redirects=True
    )
    page = text(done)
    assert re.search(r"Your plan ends on \d+ \w+ \d{4}", page)
    with tenant_context(customer.id):
        subscription = db.session.scalar(sa.select(Subscription))
        assert subscription is not None
        assert subscription.cancel_at_period_end
        assert subscription.cancel_reason == "Slow season"
    refused = owner_client.post(f"{base}/change/M50", headers={"HX-Request": "true"})
    assert refused.status_code == 422
    assert "undo the cancellation" in text(refused)
    owner_client.post(f"{base}/cancel/undo")
    with tenant_context(customer.id):
        assert not db.session.scalar(sa.select(Subscription.cancel_at_period_end))


def test_invoices_list_detail_and_pdf(owner_client: FlaskClient, customer: Account) -> None:
    with tenant_context(customer.id):
        invoice = db.session.scalar(sa.select(Invoice))
    assert invoice is not None
    base = f"/a/{customer.slug}/billing"
    assert invoice.number in text(owner_client.get(f"{base}/"))
    detail = text(owner_client.get(f"{base}/invoices/{invoice.id}"))
    assert "Lead package Starter 100, M1" in detail
    assert "$1,000.00" in detail
    with owner_client.get(f"{base}/invoices/{invoice.id}.pdf") as pdf:
        assert pdf.status_code == 200
        assert pdf.headers["Content-Disposition"].startswith("attachment")
        assert "no-store" in pdf.headers["Cache-Control"]
        assert invoice.number in PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()


def test_the_chooser_compares_every_plan_and_recommends_the_cheapest(
    owner_client: FlaskClient, customer: Account
) -> None:
    page = text(owner_client.get(f"/a/{customer.slug}/billing/choose?leads=190"))
    # 190 leads: Starter $1,000 + 90 × $10 = $1,900; Growth $1,800; Mini $550 + 140 × $11 = $2,090.
    assert "Your number: 190 leads" in page
    assert re.search(r"Growth 200 \$1,800\.00 — \$1,800\.00 Cheapest", page)
    assert "$1,900.00" in page
    assert "$2,090.00" in page
    assert "M1: 120 leads" in page
    bad = owner_client.get(f"/a/{customer.slug}/billing/choose?leads=-4")
    assert "Between 0 and 100,000." in text(bad)


def test_owners_get_a_confirmation_email(owner_client: FlaskClient, customer: Account) -> None:
    owner_client.post(f"/a/{customer.slug}/billing/change/G200")
    subjects = db.session.scalars(sa.select(OutboxEmail.subject)).all()
    assert f"{customer.name}: plan changed" in subjects


class _Webhook(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, str]]] = []
    failures_left = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Webhook.failures_left > 0:
            _Webhook.failures_left -= 1
            self.send_response(500)
        else:
            _Webhook.bodies.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def webhook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Webhook.bodies, _Webhook.failures_left = [], 0
    yield f"http://127.0.0.1:{server.server_port}/hooks/seatwise"
    server.shutdown()
    server.server_close()


@pytest.mark.live
@pytest.mark.worker
def test_the_team_is_told_through_the_webhook_with_retries(webhook: str) -> None:
    with live_app("webhook", NOTIFY_RETRY_INTERVALS=[0, 0, 0]) as app:
        empty_queues(app)
        with app.app_context(), app.test_request_context():
            plan = Plan(
                code="S100", name="Starter 100", allowance=100, cpl_cents=1000, price_cents=100_000
            )
            db.session.add(plan)
            db.session.flush()
            new = create_account(
                name="Harbor Realty",
                kind=AccountKind.BROKERAGE,
                plan=plan,
                owner_email="owner@harbor.example",
                start=datetime.now(UTC).date(),
            )
            set_setting("slack_webhook_url", webhook, None)
            db.session.commit()
            _Webhook.failures_left = 2
            with tenant_context(new.account.id):
                notify(new.account, "plan cancelled", "Cancelled; the plan ends on 1 Jan.")
            db.session.commit()
        run_worker_burst(app, ("mail",))
        assert _Webhook.bodies == [
            {"text": "[Harbor Realty] Cancelled; the plan ends on 1 Jan. (by the service)"}
        ]
        assert _Webhook.failures_left == 0  # two failed deliveries were retried


def test_a_new_seat_tells_the_team_and_the_owners(
    owner_client: FlaskClient, customer: Account
) -> None:
    from app.seats.operations import PersonDetails, SeatDetails, create_seat

    with tenant_context(customer.id):
        seat = create_seat(
            customer, SeatDetails(PersonDetails("Robin Vale", "robin@harbor.example"))
        )
    db.session.commit()
    mail = db.session.scalar(
        sa.select(OutboxEmail).where(OutboxEmail.subject == f"{customer.name}: seat added")
    )
    assert mail is not None
    assert f"New seat {seat.reference} for Robin Vale; one-time fee $57.00" in mail.body_text
