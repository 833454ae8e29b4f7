"""The dashboard's cache key and ETag, shared by the view and the unchanged-poll hook."""

from __future__ import annotations

import hashlib
from zoneinfo import ZoneInfo

from flask import Response, make_response, request

from app.models import Account, utcnow
from app.web import is_htmx_request


def usage_key(account: Account, version: str, seat_id: int | None) -> str:
    """What the page's figures depend on: the account, the counters' version (see
    `usage_version`), the account's local date (the chart's today), the page's path and
    query (period, sort, page) and the seat shown."""
    today = utcnow().astimezone(ZoneInfo(account.timezone)).date()
    parts = (account.id, account.created_at.timestamp(), version, today, request.full_path, seat_id)
    return "|".join(map(str, parts))


def usage_etag(key: str) -> str:
    """The ETag of the page or of its live partial (they differ)."""
    return hashlib.sha256(f"{key}|{is_htmx_request()}".encode()).hexdigest()[:32]


def not_modified(etag: str) -> Response:
    response = make_response("", 304)
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache"
    response.vary.add("HX-Request")
    return response
