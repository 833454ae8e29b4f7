"""The plan catalogue in the operator console: validation by the field, edits that never reach
open periods or issued invoices, and retiring a plan that its subscribers keep."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app.extensions import db
from app.models import Account, AuditEvent, BillingPeriod, Invoice, Plan, Role, User
from app.tenancy import tenant_context, unscoped
from tests.conftest import Auth
from tests.factories import make_plan, member, subscribed_account


def text(response: object) -> str:
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def field_error(response: object, field: str) -> str:
    """The error shown under one field of the form."""
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    found = re.search(rf'<p class="field-error" id="{field}-error-1">([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else ""


def plan_events(action: str) -> list[AuditEvent]:
    with unscoped():
        return list(
            db.session.scalars(
                sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


@pytest.fixture
def ops(client: FlaskClient, auth: Auth, operator: User) -> FlaskClient:
    auth.login(operator)
    return client


@pytest.fixture
def catalogue() -> tuple[Plan, Plan]:
    """Two plans on offer: 100 leads at $14 and 400 at $10."""
    return make_plan(100, 1400, code="S100", name="Starter"), make_plan(
        400, 1000, code="G400", name="Growth"
    )


def new_plan() -> dict[str, str]:
    return {"code": "M200", "name": "Medium", "allowance": "200", "cpl": "12", "price": "2400"}


def test_an_operator_adds_a_plan_that_is_offered_at_once(
    ops: FlaskClient, catalogue: tuple[Plan, Plan]
) -> None:
    response = ops.post("/ops/plans/new", data=new_plan())
    assert response.status_code == 303
    plan = db.session.scalars(sa.select(Plan).where(Plan.code == "M200")).one()
    assert (plan.allowance, plan.cpl_cents, plan.price_cents) == (200, 1200, 240_000)
    listing = text(ops.get("/ops/plans"))
    assert "Medium M200" in listing
    assert "$2,400.00" in listing
    assert "Medium" in text(ops.get("/pricing"))
    [event] = plan_events("plan.created")
    assert event.account_id is None
    assert event.details["price_cents"] == 240_000


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"price": "2,500"}, "price", "Must be 200 leads × $12.00 = $2,400.00."),
        ({"cpl": "15", "price": "3000"}, "cpl", "Must be lower than $14.00"),
        ({"cpl": "9", "price": "1800"}, "cpl", "Must be higher than $10.00"),
        ({"allowance": "400", "cpl": "11", "price": "4400"}, "allowance", "Growth already has"),
        ({"code": "S100"}, "code", "S100 is already a plan's code."),
        ({"cpl": "twelve"}, "cpl", "Enter an amount in dollars"),
        ({"allowance": "0", "price": "0"}, "allowance", "Between 1 and 100,000 leads."),
        ({"code": "m 2"}, "code", "Letters, digits and dashes only."),
    ],
)
def test_a_plan_the_catalogue_refuses_comes_back_with_the_error_by_its_field(
    ops: FlaskClient,
    catalogue: tuple[Plan, Plan],
    change: dict[str, str],
    field: str,
    message: str,
) -> None:
    values = {**new_plan(), **change}
    response = ops.post("/ops/plans/new", data=values)
    assert response.status_code == 422
    assert message in field_error(response, field)
    page = response.get_data(as_text=True)
    assert f'value="{values["name"]}"' in page  # what was typed is kept
    assert f'value="{values["cpl"]}"' in page
    assert db.session.scalar(sa.select(Plan).where(Plan.name == "Medium")) is None
    assert plan_events("plan.created") == []


def test_an_edit_reaches_new_periods_only_never_an_open_period_or_an_issued_invoice(
    ops: FlaskClient, catalogue: tuple[Plan, Plan]
) -> None:
    starter, _growth = catalogue
    account = subscribed_account(kind="brokerage", seats=1, plan=starter)
    with tenant_context(account.id):
        period = db.session.scalars(sa.select(BillingPeriod)).one()
        invoice = db.session.scalars(sa.select(Invoice)).one()
        before_lines = [(line.description, line.amount_cents) for line in invoice.lines]
    before_total = invoice.total_cents

    response = ops.post(
        f"/ops/plans/{starter.id}/edit",
        data={"name": "Starter Plus", "allowance": "120", "cpl": "13", "price": "1560"},
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert (starter.name, starter.allowance, starter.price_cents) == ("Starter Plus", 120, 156_000)
    assert starter.code == "S100"  # the code is fixed
    with tenant_context(account.id):
        period = db.session.get_one(BillingPeriod, period.id)
        assert (period.plan_name, period.allowance, period.cpl_cents, period.price_cents) == (
            "Starter",
            100,
            1400,
            140_000,
        )
        invoice = db.session.get_one(Invoice, invoice.id)
        assert invoice.total_cents == before_total
        assert [(line.description, line.amount_cents) for line in invoice.lines] == before_lines

    # The client still sees the period's own terms; the renewal is on the new ones.
    auth = Auth(ops)
    auth.logout()
    auth.login(member(account, Role.OWNER))
    billing = text(ops.get(f"/a/{account.slug}/billing/"))
    assert "Leads a month 100" in billing
    assert "$14.00" in billing
    assert "$1,560.00" in billing  # the next period's price, billed in advance at the close
    [event] = plan_events("plan.edited")
    assert event.details["price_cents"] == {"from": 140_000, "to": 156_000}


def test_an_edit_that_breaks_the_catalogue_is_refused_by_the_field(
    ops: FlaskClient, catalogue: tuple[Plan, Plan]
) -> None:
    starter, _growth = catalogue
    response = ops.post(
        f"/ops/plans/{starter.id}/edit",
        data={"name": "Starter", "allowance": "100", "cpl": "9", "price": "900"},
    )
    assert response.status_code == 422
    assert "Must be higher than $10.00" in field_error(response, "cpl")
    db.session.expire_all()
    assert starter.cpl_cents == 1400


def test_a_retired_plan_is_kept_by_its_subscribers_but_offered_to_nobody(
    ops: FlaskClient, catalogue: tuple[Plan, Plan]
) -> None:
    starter, growth = catalogue
    account: Account = subscribed_account(kind="brokerage", seats=1, plan=growth)
    assert ops.post(f"/ops/plans/{growth.id}/retire").status_code == 303
    db.session.expire_all()
    assert growth.retired
    assert "Retired" in text(ops.get("/ops/plans"))
    assert "Growth" not in text(ops.get("/pricing"))
    assert [e.details["code"] for e in plan_events("plan.retired")] == ["G400"]

    auth = Auth(ops)
    auth.logout()
    auth.login(member(account, Role.OWNER))
    billing = text(ops.get(f"/a/{account.slug}/billing/"))
    assert "Growth" in billing
    assert "Current plan" in billing
    with tenant_context(account.id):
        period = db.session.scalars(sa.select(BillingPeriod)).one()
    assert period.plan_code == "G400"

    # Another client cannot move to it.
    other = subscribed_account(kind="brokerage", seats=1, plan=starter)
    auth.logout()
    auth.login(member(other, Role.OWNER))
    other_billing = text(ops.get(f"/a/{other.slug}/billing/"))
    assert "Growth" not in other_billing
    refused = ops.post(f"/a/{other.slug}/billing/change/G400")
    assert refused.status_code == 422
    assert "no longer offered" in text(refused)


def test_a_retired_plan_can_be_offered_again(
    ops: FlaskClient, catalogue: tuple[Plan, Plan]
) -> None:
    _starter, growth = catalogue
    ops.post(f"/ops/plans/{growth.id}/retire")
    assert ops.post(f"/ops/plans/{growth.id}/offer").status_code == 303
    db.session.expire_all()
    assert not growth.retired
    assert "Growth" in text(ops.get("/pricing"))
