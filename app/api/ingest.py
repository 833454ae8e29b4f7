"""A batch request from reading to answer: the envelope, the items' checks, one transaction
for the good items, and the per-item results."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from flask import g, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import RequestEntityTooLarge

from app.api.errors import ApiError
from app.api.schemas import MAX_ITEMS, ItemT, Parsed
from app.calls.batch import ItemOutcome, ItemStatus
from app.calls.rejections import Refusal, record_refusals
from app.extensions import db, writing_transaction
from app.models import utcnow

T = TypeVar("T")

# A transaction the database gave up on because of other transactions is tried again.
_RETRIES = 8
_TRANSIENT_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure


def read_items(list_name: str) -> list[Any]:
    """The request's list of items; raises `ApiError` (415, 400, 422) naming the problem, or
    `RequestEntityTooLarge` (413) for a body over the size limit."""
    if not request.is_json:
        raise ApiError(415, "send the body as JSON, with the header Content-Type: application/json")
    data = request.get_data(cache=False)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(data) >= limit:
        # A body sent without a Content-Length (chunked) is cut at the limit, silently: one
        # that reaches it cannot be told from one that went beyond, and is not JSON anyway.
        raise RequestEntityTooLarge()
    try:
        body = json.loads(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "the body is not valid JSON: it is nested too deeply") from None
    items = body.get(list_name) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ApiError(422, f'the body must be a JSON object with an "{list_name}" list')
    if len(items) > MAX_ITEMS:
        raise ApiError(
            422,
            f"at most {MAX_ITEMS:,} {list_name} per request (got {len(items):,}): split the batch",
        )
    return items


def record_batch(
    list_name: str,
    ident_name: str,
    parse: Callable[[Any, datetime], Parsed[ItemT]],
    record: Callable[[Sequence[ItemT]], list[ItemOutcome]],
) -> dict[str, Any]:
    """Check the request's items, record the good ones in one transaction (committed), and
    return the answer: each item's result in order, and the totals. Refused items are also
    kept, in a transaction of their own, for the operator console's recent errors."""
    now = utcnow()
    parsed = [parse(item, now) for item in read_items(list_name)]
    good = [entry.value for entry in parsed if entry.value is not None]
    outcomes = iter(in_transaction(lambda: record(good)))
    results = []
    refusals: list[Refusal] = []
    totals = dict.fromkeys(ItemStatus, 0)
    for index, entry in enumerate(parsed):
        outcome = (
            next(outcomes)
            if entry.value is not None
            else ItemOutcome(ItemStatus.ERROR, entry.errors)
        )
        totals[outcome.status] += 1
        if outcome.status is ItemStatus.ERROR:
            refusals.append(Refusal(index, entry.ident or "", _describe(outcome)))
        results.append(
            {
                "index": index,
                ident_name: entry.ident,
                "status": outcome.status.value,
                "errors": [
                    {"field": error.field, "message": error.message} for error in outcome.errors
                ],
            }
        )
    if refusals:
        prefix = g.get("api_key_prefix", "")
        in_transaction(lambda: record_refusals("api", list_name, refusals, prefix))
    return {
        "results": results,
        "created": totals[ItemStatus.CREATED],
        "duplicates": totals[ItemStatus.DUPLICATE],
        "errors": totals[ItemStatus.ERROR],
    }


def _describe(outcome: ItemOutcome) -> str:
    return "; ".join(
        f"{error.field}: {error.message}" if error.field else error.message
        for error in outcome.errors
    )


def in_transaction(work: Callable[[], T]) -> T:
    """Run `work` and commit; when the database refuses the transaction because of others
    (a deadlock on PostgreSQL, a busy file on SQLite), roll back and run it again. On SQLite a
    transaction `work` begins waits for the write lock at its start (`writing_transaction`); one
    already begun by the request's reads goes on as it is, and its retries wait."""
    for attempt in range(1, _RETRIES + 1):
        try:
            with writing_transaction():
                result = work()
            db.session.commit()
            return result
        except OperationalError as exc:
            db.session.rollback()
            if attempt == _RETRIES or not _is_transient(exc):
                raise
        # Spread the retries so that the transactions that collided do not collide again.
        time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 - jitter, not secrecy
    raise AssertionError("unreachable")


def _is_transient(exc: OperationalError) -> bool:
    if getattr(exc.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return "database is locked" in str(exc.orig)
