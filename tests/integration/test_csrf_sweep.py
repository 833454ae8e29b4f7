"""CSRF, route by route: every state-changing route refuses a request without a valid token,
and no GET changes anything.

Both sweeps walk `app.url_map`, so a route added later is swept the day it is added. URL
variables are filled with the logged-in user's own objects (the cross-tenant sweep's FILLERS,
pointed at the user's account), so each refusal is the token check's and not a 404; a variable
nobody knows how to fill stops the test and names itself. The dialer API under /api/v1 is the
one exemption, by design: it reads no cookie, every request carries its bearer key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from werkzeug.routing import AnyConverter, IntegerConverter, Rule
from werkzeug.test import TestResponse

from app.api import API_PREFIX
from app.api.auth import create_api_key
from app.auth.passwords import TokenPurpose, make_token
from app.extensions import csrf, db
from app.models import Account, User
from app.queue import QUEUE_NAMES, redis_connection
from tests import factories
from tests.conftest import TEST_CONFIG, app_on_the_test_connection
from tests.integration.test_cross_tenant_sweep import FILLERS, LITERALS, Victim

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Columns a GET may fill: caches of something derived, not state a user changed. Each with why.
DERIVED_CACHES = {
    ("invoices", "pdf_path"): "an issued invoice's PDF is rendered on its first download",
}
# Variables outside any account: a link's token (by endpoint), a static file.
TOKEN_PURPOSES: dict[str, TokenPurpose] = {
    "auth.accept_invitation": "invite",
    "auth.reset_password": "reset",
}
OWN_LITERALS = {"filename": "css/app.css"}


class UnfillableRoute(AssertionError):
    """A route has a URL variable this sweep does not know how to fill."""


def csrf_app() -> Flask:
    """The app with CSRF protection on (the test config switches it off for other tests)."""
    return app_on_the_test_connection({**TEST_CONFIG, "WTF_CSRF_ENABLED": True})


@pytest.fixture
def protected_app(app: Flask) -> Flask:
    return csrf_app()


def page_token(client: FlaskClient, url: str = "/login") -> str:
    """The CSRF token a page carries in its `<meta name="csrf-token">`."""
    html = client.get(url).get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match is not None, f"{url} carries no CSRF token"
    return match.group(1)


def log_in(client: FlaskClient, user: User) -> None:
    """Log in through the real form, token and all."""
    response = client.post(
        "/login",
        data={
            "email": user.email,
            "password": factories.PASSWORD,
            "csrf_token": page_token(client),
        },
    )
    assert response.status_code == 302, "login failed"


def is_exempt(rule: Rule) -> bool:
    return rule.rule.startswith(API_PREFIX + "/")


def user_for(rule: Rule, owner: User, operator: User) -> User:
    """Who may use the route: the operator in the console, the account's owner elsewhere."""
    return operator if rule.rule.startswith("/ops") else owner


def own_objects(account: Account) -> Victim:
    """One of each of `account`'s objects the URLs name, made now and committed (a request
    that rolls back must not take them with it)."""
    objects = Victim(account)
    for filler in FILLERS.values():
        filler.load(objects)
    db.session.commit()
    return objects


def fill_own(rule: Rule, objects: Victim, user: User) -> str:
    """The route's URL with the account of `objects` and its objects; raises UnfillableRoute."""
    account = objects.account
    values: dict[str, object] = {}
    for name, converter in rule._converters.items():
        if name == "account":
            values[name] = account.slug
        elif name == "token" and rule.endpoint in TOKEN_PURPOSES:
            values[name] = make_token(user, TOKEN_PURPOSES[rule.endpoint])
        elif name in OWN_LITERALS:
            values[name] = OWN_LITERALS[name]
        elif name in FILLERS:
            values[name] = FILLERS[name].value(objects, converter)[0]
        elif name in LITERALS:
            values[name] = LITERALS[name]
        elif isinstance(converter, AnyConverter):
            values[name] = next(iter(converter.items))  # type: ignore[attr-defined]
        elif rule.rule.startswith("/ops"):
            # The console's own ids (accounts, keys, jobs): the token check comes first anyway,
            # and the accepted request of the control may well be a 404.
            values[name] = account.id if isinstance(converter, IntegerConverter) else "sweep"
        else:
            raise UnfillableRoute(
                f"{rule.rule} [{rule.endpoint}]: <{name}>: add it to FILLERS or LITERALS in "
                "test_cross_tenant_sweep.py, or to OWN_LITERALS here"
            )
    return app_url(rule, values)


def app_url(rule: Rule, values: dict[str, object]) -> str:
    adapter = rule.map.bind("localhost")
    return adapter.build(rule.endpoint, values, append_unknown=False)


def routes(app: Flask, methods: set[str]) -> list[tuple[Rule, str]]:
    """(rule, method) for every route answering one of `methods`, the logout last (it ends
    the session the others need)."""
    found = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) & methods)
    ]
    return sorted(found, key=lambda pair: (pair[0].endpoint == "auth.logout", pair[0].rule))


# --- the state a request must leave alone ----------------------------------------------------


def database_state() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read on the session's connection (under the tenant filter's
    radar: this is the test looking, not the app)."""
    connection = db.session.connection()
    state = {}
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if (table.name, c.name) not in DERIVED_CACHES]
        rows = connection.execute(sa.select(*columns)).all()
        state[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return state


def queued_jobs() -> dict[str, int]:
    connection = redis_connection()
    return {name: Queue(name, connection=connection).count for name in QUEUE_NAMES}


def changes(before: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    after = database_state()
    return [name for name in before if before[name] != after[name]]


# An operator opening a tenant's pages is audited ("operator viewed", issue #9): an access log
# entry, the one write a GET of those pages may make.
VISIT_AUDITED = "ops.tenant"


def only_a_visit_recorded(before: dict[str, list[tuple[Any, ...]]]) -> bool:
    """True when the audit log gained "operator.viewed" entries and nothing else changed."""
    if changes(before) != ["audit_events"]:
        return False
    old, new = before["audit_events"], database_state()["audit_events"]
    if any(row not in new for row in old):
        return False
    action = [c.name for c in db.metadata.tables["audit_events"].columns].index("action")
    return {row[action] for row in new if row not in old} == {"operator.viewed"}


# --- POST, PUT, PATCH, DELETE without a token -------------------------------------------------


def forged_requests(
    client: FlaskClient, method: str, url: str, others_token: str
) -> Iterator[tuple[str, Callable[[], TestResponse]]]:
    """The ways a forged request comes: no token at all, a made-up one (in the form and in
    htmx's header), and a real token of another session."""
    yield "no token", lambda: client.open(url, method=method, data={"name": "x"})
    yield (
        "made-up token",
        lambda: client.open(url, method=method, data={"csrf_token": "forged.token.value"}),
    )
    yield (
        "made-up htmx header",
        lambda: client.open(
            url, method=method, headers={"HX-Request": "true", "X-CSRFToken": "forged"}
        ),
    )
    yield (
        "another session's token",
        lambda: client.open(url, method=method, data={"csrf_token": others_token}),
    )


def test_every_state_changing_route_refuses_a_request_without_a_valid_token(
    protected_app: Flask, account: Account, owner: User, operator: User, other_account: Account
) -> None:
    objects = own_objects(account)
    others_token = page_token(protected_app.test_client())
    clients: dict[int, FlaskClient] = {}
    swept = []
    for rule, method in routes(protected_app, STATE_CHANGING):
        if is_exempt(rule):
            continue
        user = user_for(rule, owner, operator)
        if user.id not in clients:
            clients[user.id] = protected_app.test_client()
            log_in(clients[user.id], user)
        client = clients[user.id]
        url = fill_own(rule, objects, user)
        for how, send in forged_requests(client, method, url, others_token):
            before, jobs = database_state(), queued_jobs()
            response = send()
            assert response.status_code == 400, (how, method, url, response.status_code)
            assert changes(before) == [], (how, method, url)
            assert queued_jobs() == jobs, (how, method, url)
        swept.append(rule.endpoint)
    assert {"auth.logout", "seats.new", "reports.create", "billing_portal.cancel"} <= set(swept)
    # The refusals were CSRF's: each route accepts the same request with the page's token.
    for rule, method in routes(protected_app, STATE_CHANGING):
        if is_exempt(rule):
            continue
        user = user_for(rule, owner, operator)
        client = clients[user.id]
        url = fill_own(rule, objects, user)
        token = page_token(client, "/pricing")
        response = client.open(url, method=method, data={}, headers={"X-CSRFToken": token})
        assert response.status_code != 400, (method, url)


def test_the_refusal_is_the_form_expired_page(
    protected_app: Flask, account: Account, owner: User
) -> None:
    client = protected_app.test_client()
    log_in(client, owner)
    response = client.post(f"/a/{account.slug}/billing/cancel")
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    # Still logged in, and the plan is not cancelled.
    assert "Cancel your plan" in client.get(f"/a/{account.slug}/billing/").get_data(as_text=True)


def test_only_the_bearer_token_api_is_exempt(protected_app: Flask, app: Flask) -> None:
    exempt = [rule.rule for rule, _ in routes(protected_app, STATE_CHANGING) if is_exempt(rule)]
    assert sorted(exempt) == [f"{API_PREFIX}/call-attempts", f"{API_PREFIX}/leads"]
    # Exempt as a whole blueprint (Flask-WTF's own record), and nothing else is.
    assert {blueprint.name for blueprint in csrf._exempt_blueprints} == {"api"}
    assert csrf._exempt_views == set()
    # With CSRF on, the API still takes a request with its key and no token...
    key = create_api_key("csrf-sweep").secret
    client = protected_app.test_client()
    response = client.post(
        f"{API_PREFIX}/leads", json={"leads": []}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.get_json()
    # ...and a cookie is no way in: without the key it is 401, logged in or not.
    response = client.post(f"{API_PREFIX}/leads", json={"leads": []})
    assert response.status_code == 401


def test_a_new_route_is_swept_without_being_listed(account: Account, owner: User) -> None:
    new_app = csrf_app()

    @new_app.post("/a/<account>/gadgets/<int:seat_id>/polish")
    def polish(account: str, seat_id: int) -> str:
        return "polished"

    @new_app.post("/gizmos/<gizmo>")
    def gizmo(gizmo: str) -> str:
        return gizmo

    rules = {rule.endpoint: rule for rule, _ in routes(new_app, STATE_CHANGING)}
    assert {"polish", "gizmo"} <= set(rules)
    objects = own_objects(account)
    client = new_app.test_client()
    log_in(client, owner)
    assert client.post(fill_own(rules["polish"], objects, owner)).status_code == 400
    with pytest.raises(UnfillableRoute, match="<gizmo>"):
        fill_own(rules["gizmo"], objects, owner)


# --- GET changes nothing ---------------------------------------------------------------------


def test_no_get_changes_anything(
    protected_app: Flask, account: Account, owner: User, operator: User
) -> None:
    objects = own_objects(account)
    clients: dict[int, FlaskClient] = {}
    answered: dict[str, int] = {}
    for rule, method in routes(protected_app, {"GET"}):
        user = user_for(rule, owner, operator)
        if user.id not in clients:
            clients[user.id] = protected_app.test_client()
            log_in(clients[user.id], user)
        url = fill_own(rule, objects, user)
        before, jobs = database_state(), queued_jobs()
        response = clients[user.id].open(url, method=method)
        response.close()  # a download holds its file open until then
        answered[url] = response.status_code
        assert response.status_code < 500, (url, response.status_code)
        visit = rule.endpoint.startswith(VISIT_AUDITED) and only_a_visit_recorded(before)
        assert visit or changes(before) == [], f"GET {url} changed the database"
        assert queued_jobs() == jobs, f"GET {url} queued a job"
    # The sweep reached real pages, not only refusals.
    assert answered[f"/a/{account.slug}/"] == 200
    assert answered["/ops/"] == 200
    assert sum(status == 200 for status in answered.values()) >= len(answered) * 2 // 3, answered
