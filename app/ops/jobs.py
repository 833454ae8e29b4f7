"""Jobs in the operator console: the RQ queues, their workers, and failed jobs to retry or
delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Response, abort, flash, redirect, url_for
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from werkzeug.wrappers import Response as BaseResponse

from app.audit import record_operator_action
from app.extensions import db
from app.ops import bp
from app.ops.forms_calls import ConfirmForm
from app.queue import QUEUE_NAMES, QueueUnavailable, redis_connection
from app.web import render

FAILED_SHOWN = 50


@dataclass(frozen=True)
class QueueCounts:
    name: str
    queued: int
    started: int
    scheduled: int
    deferred: int
    failed: int
    finished: int


@dataclass(frozen=True)
class WorkerRow:
    name: str
    state: str
    queues: list[str]
    current_job_id: str | None
    last_heartbeat: datetime | None
    successful: int
    failed: int


@dataclass(frozen=True)
class FailedJob:
    id: str
    queue: str
    call: str
    ended_at: datetime | None
    error: str  # the traceback's last line


def _counts(queue: Queue) -> QueueCounts:
    return QueueCounts(
        queue.name,
        queue.count,
        queue.started_job_registry.count,
        queue.scheduled_job_registry.count,
        queue.deferred_job_registry.count,
        queue.failed_job_registry.count,
        queue.finished_job_registry.count,
    )


def _workers(connection: Redis) -> list[WorkerRow]:
    return sorted(
        (
            WorkerRow(
                worker.name,
                worker.get_state(),
                worker.queue_names(),
                worker.get_current_job_id(),
                worker.last_heartbeat,
                worker.successful_job_count,
                worker.failed_job_count,
            )
            for worker in Worker.all(connection=connection)
        ),
        key=lambda row: row.name,
    )


def traceback_of(job: Job) -> str:
    """The traceback of the job's latest failure, or "" when its latest run did not fail."""
    result = job.latest_result()
    return (result.exc_string or "") if result is not None else ""


def _failed_jobs(queues: list[Queue]) -> list[FailedJob]:
    failed: list[FailedJob] = []
    for queue in queues:
        ids = queue.failed_job_registry.get_job_ids(0, FAILED_SHOWN - 1, desc=True)
        for job in Job.fetch_many(ids, connection=queue.connection):
            if job is None:
                continue
            lines = traceback_of(job).strip().splitlines()
            failed.append(
                FailedJob(
                    job.id,
                    queue.name,
                    job.get_call_string() or "",
                    job.ended_at,
                    lines[-1] if lines else "",
                )
            )
    failed.sort(key=lambda job: job.ended_at.timestamp() if job.ended_at else 0, reverse=True)
    return failed[:FAILED_SHOWN]


@bp.get("/jobs")
def jobs() -> Response:
    """The queues with their counts, the workers, and the latest failed jobs."""
    context: dict[str, Any]
    try:
        connection = redis_connection()
        queues = [Queue(name, connection=connection) for name in QUEUE_NAMES]
        context = {
            "queues": [_counts(queue) for queue in queues],
            "workers": _workers(connection),
            "failed": _failed_jobs(queues),
            "redis_error": None,
        }
    except (RedisError, QueueUnavailable) as exc:
        context = {"queues": [], "workers": [], "failed": [], "redis_error": str(exc)}
    return render("ops/jobs.html", confirm_form=ConfirmForm(), **context)


def _job_or_404(job_id: str) -> tuple[Job, Queue]:
    """The job and its queue; 404 for an unknown job or one of no queue of ours."""
    connection = redis_connection()
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        abort(404)
    if job.origin not in QUEUE_NAMES:
        abort(404)
    return job, Queue(job.origin, connection=connection)


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> Response:
    """One job: what it calls, its status, and the traceback of its latest failure."""
    found, queue = _job_or_404(job_id)
    return render(
        "ops/job.html",
        job=found,
        call=found.get_call_string() or "",
        status=found.get_status().value,
        traceback=traceback_of(found),
        is_failed=found.id in queue.failed_job_registry,
        confirm_form=ConfirmForm(),
    )


@bp.post("/jobs/<job_id>/retry")
def job_retry(job_id: str) -> BaseResponse:
    """Put a failed job back on its queue, at the end."""
    found, queue = _job_or_404(job_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        queue.failed_job_registry.requeue(found)
    except InvalidJobOperation:
        flash(f"Job {job_id} is not in the failed jobs (retried already?).", "info")
        return redirect(url_for("ops.jobs"), 303)
    record_operator_action("job.retried", details={"job_id": job_id, "queue": queue.name})
    db.session.commit()
    flash(f"Job {job_id} is back on the {queue.name} queue.", "success")
    return redirect(url_for("ops.jobs"), 303)


@bp.post("/jobs/<job_id>/delete")
def job_delete(job_id: str) -> BaseResponse:
    """Delete a failed job for good (its traceback goes with it)."""
    found, queue = _job_or_404(job_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if found.id not in queue.failed_job_registry:
        flash(f"Job {job_id} is not in the failed jobs: only failed jobs are deleted here.", "info")
        return redirect(url_for("ops.jobs"), 303)
    call = found.get_call_string() or ""
    queue.failed_job_registry.remove(found, delete_job=True)
    record_operator_action(
        "job.deleted", details={"job_id": job_id, "queue": queue.name, "call": call}
    )
    db.session.commit()
    flash(f"Deleted job {job_id}.", "success")
    return redirect(url_for("ops.jobs"), 303)
