"""The API's routes. Thin: the checks live in `schemas`, the writes in `app.calls.batch`."""

from __future__ import annotations

from flask import Response, current_app, g, jsonify, request
from flask_limiter.util import get_remote_address

from app.api import bp
from app.api.auth import ApiKeyRefused, authenticate, bearer_token, note_use, prefix_of
from app.api.errors import ApiError
from app.api.ingest import in_transaction, record_batch
from app.api.openapi import openapi_document
from app.api.schemas import parse_attempt, parse_lead
from app.calls.batch import record_attempt_batch, record_lead_batch
from app.extensions import db, limiter
from app.models import utcnow

_PUBLIC_ENDPOINTS = {"api.openapi"}


def _rate_limit_key() -> str:
    """Requests are counted per API key (by its public prefix), or per address without one."""
    secret = bearer_token(request.headers.get("Authorization"))
    prefix = prefix_of(secret) if secret else None
    return f"api-key:{prefix}" if prefix else f"address:{get_remote_address()}"


limiter.shared_limit(
    lambda: str(current_app.config["API_RATE_LIMIT"]), scope="api-v1", key_func=_rate_limit_key
)(bp)


@bp.before_request
def _authenticate() -> None:
    """Every request: the body size limit; every endpoint but the document: a valid key."""
    request.max_content_length = current_app.config["API_MAX_BODY_BYTES"]
    if request.endpoint in _PUBLIC_ENDPOINTS:
        return
    try:
        key = authenticate(request.headers.get("Authorization"))
    except ApiKeyRefused as exc:
        db.session.rollback()
        raise ApiError(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
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
