"""Every tenant URL, tried from the wrong side of the tenant wall.

The sweep walks `app.url_map`, so a new route under `/a/<account>` is attacked the day it is
added. Logged in as the owner of `account`, it requests each route

  (a) with `account`'s slug and the ids / references of `other_account`'s objects, and
  (b) with `other_account`'s slug,

and expects 404 every time. A URL variable the sweep cannot fill with one of
`other_account`'s objects stops the test (add it to FILLERS), so no route escapes silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import AnyConverter, BaseConverter, IntegerConverter, Rule

from app.extensions import db
from app.models import (
    Account,
    AuditEvent,
    BillingPeriod,
    CallAttempt,
    Disposition,
    Invoice,
    Lead,
    Membership,
    PeriodStatus,
    Person,
    Plan,
    Report,
    ReportFormat,
    Role,
    Seat,
    Subscription,
    User,
)
from app.tenancy import tenant_context, unscoped
from app.web import tenant_blueprint
from tests import factories
from tests.conftest import TEST_CONFIG, Auth, app_on_the_test_connection

TENANT_PREFIX = "/a/<account>"
SKIPPED_METHODS = {"HEAD", "OPTIONS"}


# --- the victim's objects -------------------------------------------------------------------


class Victim:
    """The account under attack, and one of each of its objects, made on first use."""

    def __init__(self, account: Account) -> None:
        self.account = account

    def _one(self, statement: sa.Select[Any]) -> Any:
        with tenant_context(self.account.id):
            row = db.session.scalars(statement.limit(1)).first()
        assert row is not None, f"{self.account.slug} has no row for {statement}"
        return row

    def _add(self, row: Any) -> Any:
        with tenant_context(self.account.id):
            db.session.add(row)
            db.session.flush()
        return row

    @cached_property
    def seat(self) -> Seat:
        seat: Seat = self._one(sa.select(Seat).order_by(Seat.id))
        return seat

    @cached_property
    def person(self) -> Person:
        person: Person = self._one(
            sa.select(Person).where(Person.id == self.seat.primary_person_id)
        )
        return person

    @cached_property
    def subscription(self) -> Subscription:
        subscription: Subscription = self._one(sa.select(Subscription))
        return subscription

    @cached_property
    def period(self) -> BillingPeriod:
        period: BillingPeriod = self._one(
            sa.select(BillingPeriod).where(BillingPeriod.status == PeriodStatus.OPEN)
        )
        return period

    @cached_property
    def invoice(self) -> Invoice:
        invoice: Invoice = self._one(sa.select(Invoice).order_by(Invoice.id))
        return invoice

    @cached_property
    def audit_event(self) -> AuditEvent:
        event: AuditEvent = self._one(sa.select(AuditEvent).order_by(AuditEvent.id))
        return event

    @cached_property
    def report(self) -> Report:
        today = datetime.now(UTC).date()
        report: Report = self._add(
            Report(seat_id=self.seat.id, format=ReportFormat.CSV, date_from=today, date_to=today)
        )
        return report

    @cached_property
    def lead(self) -> Lead:
        lead: Lead = self._add(
            Lead(seat_id=self.seat.id, external_id="sweep-1", received_at=datetime.now(UTC))
        )
        return lead

    @cached_property
    def call_attempt(self) -> CallAttempt:
        attempt: CallAttempt = self._add(
            CallAttempt(
                event_id=f"sweep-{self.account.id}",
                seat_id=self.seat.id,
                lead_id=self.lead.id,
                attempted_at=datetime.now(UTC),
                disposition=Disposition.CALLBACK_LATER,
                period_id=self.period.id,
            )
        )
        return attempt

    @cached_property
    def membership(self) -> Membership:
        user = factories.UserFactory()
        membership: Membership = self._add(Membership(user_id=user.id, role=Role.VIEWER))
        return membership

    @cached_property
    def member(self) -> User:
        member: User = db.session.get_one(User, self.membership.user_id)
        return member


# --- how to fill each URL variable ----------------------------------------------------------


@dataclass(frozen=True)
class Fill:
    """One of the victim's objects, and how a URL names it.

    An `<int:...>` variable gets the object's id; any other converter gets `reference(obj)`,
    or the id as text. `per_account` marks a reference that only means something inside one
    account (a month key like "M1"): every account has one, so way (a) cannot use it.
    """

    load: Callable[[Victim], Any]
    reference: Callable[[Any], str] | None = None
    per_account: bool = False

    def value(self, victim: Victim, converter: BaseConverter) -> tuple[object, bool]:
        obj = self.load(victim)
        if isinstance(converter, IntegerConverter):
            return obj.id, False
        if self.reference is None:
            return str(obj.id), False
        return self.reference(obj), self.per_account


def _seat_reference(seat: Seat) -> str:
    return seat.reference


def _invoice_number(invoice: Invoice) -> str:
    return invoice.number


def _period_key(period: BillingPeriod) -> str:
    return period.key


def _plan_code(plan: Plan) -> str:
    return plan.code


_seat = Fill(lambda v: v.seat, _seat_reference)
_period = Fill(lambda v: v.period, _period_key, per_account=True)
_invoice = Fill(lambda v: v.invoice, _invoice_number)

# URL variable name -> which of the victim's objects it names. Add a line for a new name.
FILLERS: dict[str, Fill] = {
    "seat_id": _seat,
    "seat": _seat,
    "reference": _seat,
    "person_id": Fill(lambda v: v.person),
    "person": Fill(lambda v: v.person),
    "period_id": _period,
    "period": _period,
    "period_key": _period,
    "month": _period,
    "invoice_id": _invoice,
    "invoice": _invoice,
    "number": _invoice,
    "report_id": Fill(lambda v: v.report),
    "report": Fill(lambda v: v.report),
    "lead_id": Fill(lambda v: v.lead),
    "lead": Fill(lambda v: v.lead),
    "attempt_id": Fill(lambda v: v.call_attempt),
    "call_id": Fill(lambda v: v.call_attempt),
    "member_id": Fill(lambda v: v.membership),
    "membership_id": Fill(lambda v: v.membership),
    "user_id": Fill(lambda v: v.member),
    "subscription_id": Fill(lambda v: v.subscription),
    # Plans are the shared catalogue: a code means the same in every account.
    "plan_code": Fill(lambda v: v.subscription.plan, _plan_code, per_account=True),
    "event_id": Fill(lambda v: v.audit_event),
    "audit_id": Fill(lambda v: v.audit_event),
    # A generic name says nothing about the object: the victim's first seat stands in.
    "id": _seat,
    "object_id": _seat,
}

# Variables that name no object (a file format, a tab): the same value on either side.
LITERALS: dict[str, str] = {
    "fmt": "pdf",
    "format": "pdf",
    "ext": "pdf",
}


class UnfillableRoute(AssertionError):
    """A tenant route has a URL variable the sweep does not know how to fill."""


@dataclass
class Finding:
    way: str
    endpoint: str
    method: str
    url: str
    status: int

    def __str__(self) -> str:
        return f"({self.way}) {self.method} {self.url} [{self.endpoint}] answered {self.status}"


@dataclass
class SweepReport:
    findings: list[Finding] = field(default_factory=list)
    requests: int = 0
    # (way, endpoint) of every rule requested.
    attacked: set[tuple[str, str]] = field(default_factory=set)


def tenant_rules(app: Flask) -> list[Rule]:
    return sorted(
        (rule for rule in app.url_map.iter_rules() if rule.rule.startswith(TENANT_PREFIX)),
        key=lambda rule: rule.rule,
    )


def methods_of(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - SKIPPED_METHODS)


def unfillable(rules: list[Rule]) -> list[str]:
    problems = []
    for rule in rules:
        for name, converter in rule._converters.items():
            known = name in FILLERS or name in LITERALS or isinstance(converter, AnyConverter)
            if name != "account" and not known:
                problems.append(f"{rule.rule} [{rule.endpoint}]: <{name}>")
    return problems


def fill(rule: Rule, victim: Victim) -> tuple[dict[str, object], bool, bool]:
    """The victim's values for every variable but `account`; whether any names a victim's
    object, and whether any is only meaningful inside one account."""
    values: dict[str, object] = {}
    names_object = per_account = False
    for name, converter in rule._converters.items():
        if name == "account":
            continue
        if name in FILLERS:
            values[name], scoped = FILLERS[name].value(victim, converter)
            names_object, per_account = True, per_account or scoped
        elif name in LITERALS:
            values[name] = LITERALS[name]
        elif isinstance(converter, AnyConverter):
            values[name] = next(iter(converter.items))  # type: ignore[attr-defined]
        else:
            raise UnfillableRoute(f"{rule.rule}: <{name}>")
    return values, names_object, per_account


def build(app: Flask, rule: Rule, account_slug: str, values: dict[str, object]) -> str:
    adapter = app.url_map.bind("localhost")
    return adapter.build(rule.endpoint, {"account": account_slug, **values}, append_unknown=False)


def sweep(app: Flask, client: FlaskClient, attacker: Account, victim: Victim) -> SweepReport:
    """Request every tenant route both ways with `client` (logged in as a member of
    `attacker` only); every answer that is not 404 is a finding.

    Raises UnfillableRoute, before any request, naming every variable it cannot fill.
    """
    rules = tenant_rules(app)
    problems = unfillable(rules)
    if problems:
        raise UnfillableRoute(
            "the cross-tenant sweep cannot fill these URL variables; add each name to "
            "FILLERS (an object of the victim account) or LITERALS in "
            "tests/integration/test_cross_tenant_sweep.py:\n  " + "\n  ".join(problems)
        )
    report = SweepReport()
    for rule in rules:
        values, names_object, per_account = fill(rule, victim)
        ways = [("b", build(app, rule, victim.account.slug, values))]
        # Way (a) needs a variable that names one of the victim's objects.
        if names_object and not per_account:
            ways.insert(0, ("a", build(app, rule, attacker.slug, values)))
        for way, url in ways:
            report.attacked.add((way, rule.endpoint))
            for method in methods_of(rule):
                response = client.open(url, method=method, data={})
                report.requests += 1
                if response.status_code != 404:
                    report.findings.append(
                        Finding(way, rule.endpoint, method, url, response.status_code)
                    )
    return report


# --- the sweep on the real app --------------------------------------------------------------


def test_no_tenant_route_reaches_another_account(
    app: Flask,
    client: FlaskClient,
    auth: Auth,
    owner: User,
    account: Account,
    other_account: Account,
) -> None:
    auth.login(owner)
    # The owner really is in: the 404s below are the wall, not a broken login.
    assert client.get(f"/a/{account.slug}/").status_code == 200
    report = sweep(app, client, account, Victim(other_account))
    assert {("b", rule.endpoint) for rule in tenant_rules(app)} <= report.attacked
    assert not report.findings, "cross-tenant access:\n" + "\n".join(map(str, report.findings))


def test_every_route_variable_can_be_filled(app: Flask) -> None:
    # Also a separate, fast failure that names exactly what to add to FILLERS.
    assert unfillable(tenant_rules(app)) == []


def test_every_fill_names_an_object_of_the_victim(other_account: Account) -> None:
    victim = Victim(other_account)
    with unscoped():
        for name, filler in FILLERS.items():
            obj = filler.load(victim)
            if isinstance(obj, User):
                accounts = db.session.scalars(
                    sa.select(Membership.account_id).where(Membership.user_id == obj.id)
                ).all()
                assert accounts == [other_account.id], f"FILLERS[{name!r}] is not the victim's"
            elif isinstance(obj, Plan):  # the shared catalogue: the victim's own plan
                assert obj.id == victim.subscription.plan_id, f"FILLERS[{name!r}] is not theirs"
            else:
                assert obj.account_id == other_account.id, f"FILLERS[{name!r}] is not the victim's"


# --- the operator console -------------------------------------------------------------------


def ops_urls(app: Flask, victim: Victim) -> Iterator[tuple[str, str]]:
    adapter = app.url_map.bind("localhost")
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/ops"):
            continue
        values: dict[str, object] = {}
        for name, converter in rule._converters.items():
            if name in FILLERS:
                values[name] = FILLERS[name].value(victim, converter)[0]
            elif isinstance(converter, IntegerConverter):
                values[name] = victim.account.id  # the console refuses before it reads anything
            else:
                values[name] = LITERALS.get(name, victim.account.slug)
        url = adapter.build(rule.endpoint, values, append_unknown=False)
        for method in methods_of(rule):
            yield method, url


@pytest.mark.parametrize("role", ["owner", "admin", "viewer", "seat_member"])
def test_the_operator_console_is_404_to_every_client_role(
    request: pytest.FixtureRequest, app: Flask, client: FlaskClient, auth: Auth, role: str
) -> None:
    user: User = request.getfixturevalue(role)
    other_account: Account = request.getfixturevalue("other_account")
    auth.login(user)
    urls = list(ops_urls(app, Victim(other_account)))
    assert urls
    answered = {(method, url): client.open(url, method=method).status_code for method, url in urls}
    assert set(answered.values()) == {404}, answered


def test_the_operator_console_opens_for_an_operator(
    client: FlaskClient, auth: Auth, operator: User
) -> None:
    auth.login(operator)
    assert client.get("/ops/").status_code == 200


# --- logged out -----------------------------------------------------------------------------


def logged_out_requests(app: Flask, account: Account) -> Iterator[tuple[str, str]]:
    victim = Victim(account)
    for rule in tenant_rules(app):
        values, _names_object, _per_account = fill(rule, victim)
        url = build(app, rule, account.slug, values)
        for method in methods_of(rule):
            yield method, url
    for method, url in ops_urls(app, victim):
        yield method, url


def test_logged_out_tenant_and_ops_requests_go_to_the_login_page(
    app: Flask, client: FlaskClient, account: Account
) -> None:
    for method, url in logged_out_requests(app, account):
        response = client.open(url, method=method)
        assert response.status_code == 302, (method, url, response.status_code)
        assert urlsplit(response.headers["Location"]).path == "/login", (method, url)


def test_logged_out_htmx_requests_get_hx_redirect_to_the_login_page(
    app: Flask, client: FlaskClient, account: Account
) -> None:
    for method, url in logged_out_requests(app, account):
        response = client.open(url, method=method, headers={"HX-Request": "true"})
        assert response.status_code == 401, (method, url, response.status_code)
        assert urlsplit(response.headers["HX-Redirect"]).path == "/login", (method, url)
        assert "Location" not in response.headers


def test_a_logged_out_get_comes_back_to_its_page_after_login(
    client: FlaskClient, account: Account
) -> None:
    response = client.get(f"/a/{account.slug}/seats/", headers={"HX-Request": "true"})
    redirect = urlsplit(response.headers["HX-Redirect"])
    [next_page] = parse_qs(redirect.query)["next"]
    assert urlsplit(next_page).path == f"/a/{account.slug}/seats/"


# --- the sweep catches a leak ---------------------------------------------------------------


def test_the_sweep_flags_a_route_that_loads_another_tenants_seat(
    owner: User, account: Account, other_account: Account
) -> None:
    leaky_app = app_on_the_test_connection(TEST_CONFIG)
    leaky = tenant_blueprint("leaky", __name__, "/leaky")

    @leaky.get("/<int:seat_id>")
    def show(seat_id: int) -> str:
        with unscoped():  # the bug: the tenant filter switched off for a by-id load
            seat = db.session.get(Seat, seat_id)
        return seat.reference if seat else "nothing"

    leaky_app.register_blueprint(leaky)
    client = leaky_app.test_client()
    Auth(client).login(owner)

    report = sweep(leaky_app, client, account, Victim(other_account))
    assert ("a", "leaky.show") in report.attacked
    victim_seat = factories.first_seat(other_account)
    assert [(f.way, f.endpoint, f.status) for f in report.findings] == [("a", "leaky.show", 200)]
    assert report.findings[0].url == f"/a/{account.slug}/leaky/{victim_seat.id}"


def test_the_sweep_refuses_a_route_it_cannot_fill(account: Account, other_account: Account) -> None:
    new_app = app_on_the_test_connection(TEST_CONFIG)
    gizmos = tenant_blueprint("gizmos", __name__, "/gizmos")

    @gizmos.get("/<int:gizmo_id>")
    def show(gizmo_id: int) -> str:
        return str(gizmo_id)

    new_app.register_blueprint(gizmos)
    client = new_app.test_client()
    with pytest.raises(UnfillableRoute, match=r"/gizmos/<int:gizmo_id>.*<gizmo_id>"):
        sweep(new_app, client, account, Victim(other_account))
