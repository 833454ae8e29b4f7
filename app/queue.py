"""Redis and RQ queues: jobs take ids and are enqueued only once their rows are committed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flask import current_app
from redis import Redis
from rq import Queue, Retry
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import db

QUEUE_NAMES = ("billing", "reports", "mail")
_PENDING_KEY = "seatwise_pending_jobs"


class QueueUnavailable(RuntimeError):
    """No REDIS_URL is configured."""


def redis_connection() -> Redis:
    url = current_app.config.get("REDIS_URL")
    if not url:
        raise QueueUnavailable("REDIS_URL is not set: no queue to send jobs to")
    connection: Redis | None = current_app.extensions.get("seatwise_redis")
    if connection is None:
        connection = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        current_app.extensions["seatwise_redis"] = connection
    return connection


def get_queue(name: str) -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis_connection())


DEFAULT_RETRY_INTERVALS = (10, 60, 300)
FAILED_JOB_TTL = 30 * 86400  # a failed job stays readable in Redis for 30 days


def default_retry_intervals() -> Sequence[int]:
    """The seconds between the tries of a job that raised, or whose worker died: the app's
    JOB_RETRY_SECONDS, by default 10 s, 1 min, 5 min."""
    return tuple(current_app.config.get("JOB_RETRY_SECONDS", DEFAULT_RETRY_INTERVALS))


def job_retry(intervals: Sequence[int] | None = None) -> Retry | None:
    """RQ's retry policy for `intervals` (default: the app's); None for no retry."""
    chosen = list(default_retry_intervals() if intervals is None else intervals)
    return Retry(max=len(chosen), interval=chosen) if chosen else None


def enqueue_after_commit(
    queue_name: str,
    func: Callable[..., Any],
    *args: Any,
    retry_intervals: Sequence[int] | None = None,
    job_id: str | None = None,
) -> None:
    """Enqueue `func(*args)` once the current transaction commits (never for a rollback),
    retried after each of `retry_intervals` seconds (default: the app's) when it fails.

    A job that starts before its rows are visible would find nothing, so the request
    or job that creates the rows owns the moment the work is handed over.
    """
    pending: list[tuple[str, Callable[..., Any], tuple[Any, ...], Retry | None, str | None]]
    pending = db.session.info.setdefault(_PENDING_KEY, [])
    pending.append((queue_name, func, args, job_retry(retry_intervals), job_id))


def _enqueue(
    queue_name: str,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    retry: Retry | None,
    job_id: str | None,
) -> None:
    get_queue(queue_name).enqueue(
        func, *args, retry=retry, job_id=job_id, failure_ttl=FAILED_JOB_TTL
    )


@event.listens_for(Session, "after_commit")
def _flush_pending_jobs(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, [])
    for queue_name, func, args, retry, job_id in pending:
        try:
            _enqueue(queue_name, func, args, retry, job_id)
        except Exception:  # Redis down: the row stays pending and a sweep job picks it up.
            current_app.logger.exception("could not enqueue %s on %s", func.__name__, queue_name)


@event.listens_for(Session, "after_rollback")
def _drop_pending_jobs(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
