"""The naive baseline of `bench/ingest.py`: a bare WSGI app (no Flask, no checks, no auth) that
records one call attempt per request with one INSERT and one counter upsert, in plain SQL, and
commits.

It exists only for the benchmark; the product's API is `app/api`. The request body is one JSON
attempt whose ids (seat, lead, period, account) the client already knows. Served by gunicorn:

    DATABASE_URL=postgresql://... gunicorn --chdir bench naive_ingest:app
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

_local = threading.local()

INSERT_ATTEMPT = """
    INSERT INTO call_attempts (account_id, event_id, seat_id, lead_id, attempted_at, disposition,
                               duration_seconds, isa_agent, notes, period_id, late, created_at)
    VALUES (%(account_id)s, %(event_id)s, %(seat_id)s, %(lead_id)s, %(attempted_at)s,
            %(disposition)s, %(duration_seconds)s, %(isa_agent)s, '', %(period_id)s, false, now())
"""
BUMP_COUNTER = """
    INSERT INTO seat_usage (account_id, period_id, seat_id, attempts, leads_received, leads_called,
                            leads_contacted, transfers, appointments, late_leads, version)
    VALUES (%(account_id)s, %(period_id)s, %(seat_id)s, 1, 0, 0, 0, 0, 0, 0, 1)
    ON CONFLICT (period_id, seat_id)
    DO UPDATE SET attempts = seat_usage.attempts + 1, version = seat_usage.version + 1
"""


def _connection() -> psycopg.Connection[Any]:
    connection = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = psycopg.connect(os.environ["DATABASE_URL"])
        _local.connection = connection
    return connection


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] == "GET":  # the benchmark asks whether it is up
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    attempt = json.loads(environ["wsgi.input"].read(length))
    connection = _connection()
    with connection.cursor() as cursor:
        cursor.execute(INSERT_ATTEMPT, attempt)
        cursor.execute(BUMP_COUNTER, attempt)
    connection.commit()
    body = b'{"status": "created"}'
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "21")])
    return [body]
