"""Who may call the dialer API, how often, how much: API keys (created, listed, revoked from the
command line, stored only as a keyed hash), 401s, the per-key rate limit, and JSON for every
error under /api."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import timedelta
from time import monotonic
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from app import create_app
from app.api import ingest
from app.api.auth import VERIFIED_FOR, create_api_key, key_hash
from app.config import ConfigError
from app.extensions import db, limiter
from app.models import ApiKey, utcnow
from tests.conftest import TEST_CONFIG, app_on_the_test_connection


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def post_empty_batch(client: FlaskClient, headers: dict[str, str]) -> Any:
    return client.post("/api/v1/call-attempts", json={"attempts": []}, headers=headers)


def stored_key(prefix: str) -> ApiKey:
    return db.session.scalars(
        sa.select(ApiKey).where(ApiKey.prefix == prefix).execution_options(populate_existing=True)
    ).one()


# -- keys ---------------------------------------------------------------------------------------


def test_a_key_is_stored_only_as_a_keyed_hash(app: Flask) -> None:
    new = create_api_key("dialer")
    key = stored_key(new.key.prefix)

    scheme, prefix, secret = new.secret.split("_", 2)
    assert (scheme, prefix, len(prefix)) == ("sw", key.prefix, 8)
    assert len(secret) >= 43  # 256 random bits
    assert new.secret not in {key.name, key.prefix, key.key_hash}
    assert secret not in key.key_hash
    expected = hmac.new(app.config["SECRET_KEY"].encode(), new.secret.encode(), "sha256")
    assert key.key_hash == expected.hexdigest() == key_hash(new.secret)


def test_the_cli_creates_lists_and_revokes_keys(app: Flask, client: FlaskClient) -> None:
    runner = app.test_cli_runner()

    created = runner.invoke(args=["apikeys", "create", "Five9 dialer"])
    secret = created.output.splitlines()[-1]
    listed = runner.invoke(args=["apikeys", "list"])

    assert created.exit_code == 0, created.output
    prefix = secret.split("_")[1]
    assert created.output.splitlines()[0] == f"Created API key 'Five9 dialer' (prefix {prefix})."
    assert post_empty_batch(client, bearer(secret)).status_code == 200
    assert secret not in listed.output
    [row] = [line for line in listed.output.splitlines() if line.startswith(prefix)]
    assert row.endswith("Five9 dialer")

    revoked = runner.invoke(args=["apikeys", "revoke", "Five9 dialer"])

    assert revoked.exit_code == 0, revoked.output
    assert revoked.output == (
        f"Revoked API key 'Five9 dialer' (prefix {prefix}): requests with it are refused "
        "within 5 seconds.\n"
    )
    response = post_empty_batch(client, bearer(secret))
    assert response.status_code == 401
    assert response.get_json() == {"error": "this API key has been revoked"}
    assert stored_key(prefix).revoked_at is not None


def test_a_key_revoked_by_another_process_is_refused_within_seconds(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = create_api_key("dialer")
    assert post_empty_batch(client, bearer(new.secret)).status_code == 200
    # As the operator console's process would (this one's trust is not told).
    db.session.execute(sa.update(ApiKey).where(ApiKey.id == new.key.id).values(revoked_at=utcnow()))

    still_trusted = post_empty_batch(client, bearer(new.secret))
    later = monotonic() + VERIFIED_FOR
    monkeypatch.setattr("app.api.auth.monotonic", lambda: later)
    refused = post_empty_batch(client, bearer(new.secret))

    assert still_trusted.status_code == 200
    assert refused.status_code == 401
    assert refused.get_json() == {"error": "this API key has been revoked"}


def test_revoking_by_a_shared_name_asks_for_the_prefix(app: Flask) -> None:
    first, second = create_api_key("dialer"), create_api_key("dialer")
    runner = app.test_cli_runner()

    ambiguous = runner.invoke(args=["apikeys", "revoke", "dialer"])
    by_prefix = runner.invoke(args=["apikeys", "revoke", second.key.prefix])
    unknown = runner.invoke(args=["apikeys", "revoke", "nobody"])

    assert ambiguous.exit_code == 1
    assert (
        f"2 active API keys are named 'dialer' (prefixes {first.key.prefix}, "
        f"{second.key.prefix}): revoke one by its prefix" in ambiguous.output
    )
    assert by_prefix.exit_code == 0
    assert stored_key(first.key.prefix).revoked_at is None
    assert stored_key(second.key.prefix).revoked_at is not None
    assert unknown.exit_code == 1
    assert "no active API key is named or prefixed 'nobody'" in unknown.output


def test_a_key_needs_a_name(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["apikeys", "create", "  "])

    assert result.exit_code == 2
    assert "must be 1 to 100 characters" in result.output


# -- 401 ----------------------------------------------------------------------------------------


MISSING = "missing API key: send the header Authorization: Bearer <API key>"


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        pytest.param(None, MISSING, id="no header"),
        pytest.param("Basic ZGlhbGVyOnNlY3JldA==", MISSING, id="another scheme"),
        pytest.param("Bearer ", MISSING, id="no credential"),
        pytest.param("Bearer not-a-key", "invalid API key", id="not a key"),
        pytest.param("Bearer sw_00000000_nope", "invalid API key", id="unknown prefix"),
        pytest.param("__wrong_secret__", "invalid API key", id="wrong secret"),
    ],
)
def test_a_request_without_a_valid_key_is_refused_with_401(
    client: FlaskClient, authorization: str | None, message: str
) -> None:
    real = create_api_key("dialer")
    if authorization == "__wrong_secret__":
        authorization = f"Bearer sw_{real.key.prefix}_{'x' * 43}"
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = post_empty_batch(client, headers)

    assert response.status_code == 401
    assert response.get_json() == {"error": message}
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_scheme_name_is_case_insensitive(client: FlaskClient) -> None:
    secret = create_api_key("dialer").secret
    response = post_empty_batch(client, {"Authorization": f"bearer {secret}"})
    assert response.status_code == 200


def test_last_used_at_is_written_at_most_once_a_minute(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = create_api_key("dialer")
    start = utcnow().replace(microsecond=0)
    for seconds, expected in [(0, 0), (30, 0), (59, 0), (61, 61), (90, 61)]:
        monkeypatch.setattr("app.api.views.utcnow", lambda s=seconds: start + timedelta(seconds=s))
        assert post_empty_batch(client, bearer(new.secret)).status_code == 200
        assert stored_key(new.key.prefix).last_used_at == start + timedelta(seconds=expected)


# -- the rate limit -----------------------------------------------------------------------------


@pytest.fixture
def limited_app() -> Iterator[Flask]:
    """The app with rate limits on (3 requests a minute per key), on the same database and the
    real Redis. The limiter is one object shared by every app: its switch is put back."""
    was_enabled = limiter.enabled
    limited = app_on_the_test_connection(
        {**TEST_CONFIG, "RATELIMIT_ENABLED": True, "API_RATE_LIMIT": "3/minute"}
    )
    limiter.reset()
    try:
        yield limited
    finally:
        limiter.reset()
        limiter.enabled = was_enabled


def test_each_key_is_rate_limited_on_its_own(limited_app: Flask) -> None:
    client = limited_app.test_client()
    busy, other = create_api_key("busy"), create_api_key("other")
    for _ in range(3):
        assert post_empty_batch(client, bearer(busy.secret)).status_code == 200

    refused = post_empty_batch(client, bearer(busy.secret))
    leads = client.post("/api/v1/leads", json={"leads": []}, headers=bearer(busy.secret))

    assert refused.status_code == 429
    assert refused.get_json() == {
        "error": "too many requests with this API key: the limit is 3 per 1 minute; wait and "
        "send the request again"
    }
    assert int(refused.headers["Retry-After"]) > 0
    assert leads.status_code == 429, "the limit is shared by every endpoint"
    assert post_empty_batch(client, bearer(other.secret)).status_code == 200


def test_a_forged_key_with_a_real_prefix_cannot_use_up_that_keys_limit(
    limited_app: Flask,
) -> None:
    client = limited_app.test_client()
    real = create_api_key("dialer")
    db.session.commit()
    forged = f"sw_{real.key.prefix}_not-the-secret"
    for _ in range(5):
        assert post_empty_batch(client, bearer(forged)).status_code in (401, 429)

    assert post_empty_batch(client, bearer(real.secret)).status_code == 200


# -- JSON errors, CSRF --------------------------------------------------------------------------


def test_unknown_urls_and_methods_under_api_answer_json(client: FlaskClient) -> None:
    missing = client.get("/api/v1/nothing-here")
    wrong_method = client.get("/api/v1/call-attempts")
    elsewhere = client.get("/nothing-here")

    assert missing.status_code == 404
    assert missing.get_json()["error"].startswith("The requested URL was not found")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json() == {"error": "The method is not allowed for the requested URL."}
    assert "POST" in wrong_method.headers["Allow"]
    assert elsewhere.status_code == 404
    assert elsewhere.mimetype == "text/html", "the app's own pages stay HTML"


def test_the_api_needs_no_csrf_token(db_session: Any) -> None:
    guarded = app_on_the_test_connection({**TEST_CONFIG, "WTF_CSRF_ENABLED": True})
    client = guarded.test_client()
    secret = create_api_key("dialer").secret

    assert post_empty_batch(client, bearer(secret)).status_code == 200
    assert client.post("/login", data={}).status_code == 400, "the portal's forms still need one"


def test_an_unexpected_failure_answers_json_500(
    db_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = app_on_the_test_connection({**TEST_CONFIG, "PROPAGATE_EXCEPTIONS": False})
    secret = create_api_key("dialer").secret

    def broken(_items: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.api.views.record_attempt_batch", broken)
    response = post_empty_batch(failing.test_client(), bearer(secret))

    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal error: send the request again (every item is idempotent)"
    }


class _DatabaseError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def test_a_transaction_lost_to_a_deadlock_is_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest.time, "sleep", lambda _seconds: None)
    calls: list[int] = []

    def work() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("INSERT ...", {}, _DatabaseError("40P01"))
        return "done"

    assert ingest.in_transaction(work) == "done"
    assert len(calls) == 3


def test_other_database_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        raise OperationalError("INSERT ...", {}, _DatabaseError("53100"))  # disk full

    with pytest.raises(OperationalError):
        ingest.in_transaction(work)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("API_RATE_LIMIT", "lots", "API_RATE_LIMIT must read like 600/minute (got 'lots')"),
        (
            "API_MAX_BODY_BYTES",
            "2MB",
            "API_MAX_BODY_BYTES must be a whole number of bytes (got '2MB')",
        ),
    ],
)
def test_a_malformed_api_setting_stops_the_start(setting: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        create_app({**TEST_CONFIG, setting: value})

    assert str(raised.value) == message
