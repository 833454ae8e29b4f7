"""Logging in and out, where a user lands, invitations, password resets, rate limits and
the session cookie — checked the way a user (or someone trying to get in) would."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask, current_app
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner
from redis import Redis
from werkzeug.test import TestResponse

from app.auth.operations import send_invitation
from app.extensions import db, limiter
from app.models import Account, Membership, OutboxEmail, Role, User
from app.tenancy import tenant_context
from tests import factories
from tests.conftest import TEST_CONFIG, Auth, app_on_the_test_connection

NEW_PASSWORD = "a much longer new password"


class FormPage(HTMLParser):
    """The inputs of a page (by name) and the field errors shown under them (by id)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.inputs: dict[str, dict[str, str | None]] = {}
        self.errors: dict[str, str] = {}
        self._error_id: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "input" and attributes.get("name"):
            self.inputs[str(attributes["name"])] = attributes
        if tag == "p" and "field-error" in (attributes.get("class") or "").split():
            self._error_id = attributes.get("id") or ""
            self.errors[self._error_id] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._error_id = None

    def handle_data(self, data: str) -> None:
        if self._error_id is not None:
            self.errors[self._error_id] += data


def page(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def login(client: FlaskClient, email: str, password: str = factories.PASSWORD, **form: str):
    return client.post("/login", data={"email": email, "password": password, **form})


def join(user: User, account: Account, role: Role = Role.VIEWER) -> None:
    with tenant_context(account.id):
        db.session.add(Membership(account_id=account.id, user_id=user.id, role=role))
        db.session.flush()


def emails_to(address: str) -> list[OutboxEmail]:
    return list(
        db.session.scalars(
            sa.select(OutboxEmail).where(OutboxEmail.to_address == address).order_by(OutboxEmail.id)
        )
    )


def link_path(email: OutboxEmail, route: str) -> str:
    """The path of the one link to `route` in the email's text, as the recipient clicks it."""
    links = re.findall(r"https?://\S+", email.body_text)
    paths = [urlsplit(link).path for link in links if f"/{route}/" in link]
    assert len(paths) == 1, f"expected one /{route}/ link in:\n{email.body_text}"
    return paths[0]


# --- logging in and out ---------------------------------------------------------------------


def test_owner_logs_in_and_lands_on_their_account(
    client: FlaskClient, auth: Auth, owner: User, account: Account
) -> None:
    response = client.post(
        "/login", data={"email": owner.email, "password": "correct horse battery"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    response = client.get("/", follow_redirects=True)
    assert response.status_code == 200
    assert account.name in response.get_data(as_text=True)


def test_email_is_matched_whatever_its_case(client: FlaskClient, owner: User) -> None:
    assert login(client, owner.email.upper()).status_code == 302


def test_wrong_password_re_renders_the_form_with_the_email_kept(
    client: FlaskClient, owner: User
) -> None:
    response = client.post("/login", data={"email": owner.email, "password": "nope"})
    html = page(response)
    assert response.status_code == 200
    assert "do not match" in html
    assert owner.email in html


def test_wrong_password_error_is_shown_at_the_password_field(
    client: FlaskClient, owner: User
) -> None:
    form = FormPage(page(login(client, owner.email, "not my password")))
    assert form.inputs["email"]["value"] == owner.email
    assert not form.inputs["password"].get("value"), "a password is never echoed back"
    assert "do not match" in form.errors["password-error-1"]
    assert "password-error-1" in (form.inputs["password"].get("aria-describedby") or "")
    assert form.inputs["password"].get("aria-invalid") == "true"
    assert not [error_id for error_id in form.errors if error_id.startswith("email-")]


def test_unknown_email_gets_the_same_answer_as_a_wrong_password(
    client: FlaskClient, owner: User
) -> None:
    unknown = FormPage(page(login(client, "nobody@example.example", "whatever")))
    wrong = FormPage(page(login(client, owner.email, "whatever")))
    assert unknown.errors == wrong.errors


def test_a_deactivated_user_cannot_log_in(client: FlaskClient, owner: User) -> None:
    owner.is_active_user = False
    db.session.flush()
    response = login(client, owner.email)
    assert response.status_code == 200
    assert "do not match" in page(response)


def test_a_deactivated_user_is_signed_out_of_an_open_session(
    client: FlaskClient, app: Flask, auth: Auth, owner: User, account: Account
) -> None:
    auth.login(owner)
    assert client.get(f"/a/{account.slug}/").status_code == 200
    owner.is_active_user = False
    db.session.commit()  # as the operator's "deactivate" request would
    # Requests in a test share the test's app context, and with it Flask-Login's cached
    # user in `g`; a real request starts afresh, as this one does.
    with app.app_context():
        response = client.get(f"/a/{account.slug}/")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


def test_logout_ends_the_session(
    client: FlaskClient, auth: Auth, owner: User, account: Account
) -> None:
    auth.login(owner)
    assert client.get(f"/a/{account.slug}/").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    response = client.get(f"/a/{account.slug}/")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert client.get("/").status_code == 302


def test_login_returns_to_the_page_that_asked_for_it(
    client: FlaskClient, owner: User, account: Account
) -> None:
    wanted = f"/a/{account.slug}/seats/"
    response = client.get(wanted)
    assert response.status_code == 302
    login_page = client.get(response.headers["Location"])
    next_value = FormPage(page(login_page)).inputs["next"]["value"]
    assert next_value is not None
    assert urlsplit(next_value).path == wanted

    response = login(client, owner.email, next=next_value)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == wanted
    assert client.get(response.headers["Location"]).status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/login",
        "//evil.example/login",
        "///evil.example",
        " //evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
    ],
)
def test_next_never_leaves_the_site(client: FlaskClient, owner: User, target: str) -> None:
    response = login(client, owner.email, next=target)
    assert response.status_code == 302
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc) == ("", ""), location
    # Browsers read a backslash as a slash and drop tabs: "/\evil" would be "//evil".
    assert not re.match(r"^[/\\]{2}", location.replace("\t", "")), location


# --- where a user lands ---------------------------------------------------------------------


def test_a_user_in_two_accounts_chooses_and_can_open_both(
    client: FlaskClient, auth: Auth, owner: User, account: Account, other_account: Account
) -> None:
    join(owner, other_account, Role.VIEWER)
    auth.login(owner)
    response = client.get("/")
    assert response.status_code == 200
    html = page(response)
    assert "Choose an account" in html
    for tenant in (account, other_account):
        assert tenant.name in html
        assert f'href="/a/{tenant.slug}/"' in html
        opened = client.get(f"/a/{tenant.slug}/")
        assert opened.status_code == 200
        assert tenant.name in page(opened)


def test_a_user_in_one_account_goes_straight_to_it(
    client: FlaskClient, auth: Auth, viewer: User, account: Account
) -> None:
    auth.login(viewer)
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/a/{account.slug}/"


def test_home_needs_a_login(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


# --- invitations ----------------------------------------------------------------------------


def _invite(account: Account) -> tuple[User, OutboxEmail]:
    user = factories.UserFactory(password_hash=None)
    join(user, account, Role.ADMIN)
    with current_app.test_request_context():  # sent by the onboarding request
        send_invitation(user, account.name, account.id)
    [email] = emails_to(user.email)
    return user, email


def test_an_invitation_sets_a_password_logs_in_and_works_once(
    client: FlaskClient, app: Flask, account: Account
) -> None:
    user, email = _invite(account)
    invite = link_path(email, "invite")

    assert client.get(invite).status_code == 200
    response = client.post(invite, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    landing = client.get(response.headers["Location"], follow_redirects=True)
    assert landing.status_code == 200
    assert account.name in page(landing)

    stranger = app.test_client()
    assert stranger.get(invite).status_code == 404
    again = stranger.post(invite, data={"password": "someone else's pw", "confirm": "x"})
    assert again.status_code == 404
    client.post("/logout")
    assert login(client, user.email, NEW_PASSWORD).status_code == 302


def test_an_invitation_refuses_a_short_or_mismatched_password(
    client: FlaskClient, account: Account
) -> None:
    _user, email = _invite(account)
    invite = link_path(email, "invite")
    short = client.post(invite, data={"password": "short", "confirm": "short"})
    assert short.status_code == 200
    assert "at least 10 characters" in page(short)
    mismatch = client.post(invite, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"})
    assert mismatch.status_code == 200
    assert "differ" in page(mismatch)
    # Neither attempt used the link up.
    response = client.post(invite, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302


def _invite_made_ago(
    monkeypatch: pytest.MonkeyPatch, account: Account, seconds: int
) -> OutboxEmail:
    """An invitation whose link was signed `seconds` ago: only the signing clock is moved."""
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda _self: int(time.time()) - seconds)
        _user, email = _invite(account)
    return email


def test_an_invitation_expires_after_seven_days(
    client: FlaskClient, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh_enough = _invite_made_ago(monkeypatch, account, 6 * 24 * 3600)
    too_old = _invite_made_ago(monkeypatch, account, 7 * 24 * 3600 + 60)
    assert client.get(link_path(fresh_enough, "invite")).status_code == 200
    assert client.get(link_path(too_old, "invite")).status_code == 404


def test_a_tampered_or_wrong_purpose_link_is_404(client: FlaskClient, account: Account) -> None:
    _user, email = _invite(account)
    invite = link_path(email, "invite")
    token = invite.rsplit("/", 1)[1]
    assert client.get(invite[:-3] + "abc").status_code == 404
    # An invitation token is not a password-reset token.
    assert client.get(f"/reset/{token}").status_code == 404


# --- password reset -------------------------------------------------------------------------


def _reset_page_text(response: TestResponse, email: str) -> str:
    html = re.sub(
        r'(csrf[-_]token"?\s*(content|value)=|"X-CSRFToken": )"[^"]*"', "", page(response)
    )
    return html.replace(email, "EMAIL")


def test_reset_request_answers_the_same_and_mails_only_a_known_user(
    client: FlaskClient, owner: User
) -> None:
    unknown = "nobody-here@example.example"
    answer_unknown = client.post("/reset", data={"email": unknown})
    answer_known = client.post("/reset", data={"email": owner.email})
    assert answer_unknown.status_code == answer_known.status_code == 200
    assert _reset_page_text(answer_unknown, unknown) == _reset_page_text(answer_known, owner.email)
    assert emails_to(unknown) == []
    [email] = emails_to(owner.email)
    assert "/reset/" in email.body_text


def test_a_reset_link_sets_a_new_password_once(
    client: FlaskClient, app: Flask, owner: User
) -> None:
    client.post("/reset", data={"email": owner.email})
    [email] = emails_to(owner.email)
    reset = link_path(email, "reset")

    response = client.post(reset, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    client.post("/logout")

    assert app.test_client().get(reset).status_code == 404
    assert login(client, owner.email, factories.PASSWORD).status_code == 200  # the old one
    assert login(client, owner.email, NEW_PASSWORD).status_code == 302


def test_a_reset_link_expires_after_two_hours(
    client: FlaskClient, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda _self: int(time.time()) - 7260)
        client.post("/reset", data={"email": owner.email})
    [email] = emails_to(owner.email)
    assert client.get(link_path(email, "reset")).status_code == 404


def test_passwords_are_stored_as_argon2id(client: FlaskClient, owner: User) -> None:
    client.post("/reset", data={"email": owner.email})
    [email] = emails_to(owner.email)
    client.post(link_path(email, "reset"), data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    stored = db.session.scalar(sa.select(User.password_hash).where(User.id == owner.id))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert NEW_PASSWORD not in stored


# --- rate limits ----------------------------------------------------------------------------


@pytest.fixture
def limited_app() -> Iterator[Flask]:
    """The app with rate limits on, on the same database and the real Redis (REDIS_URL).

    The limiter is one object shared by every app: its switch is put back afterwards so
    the session-wide app stays unlimited.
    """
    was_enabled = limiter.enabled
    limited = app_on_the_test_connection({**TEST_CONFIG, "RATELIMIT_ENABLED": True})
    limiter.reset()
    try:
        yield limited
    finally:
        limiter.reset()
        limiter.enabled = was_enabled


def _from(app: Flask, ip: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def _limit_keys(app: Flask) -> list[bytes]:
    redis = Redis.from_url(app.config["REDIS_URL"])
    try:
        return list(redis.scan_iter("LIMITS*"))
    finally:
        redis.close()


def test_login_is_rate_limited_per_email(limited_app: Flask, owner: User, viewer: User) -> None:
    attacker = _from(limited_app, "10.0.0.1")
    for _ in range(10):
        assert login(attacker, owner.email, "guess").status_code == 200
    # The right password no longer helps, from this address or any other.
    assert login(attacker, owner.email).status_code == 429
    assert login(_from(limited_app, "10.0.0.2"), owner.email).status_code == 429
    # Other users are not locked out by it.
    assert login(attacker, viewer.email).status_code == 302
    assert _limit_keys(limited_app), "the counters live in Redis"


def test_login_is_rate_limited_per_address(limited_app: Flask, owner: User) -> None:
    attacker = _from(limited_app, "10.0.0.3")
    for n in range(20):
        assert login(attacker, f"spray{n}@example.example", "guess").status_code == 200
    assert login(attacker, owner.email).status_code == 429
    assert login(_from(limited_app, "10.0.0.4"), owner.email).status_code == 302


def test_the_shared_app_is_not_left_rate_limited(client: FlaskClient, owner: User) -> None:
    for _ in range(12):
        assert login(client, owner.email, "guess").status_code == 200


# --- the session cookie ---------------------------------------------------------------------


def _cookie(response: TestResponse, name: str) -> list[str]:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return [part.strip().lower() for part in header.split(";")]
    raise AssertionError(f"no {name} cookie set")


def test_session_cookie_is_httponly_and_samesite_lax(client: FlaskClient, owner: User) -> None:
    response = login(client, owner.email, remember="y")
    for name in ("session", "remember_token"):
        flags = _cookie(response, name)
        assert "httponly" in flags
        assert "samesite=lax" in flags
        assert "secure" not in flags  # http://localhost in tests: a Secure cookie would be lost


@pytest.fixture
def https_app(monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("SEATWISE_BASE_URL", "https://portal.example")
    return app_on_the_test_connection(TEST_CONFIG)


def test_session_cookie_is_secure_behind_https(https_app: Flask, owner: User) -> None:
    client = https_app.test_client()
    response = login(client, owner.email, remember="y")
    assert response.status_code == 302
    for name in ("session", "remember_token"):
        flags = _cookie(response, name)
        assert {"secure", "httponly", "samesite=lax"} <= set(flags)
