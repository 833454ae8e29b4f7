"""The public pages: pricing with the chooser, and signup — one transaction that creates the
account, its owner, the subscription and M1, the seats, the signup invoice, the audit log and
the invitation; or nothing at all."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import billing
from app.extensions import db, limiter
from app.models import (
    Account,
    AccountKind,
    AuditEvent,
    BillingPeriod,
    Invoice,
    Membership,
    OutboxEmail,
    Person,
    Plan,
    Role,
    Seat,
    Subscription,
    User,
)
from app.tenancy import tenant_context, unscoped
from tests import factories
from tests.conftest import app_on_the_test_connection
from tests.onboarding_forms import signup_form

OWNER = "morgan@brightpath.example"


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def plans() -> dict[str, Plan]:
    return {
        "S25": factories.make_plan(25, 1400, code="S25", name="Starter 25"),
        "P100": factories.make_plan(100, 1200, code="P100", name="Pro 100"),
        "T200": factories.make_plan(200, 1100, code="T200", name="Team 200"),
    }


def row_counts() -> dict[str, int]:
    with unscoped():
        return {
            model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
            for model in (
                Account,
                User,
                Membership,
                Subscription,
                BillingPeriod,
                Seat,
                Person,
                Invoice,
                AuditEvent,
                OutboxEmail,
            )
        }


def the_account(slug: str = "brightpath-marketing") -> Account:
    return db.session.scalars(sa.select(Account).where(Account.slug == slug)).one()


# --- pricing --------------------------------------------------------------------------------


def test_pricing_lists_the_plans_on_sale_and_explains_the_rules(
    client: FlaskClient, plans: dict[str, Plan]
) -> None:
    plans["T200"].retired = True
    db.session.flush()
    page = text(client.get("/pricing"))
    assert "Starter 25" in page
    assert "Pro 100" in page
    assert "Team 200" not in page
    assert "$1,200.00" in page
    assert "$12.00" in page
    for rule in ("Use it or lose it", "No penalty for going over", "$57.00"):
        assert rule in page
    assert "/signup?plan=P100" in page


def test_the_chooser_prices_every_plan_and_marks_the_cheapest(
    client: FlaskClient, plans: dict[str, Plan]
) -> None:
    response = client.get("/pricing", query_string={"leads": "150"}, headers={"HX-Request": "true"})
    page = text(response)
    assert page.lstrip().startswith('<div id="chooser-panel"')
    assert "HX-Request" in response.vary
    # Starter 25: 350 + 125 × 14 = 2,100; Pro 100: 1,200 + 50 × 12 = 1,800; Team 200: 2,200.
    cheapest = page[page.index('class="is-highlighted"') :][:600]
    assert "Pro 100" in cheapest
    assert "Cheapest" in cheapest
    assert "$1,800.00" in cheapest
    assert page.index("$1,800.00") < page.index("$2,100.00") < page.index("$2,200.00")


@pytest.mark.parametrize("leads", ["", "-3", "many", "1000000"])
def test_the_chooser_explains_a_bad_number(
    client: FlaskClient, plans: dict[str, Plan], leads: str
) -> None:
    response = client.get("/pricing", query_string={"leads": leads})
    assert response.status_code == 422
    assert 'id="leads-error-1"' in text(response)
    assert "is-highlighted" not in text(response)


# --- signup ---------------------------------------------------------------------------------


def test_signup_shows_the_chosen_plan_and_the_invoice_it_will_issue(
    client: FlaskClient, plans: dict[str, Plan]
) -> None:
    page = text(client.get("/signup", query_string={"plan": "P100"}))
    assert re.search(r'<input checked[^>]*value="P100"', page)
    assert "Lead package Pro 100" in page or "Pro 100" in page
    assert "$1,200.00" in page


def test_an_agency_signup_creates_everything_in_one_go(
    client: FlaskClient, plans: dict[str, Plan]
) -> None:
    response = client.post("/signup", data=signup_form(plans["P100"], "agency", seats=2))
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/signup/done"

    account = the_account()
    assert account.kind is AccountKind.AGENCY
    assert account.timezone == "America/Chicago"
    assert account.billing_email == OWNER
    owner = db.session.scalars(sa.select(User).where(User.email == OWNER)).one()
    assert owner.password_hash is None
    with tenant_context(account.id):
        membership = db.session.scalars(sa.select(Membership)).one()
        assert (membership.user_id, membership.role) == (owner.id, Role.OWNER)
        subscription = db.session.scalars(sa.select(Subscription)).one()
        assert subscription.plan_id == plans["P100"].id
        period = db.session.scalars(sa.select(BillingPeriod)).one()
        assert period.key == "M1"
        seats = db.session.scalars(sa.select(Seat).order_by(Seat.id)).all()
        assert [seat.client_label for seat in seats] == ["Client 0", "Client 1"]
        assert [seat.primary.mobile for seat in seats] == ["+13125550100", "+13125550101"]
        assert all(seat.fee_cents == 0 for seat in seats)  # billed on the signup invoice
        invoice = db.session.scalars(sa.select(Invoice)).one()
        assert [(line.kind, line.amount_cents) for line in invoice.lines] == [
            (billing.LineKind.PLAN_ADVANCE.value, 120_000),
            (billing.LineKind.SEAT_FEE.value, 11_400),
        ]
        actions = db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
        assert actions[0] == "account.created"
        assert actions.count("seat.created") == 2
        assert "invoice.issued" in actions
        actors = set(db.session.scalars(sa.select(AuditEvent.actor_id)))
        assert actors == {owner.id}

    [invitation] = db.session.scalars(
        sa.select(OutboxEmail).where(OutboxEmail.to_address == OWNER)
    ).all()
    link = re.search(r"https?://\S+/invite/\S+", invitation.body_text)
    assert link is not None
    assert link.group(0).startswith("http://localhost/invite/")

    done = text(client.get("/signup/done"))
    assert OWNER in done
    assert invoice.number in done
    assert "$1,314.00" in done
    # The link sets the password and opens the new account.
    path = urlsplit(link.group(0)).path
    password = "a long enough password"
    response = client.post(path, data={"password": password, "confirm": password})
    assert response.status_code == 302
    assert client.get(f"/a/{account.slug}/seats/").status_code == 200


def test_a_solo_signup_has_one_seat_and_no_seat_fee(
    client: FlaskClient, plans: dict[str, Plan]
) -> None:
    form = signup_form(plans["S25"], "solo", seats=1, **{"seats-0-client_label": ""})
    assert client.post("/signup", data=form).status_code == 303
    account = the_account()
    with tenant_context(account.id):
        invoice = db.session.scalars(sa.select(Invoice)).one()
        assert invoice.total_cents == 35_000
        assert len(db.session.scalars(sa.select(Seat)).all()) == 1


def test_a_solo_signup_with_two_seats_is_refused_beside_the_account_type(
    client: FlaskClient, plans: dict[str, Plan]
) -> None:
    before = row_counts()
    response = client.post("/signup", data=signup_form(plans["S25"], "solo", seats=2))
    assert response.status_code == 422
    assert "A solo account has one seat" in text(response)
    assert 'value="Agent 1"' in text(response)
    assert row_counts() == before


@pytest.mark.parametrize(
    ("changes", "field_id", "message"),
    [
        ({"plan": None}, None, "Choose a plan."),
        ({"kind": None}, None, "Choose the kind of account."),
        ({"owner_email": "morgan@brightpath.test"}, "owner_email", "email"),
        ({"company": ""}, "company", "This field is required."),
        ({"seats-1-primary-mobile": "12345"}, "seats-1-primary-mobile", "valid phone number"),
        ({"seats-0-client_label": ""}, "seats-0-client_label", "Name the client"),
        ({"seats-1-lead_delivery": None}, "seats-1-lead_delivery", "Choose how the leads"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Not a valid choice"),
    ],
)
def test_a_bad_signup_comes_back_with_the_values_and_creates_nothing(
    client: FlaskClient,
    plans: dict[str, Plan],
    changes: dict[str, Any],
    field_id: str | None,
    message: str,
) -> None:
    before = row_counts()
    response = client.post("/signup", data=signup_form(plans["P100"], seats=2, **changes))
    page = text(response)
    assert response.status_code == 422
    assert message in page
    if field_id:
        assert f'id="{field_id}-error-1"' in page
    if "company" not in changes:
        assert 'value="BrightPath Marketing"' in page
    assert 'value="Agent 1"' in page
    assert row_counts() == before


def test_adding_and_removing_seats_keeps_what_was_typed(
    client: FlaskClient, plans: dict[str, Plan]
) -> None:
    form = signup_form(plans["P100"], seats=2)
    added = client.post(
        "/signup", data={**form, "action": "add-seat"}, headers={"HX-Request": "true"}
    )
    page = text(added)
    assert added.status_code == 200
    assert page.lstrip().startswith('<form id="signup-form"')
    assert "3. Seat 3" in page
    assert 'value="Agent 0"' in page
    assert 'value="Agent 1"' in page
    assert "field-error" not in page  # not validated yet
    assert "$1,371.00" in page  # $1,200 + 3 × $57

    removed = text(client.post("/signup", data={**form, "action": "remove-seat-0"}))
    assert 'value="Agent 0"' not in removed
    assert 'value="Agent 1"' in removed
    assert "3. Your seat" in removed


def test_a_failure_late_in_the_signup_leaves_nothing_behind(
    client: FlaskClient, plans: dict[str, Plan], monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.onboarding.operations as onboarding

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise billing.BillingRuleError("Pro 100 is no longer offered.")

    monkeypatch.setattr(onboarding, "subscribe", refuse)
    before = row_counts()
    response = client.post("/signup", data=signup_form(plans["P100"], seats=2))
    assert response.status_code == 422
    assert "Pro 100 is no longer offered." in text(response)
    assert row_counts() == before


def test_someone_who_already_signs_in_gets_the_account_without_a_new_password_link(
    client: FlaskClient, plans: dict[str, Plan]
) -> None:
    existing = factories.UserFactory(email=OWNER)
    assert client.post("/signup", data=signup_form(plans["P100"])).status_code == 303
    [mail] = db.session.scalars(sa.select(OutboxEmail).where(OutboxEmail.to_address == OWNER))
    assert "/invite/" not in mail.body_text
    assert "created with you as its owner" in mail.body_text
    assert f"/a/{the_account().slug}/" in mail.body_text
    assert existing.password_hash == factories._PASSWORD_HASH


# --- abuse: rate limit and CSRF -------------------------------------------------------------


@pytest.fixture
def limited_app(app: Flask) -> Iterator[Flask]:
    was_enabled = limiter.enabled
    limited = app_on_the_test_connection(
        {"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": True}
    )
    limiter.reset()
    try:
        yield limited
    finally:
        limiter.reset()
        limiter.enabled = was_enabled


def test_signups_are_limited_to_ten_an_hour_per_address(
    limited_app: Flask, plans: dict[str, Plan]
) -> None:
    client = limited_app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.9.0.1"
    for _ in range(3):
        bad = signup_form(plans["S25"], company="")
        assert client.post("/signup", data=bad).status_code == 422
        assert client.post("/signup", data={**bad, "action": "add-seat"}).status_code == 200
    for n in range(10):
        form = signup_form(plans["S25"], owner_email=f"owner{n}@many.example", company=f"Co {n}")
        assert client.post("/signup", data=form).status_code == 303
    # Forms with errors did not count; the eleventh account does not happen.
    eleventh = signup_form(plans["S25"], owner_email="owner10@many.example", company="Co 10")
    assert client.post("/signup", data=eleventh).status_code == 429
    other = limited_app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.9.0.2"
    assert other.post("/signup", data=eleventh).status_code == 303


def test_signup_keeps_csrf_protection(app: Flask, plans: dict[str, Plan]) -> None:
    protected = app_on_the_test_connection({"TESTING": True, "RATELIMIT_ENABLED": False})
    client = protected.test_client()
    before = row_counts()
    assert client.post("/signup", data=signup_form(plans["P100"])).status_code == 400
    assert row_counts() == before
