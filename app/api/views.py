"""The API's routes. Thin: the checks live in `schemas`, the writes in `app.calls.batch`."""

from __future__ import annotations

from flask import Response, current_app, g, jsonify, request
from flask_limiter.util import get_remote_address

from app.api import bp
from app.api.auth import ApiKeyRefused, KeyInUse, authenticate, note_use
from app.api.errors import ApiError
from app.api.ingest import in_transaction, record_batch
from app.api.openapi import openapi_document
from app.api.schemas import parse_attempt, parse_lead
from app.calls.batch import record_attempt_batch, record_lead_batch
from app.extensions import db, limiter
from app.models import utcnow

_PUBLIC_ENDPOINTS = {"api.openapi"}
# Where the request keeps its checked key (the WSGI environ lives exactly as long as it).
_CHECKED_KEY, _REFUSAL = "seatwise.api_key", "seatwise.api_key_refusal"


def _verified_key() -> KeyInUse | None:
    """The request's API key once checked (None: missing, invalid or revoked; the reason is
    kept for the 401). Checked once per request, by the rate limit or by `_authenticate`."""
    environ = request.environ
    if _CHECKED_KEY not in environ:
        try:
            environ[_CHECKED_KEY] = authenticate(request.headers.get("Authorization"))
        except ApiKeyRefused as exc:
            db.session.rollback()
            environ[_CHECKED_KEY], environ[_REFUSAL] = None, str(exc)
    key: KeyInUse | None = environ[_CHECKED_KEY]
    return key


def _rate_limit_key() -> str:
    """Requests are counted per checked API key, and per address without a valid one: a
    forged key that names a real key's prefix cannot use up that key's allowance."""
    key = _verified_key()
    return f"api-key:{key.prefix}" if key else f"address:{get_remote_address()}"


limiter.shared_limit(
    lambda: str(current_app.config["API_RATE_LIMIT"]), scope="api-v1", key_func=_rate_limit_key
)(bp)


@bp.before_request
def _authenticate() -> None:
    """Every request: the body size limit; every endpoint but the document: a valid key."""
    request.max_content_length = current_app.config["API_MAX_BODY_BYTES"]
    if request.endpoint in _PUBLIC_ENDPOINTS:
        return
    key = _verified_key()
    if key is None:
        raise ApiError(401, request.environ[_REFUSAL], headers={"WWW-Authenticate": "Bearer"})
    now = utcnow()
    if key.use_to_note(now):
        # In a transaction of its own, so the batch does not hold the key's row locked.
        in_transaction(lambda: note_use(key, now))
    g.api_key_prefix = key.prefix


@bp.post("/leads")
def leads() -> Response:
    """Record a batch of leads; see the OpenAPI document."""
    return jsonify(record_batch("leads", "external_id", parse_lead, record_lead_batch))


@bp.post("/call-attempts")
def call_attempts() -> Response:
    """Record a batch of call attempts; see the OpenAPI document."""
    return jsonify(record_batch("attempts", "event_id", parse_attempt, record_attempt_batch))


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of this API."""
    return jsonify(openapi_document())
