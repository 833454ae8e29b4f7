"""The operator console's tenants: the searchable list and each tenant's read-only pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app.calls.operations import record_attempt, record_lead
from app.extensions import db
from app.models import Account, AuditEvent, Disposition, Invoice, Role, Seat, User
from app.tenancy import tenant_context
from tests.conftest import Auth
from tests.factories import AccountFactory, make_plan, member, subscribed_account

_n = count(1)
VOICEMAIL = Disposition.VOICEMAIL_NO_ANSWER


def call(account: Account, seat: Seat, leads: int, at: datetime) -> None:
    with tenant_context(account.id):
        for _ in range(leads):
            n = next(_n)
            lead, _ = record_lead(seat, f"OPS{n}", f"Lead {n}", "", "", "Zillow", at)
            record_attempt(seat, lead, f"OPSE{n}", at, VOICEMAIL, 30, "Isa", "")
    db.session.commit()


def seats_of(account: Account) -> list[Seat]:
    with tenant_context(account.id):
        return list(db.session.scalars(sa.select(Seat).order_by(Seat.id)))


def text(response: object) -> str:
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def viewed_events(account: Account) -> list[AuditEvent]:
    with tenant_context(account.id):
        return list(
            db.session.scalars(
                sa.select(AuditEvent)
                .where(AuditEvent.action == "operator.viewed")
                .order_by(AuditEvent.id)
            )
        )


@pytest.fixture
def busy() -> Account:
    """Harbor Realty: plan 20 at $10, 26 leads called this period, owner@harbor.example."""
    account = subscribed_account(
        kind="brokerage",
        seats=2,
        plan=make_plan(20, 1000),
        start=(datetime.now(UTC) - timedelta(days=10)).date(),
        name="Harbor Realty",
    )
    member(account, Role.OWNER, email="owner@harbor.example")
    first, second = seats_of(account)
    call(account, first, 20, datetime.now(UTC) - timedelta(days=2))
    call(account, second, 6, datetime.now(UTC) - timedelta(hours=3))
    return account


@pytest.fixture
def ops(client: FlaskClient, auth: Auth, operator: User) -> FlaskClient:
    auth.login(operator)
    return client


def test_the_list_shows_plan_seats_usage_overage_and_status(
    ops: FlaskClient, busy: Account, other_account: Account
) -> None:
    page = text(ops.get("/ops/"))
    row = page[page.index("Harbor Realty") :]
    assert "owner@harbor.example" in row
    assert "26 / 20" in row
    assert "130% · M1" in row
    assert "$60.00 6 leads" in row  # 6 over at $10
    assert "Over plan" in row
    assert other_account.name in page
    with tenant_context(busy.id):
        latest = db.session.scalar(sa.select(sa.func.max(Seat.last_lead_at)))
    assert latest is not None
    assert f"{latest:%-d %b %Y, %H:%M} UTC" in row  # last activity: the seats' latest lead


def test_the_search_matches_name_or_owner_email_and_htmx_gets_the_results_only(
    ops: FlaskClient, busy: Account, other_account: Account
) -> None:
    by_email = ops.get("/ops/?q=OWNER@HARBOR", headers={"HX-Request": "true"})
    body = by_email.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="tenant-results">')
    assert "Harbor Realty" in body
    assert other_account.name not in body
    assert "HX-Request" in by_email.headers["Vary"]
    by_name = text(ops.get("/ops/?q=harb"))
    assert "Harbor Realty" in by_name
    assert other_account.name not in by_name
    assert "No tenant matches" in text(ops.get("/ops/?q=nobody-at-all"))


def test_a_tenant_page_shows_what_the_client_sees_read_only(
    ops: FlaskClient, busy: Account
) -> None:
    dashboard = ops.get(f"/ops/tenants/{busy.id}/dashboard")
    assert dashboard.status_code == 200
    page = text(dashboard)
    assert "26 / 20" in page
    assert "Overage so far $60.00" in page
    html = dashboard.get_data(as_text=True)
    assert f"/a/{busy.slug}" not in html  # every link stays in the console
    assert f'hx-get="/ops/tenants/{busy.id}/dashboard"' in html  # it refreshes like the client's
    seat = seats_of(busy)[0]
    assert f"/ops/tenants/{busy.id}/seats/{seat.id}/usage" in html

    seat_page = text(ops.get(f"/ops/tenants/{busy.id}/seats/{seat.id}/usage"))
    assert "20 / 20" in seat_page

    found = ops.get(
        f"/ops/tenants/{busy.id}/seats?q={seat.reference}", headers={"HX-Request": "true"}
    )
    assert found.get_data(as_text=True).lstrip().startswith('<div id="seat-results"')
    assert seat.reference in text(found)
    assert seats_of(busy)[1].reference not in text(found)
    seats = ops.get(f"/ops/tenants/{busy.id}/seats")
    assert seat.reference in text(seats)
    assert "Add a seat" not in text(seats)
    assert f"/a/{busy.slug}" not in seats.get_data(as_text=True)

    invoices = ops.get(f"/ops/tenants/{busy.id}/invoices")
    with tenant_context(busy.id):
        invoice = db.session.scalars(sa.select(Invoice)).one()
    assert invoice.number in text(invoices)
    assert "Cancel your plan" not in text(invoices)  # no action of the client's
    assert invoices.get_data(as_text=True).count('method="post"') == 1  # signing out only
    one = text(ops.get(f"/ops/tenants/{busy.id}/invoices/{invoice.id}"))
    assert invoice.number in one
    assert "Total" in one

    assert ops.get(f"/ops/tenants/{busy.id}/reports").status_code == 200
    overview = text(ops.get(f"/ops/tenants/{busy.id}/"))
    assert "owner@harbor.example" in overview
    assert "Subscribed to plan" in overview


def test_each_visit_is_in_the_tenants_audit_log_but_not_its_refreshes(
    ops: FlaskClient, busy: Account
) -> None:
    ops.get(f"/ops/tenants/{busy.id}/dashboard")
    ops.get(f"/ops/tenants/{busy.id}/dashboard", headers={"HX-Request": "true"})
    ops.get(f"/ops/tenants/{busy.id}/seats")
    events = viewed_events(busy)
    assert [e.details["page"] for e in events] == ["dashboard", "seats"]
    assert events[0].actor_label.startswith("user")
    log = text(ops.get(f"/ops/tenants/{busy.id}/audit"))
    assert "The Seatwise team viewed the dashboard page" in log


def test_the_client_sees_the_operators_visit_in_its_own_audit_log(
    ops: FlaskClient, busy: Account, auth: Auth
) -> None:
    ops.get(f"/ops/tenants/{busy.id}/invoices")
    auth.logout()
    auth.login(member(busy, Role.OWNER))
    assert "viewed the invoices page" in text(ops.get(f"/a/{busy.slug}/audit"))


def test_another_tenants_objects_are_404_under_a_tenants_page(
    ops: FlaskClient, busy: Account, other_account: Account
) -> None:
    other_seat = seats_of(other_account)[0]
    with tenant_context(other_account.id):
        other_invoice = db.session.scalars(sa.select(Invoice)).first()
    assert other_invoice is not None
    assert ops.get(f"/ops/tenants/{busy.id}/seats/{other_seat.id}/usage").status_code == 404
    assert ops.get(f"/ops/tenants/{busy.id}/invoices/{other_invoice.id}").status_code == 404
    assert ops.get("/ops/tenants/999999/").status_code == 404
    assert ops.get(f"/ops/tenants/{busy.id}/dashboard?period=M9").status_code == 404


def test_a_tenant_without_a_plan_lists_and_opens_on_every_page(ops: FlaskClient) -> None:
    bare = AccountFactory(name="Quiet Lending")
    row = text(ops.get("/ops/?q=quiet"))
    assert "Quiet Lending" in row
    assert "No plan" in row
    assert "Ended" in row
    for page in ("", "dashboard", "seats", "reports", "invoices", "audit"):
        response = ops.get(f"/ops/tenants/{bare.id}/{page}")
        assert response.status_code == 200, page
    assert "No billing period yet" in text(ops.get(f"/ops/tenants/{bare.id}/dashboard"))
