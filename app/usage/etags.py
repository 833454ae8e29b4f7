"""The dashboard's cache key and ETag, shared by the view and the unchanged-poll middleware."""

from __future__ import annotations

import hashlib
from zoneinfo import ZoneInfo

from flask import Response

from app.models import utcnow


def usage_key(
    account_id: int, timezone: str, version: str, seat_id: int | None, full_path: str
) -> str:
    """What the page's figures depend on: the account, the usage version (see
    `usage_version`), the account's local date (the chart's today), the page's path and
    query (period, sort, page) and the seat shown."""
    today = utcnow().astimezone(ZoneInfo(timezone)).date()
    parts = (account_id, version, today, full_path, seat_id)
    return "|".join(map(str, parts))


def usage_etag(key: str, htmx: bool) -> str:
    """The ETag of the page or (`htmx`) of its live partial: they differ."""
    return hashlib.sha256(f"{key}|{htmx}".encode()).hexdigest()[:32]


def not_modified(etag: str) -> Response:
    response = Response(status=304)
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache"
    response.vary.add("HX-Request")
    return response
