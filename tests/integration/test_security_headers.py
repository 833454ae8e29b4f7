"""Security headers and cookies: the strict Content-Security-Policy and its companions on every
kind of response, HSTS only over HTTPS, session cookies that scripts cannot read and other
sites cannot send, and pages with nothing the policy would block (no inline script, style or
event handler, in the templates or in what they render)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.api.auth import create_api_key
from app.config import ConfigError, load_settings
from app.extensions import db
from app.models import Account, User
from tests import factories
from tests.conftest import TEST_CONFIG, Auth, app_on_the_test_connection
from tests.integration.test_csrf_sweep import fill_own, own_objects, routes, user_for

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# Rendered for WeasyPrint (PDF) and for mail clients, never served to a browser under the CSP.
NOT_SERVED = ("pdf", "email")
STATIC_URL = r"\{\{\s*url_for\(\s*['\"]static['\"][^}]*\}\}"


def directives(response: TestResponse) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    parsed = {}
    for directive in policy.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


def assert_secured(response: TestResponse) -> None:
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]
    every_source = " ".join(value for values in policy.values() for value in values)
    for loophole in ("unsafe-inline", "unsafe-eval", "unsafe-hashes", "*", "http:", "https:"):
        assert loophole not in every_source.split(), loophole
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_every_kind_of_response_carries_the_headers(
    client: FlaskClient, auth: Auth, owner: User, account: Account
) -> None:
    key = create_api_key("headers").secret
    db.session.commit()  # the refused API request rolls back: keep the fixtures' rows
    answers = {
        "page, logged out": client.get("/login"),
        "redirect": client.get(f"/a/{account.slug}/"),
        "static file": client.get("/static/css/app.css"),
        "not found page": client.get("/no-such-page"),
        "API document": client.get("/api/v1/openapi.json"),
        "API refusal": client.post("/api/v1/leads", json={"leads": []}),
        "API answer": client.post(
            "/api/v1/leads", json={"leads": []}, headers={"Authorization": f"Bearer {key}"}
        ),
    }
    auth.login(owner)
    answers["page, logged in"] = client.get(f"/a/{account.slug}/")
    answers["htmx partial"] = client.get(
        f"/a/{account.slug}/seats/?q=x", headers={"HX-Request": "true"}
    )
    answers["CSV download"] = client.get(
        f"/a/{account.slug}/seats/{factories.first_seat(account).id}/calls.csv"
    )
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "page, logged out": 200,
        "redirect": 302,
        "static file": 200,
        "not found page": 404,
        "API document": 200,
        "API refusal": 401,
        "API answer": 200,
        "page, logged in": 200,
        "htmx partial": 200,
        "CSV download": 200,
    }
    for name, answer in answers.items():
        answer.close()
        try:
            assert_secured(answer)
        except (AssertionError, KeyError) as exc:
            raise AssertionError(f"{name}: {exc!r}") from exc


def test_a_server_error_page_carries_the_headers(account: Account) -> None:
    failing = app_on_the_test_connection({**TEST_CONFIG, "PROPAGATE_EXCEPTIONS": False})

    @failing.get("/explode")
    def explode() -> str:
        raise RuntimeError("boom")

    response = failing.test_client().get("/explode")
    assert response.status_code == 500
    assert_secured(response)


def test_hsts_only_over_https(client: FlaskClient) -> None:
    over_http = client.get("/login")
    over_https = client.get("/login", base_url="https://portal.example")
    assert "Strict-Transport-Security" not in over_http.headers
    hsts = over_https.headers["Strict-Transport-Security"]
    max_age = int(re.search(r"max-age=(\d+)", hsts).group(1))  # type: ignore[union-attr]
    assert max_age >= 365 * 24 * 3600
    assert "includeSubDomains" in hsts


# --- cookies ---------------------------------------------------------------------------------


def cookie_flags(response: TestResponse, name: str) -> set[str]:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return {part.strip().lower() for part in header.split(";")[1:]}
    raise AssertionError(f"no {name} cookie set")


@pytest.fixture
def production_app(monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("SEATWISE_ENV", "production")
    monkeypatch.setenv("SEATWISE_BASE_URL", "https://portal.example")
    return app_on_the_test_connection(TEST_CONFIG)


def test_production_cookies_are_secure_httponly_and_samesite_lax(
    production_app: Flask, owner: User
) -> None:
    assert production_app.config["SEATWISE_ENV"] == "production"
    client = production_app.test_client()
    response = client.post(
        "/login",
        data={"email": owner.email, "password": factories.PASSWORD, "remember": "y"},
        base_url="https://portal.example",
    )
    assert response.status_code == 302
    for name in ("session", "remember_token"):
        assert {"secure", "httponly", "samesite=lax"} <= cookie_flags(response, name), name
    assert "Strict-Transport-Security" in response.headers


PRODUCTION = {
    "SEATWISE_ENV": "production",
    "SECRET_KEY": "x" * 40,
    "REDIS_URL": "redis://cache.example:6379/0",
}


@pytest.mark.parametrize(
    ("base_url", "allowed"),
    [
        ("https://portal.example", True),
        ("http://localhost:5000", True),
        ("http://127.0.0.1:8000", True),
        ("http://portal.example", False),
        ("http://10.0.0.5:8000", False),
    ],
)
def test_production_serves_cookies_over_https_only(base_url: str, allowed: bool) -> None:
    environ = {**PRODUCTION, "SEATWISE_BASE_URL": base_url}
    if allowed:
        load_settings(environ)
    else:
        with pytest.raises(ConfigError, match="SEATWISE_BASE_URL must start with https://"):
            load_settings(environ)


def test_cookies_outside_https_are_httponly_and_samesite_lax(
    client: FlaskClient, owner: User
) -> None:
    response = client.post(
        "/login",
        data={"email": owner.email, "password": factories.PASSWORD, "remember": "y"},
    )
    for name in ("session", "remember_token"):
        flags = cookie_flags(response, name)
        assert {"httponly", "samesite=lax"} <= flags, name
        assert "secure" not in flags  # over http:// a Secure cookie would never come back


# --- nothing the policy would block ----------------------------------------------------------


class PolicyBreaches(HTMLParser):
    """Collects what a strict CSP blocks or what would need eval: inline scripts, style
    elements and attributes, on* handlers, javascript: URLs, hx-on and js: values."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower(): value or "" for name, value in attrs}
        if tag == "script":
            if not names.get("src"):
                self.found.append("inline <script>")
            elif not names["src"].startswith("/static/"):
                self.found.append(f"script from {names['src']}")
        if tag == "style":
            self.found.append("<style> element")
        for name, value in names.items():
            if name == "style":
                self.found.append(f'style="{value}" on <{tag}>')
            elif name.startswith("on"):
                self.found.append(f"{name}= handler on <{tag}>")
            elif name.startswith(("hx-on", "data-hx-on")):
                self.found.append(f"{name} on <{tag}> (htmx eval)")
            elif value.strip().lower().startswith(("javascript:", "js:")):
                self.found.append(f'{name}="{value}" on <{tag}>')

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def breaches(html: str) -> list[str]:
    parser = PolicyBreaches()
    parser.feed(html)
    parser.close()
    return parser.found


def served_templates() -> list[Path]:
    return sorted(
        path
        for path in TEMPLATES.rglob("*.html")
        if path.relative_to(TEMPLATES).parts[0] not in NOT_SERVED
    )


def test_no_served_template_has_inline_script_style_or_handlers() -> None:
    templates = served_templates()
    assert len(templates) > 30
    found = {}
    for path in templates:
        # Jinja tags and comments would confuse the HTML parser: blank them out first.
        source = re.sub(STATIC_URL, "/static/file", path.read_text())
        source = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", "x", source, flags=re.S)
        if problems := breaches(source):
            found[str(path.relative_to(TEMPLATES))] = problems
    assert found == {}


def test_no_template_puts_an_expression_in_an_unquoted_attribute() -> None:
    """Autoescaping does not quote: `<a title={{ name }}>` lets a space in `name` add an
    attribute. PDF and mail templates too (mail clients render their markup)."""
    unquoted = re.compile(r"\s[\w:.@-]+=\{[{%]")  # name={{ ... }} or name={% ... %}
    found = [
        f"{path.relative_to(TEMPLATES)}:{number}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if unquoted.search(line)
    ]
    assert found == []


def test_the_scan_finds_what_the_policy_blocks() -> None:
    html = (
        '<script>alert(1)</script><script src="https://cdn.example/x.js"></script>'
        '<style>p{}</style><p style="color:red" onclick="go()">'
        '<svg><rect style="fill:red"/></svg><a href="javascript:go()">'
        '<button hx-on:click="go()" hx-vals="js:{a: 1}">'
    )
    assert breaches(html) == [
        "inline <script>",
        "script from https://cdn.example/x.js",
        "<style> element",
        'style="color:red" on <p>',
        "onclick= handler on <p>",
        'style="fill:red" on <rect>',
        'href="javascript:go()" on <a>',
        "hx-on:click on <button> (htmx eval)",
        'hx-vals="js:{a: 1}" on <button>',
    ]


def test_no_rendered_page_has_inline_script_style_or_handlers(
    app: Flask, account: Account, owner: User, operator: User
) -> None:
    objects = own_objects(account)
    clients: dict[int, FlaskClient] = {}
    pages = 0
    found = {}
    for rule, method in routes(app, {"GET"}):
        user = user_for(rule, owner, operator)
        if user.id not in clients:
            clients[user.id] = app.test_client()
            Auth(clients[user.id]).login(user)
        response = clients[user.id].open(fill_own(rule, objects, user), method=method)
        response.close()
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        pages += 1
        if problems := breaches(response.get_data(as_text=True)):
            found[rule.rule] = problems
    assert pages >= 15
    assert found == {}
