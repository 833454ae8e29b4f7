"""Writes for call reports: asking for one, retrying one, the automatic master report.
Flush, never commit: the request or job that calls these owns the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import BillingPeriod, Report, ReportFormat, ReportStatus, Seat, User, utcnow
from app.queue import enqueue_after_commit
from app.reports.queries import MAX_RANGE_DAYS

# A report "rendering" for longer than this has lost its worker (killed, or the machine went
# down): it may be retried by hand. RQ's own retries cover a failure that raised.
STALLED_AFTER = timedelta(minutes=15)


class ReportRequestError(ValueError):
    """The request cannot be made into a report; the message says why, for the form."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ReportNotRetryable(RuntimeError):
    """Only a failed report, or one whose rendering stalled, can be retried."""


@dataclass(frozen=True)
class ReportRequest:
    """What a user asked for: a seat (None: the master report), a period or dates, a format."""

    seat_id: int | None
    period_id: int | None
    date_from: date | None
    date_to: date | None
    format: ReportFormat


def request_report(request: ReportRequest, user: User) -> Report:
    """Add a report in the current account and queue its rendering once the transaction
    commits. Raises `ReportRequestError` for a seat or period the account does not have, or
    for dates that are missing, reversed or too far apart."""
    # Selects, not Session.get: the tenant filter applies to a select, not to the identity map.
    if request.seat_id is not None and not _exists(Seat.id, request.seat_id):
        raise ReportRequestError("Choose one of this account's seats.", "scope")
    if request.period_id is not None:
        if not _exists(BillingPeriod.id, request.period_id):
            raise ReportRequestError("Choose one of this account's billing periods.", "period")
        date_from = date_to = None
    else:
        date_from, date_to = request.date_from, request.date_to
        if date_from is None or date_to is None:
            raise ReportRequestError("Enter both dates, or choose a billing period.", "date_from")
        if date_to < date_from:
            raise ReportRequestError("The last day comes before the first.", "date_to")
        if (date_to - date_from).days >= MAX_RANGE_DAYS:
            raise ReportRequestError(f"A report covers at most {MAX_RANGE_DAYS} days.", "date_to")
    report = Report(
        requested_by_id=user.id,
        seat_id=request.seat_id,
        period_id=request.period_id,
        date_from=date_from,
        date_to=date_to,
        format=request.format,
        status=ReportStatus.QUEUED,
    )
    db.session.add(report)
    db.session.flush()
    queue_rendering(report)
    return report


def queue_rendering(report: Report) -> None:
    """Hand the report to the `reports` queue once the transaction commits (RQ retries a
    rendering that raises, three times)."""
    from app.reports.jobs import render_report  # the job module pulls in the renderer

    report.job_id = f"report-{report.id}-{uuid.uuid4().hex[:12]}"
    enqueue_after_commit("reports", render_report, report.id, job_id=report.job_id)


def can_retry(report: Report, now: datetime | None = None) -> bool:
    """A failed report can be retried, and so can one whose rendering stalled."""
    if report.status is ReportStatus.FAILED:
        return True
    if report.status is ReportStatus.READY:
        return False
    since = report.started_at or report.created_at
    return since is not None and (now or utcnow()) - since > STALLED_AFTER


def retry_report(report: Report) -> None:
    """Queue the report's rendering again, from scratch. Raises `ReportNotRetryable` unless it
    failed or stalled."""
    if not can_retry(report):
        raise ReportNotRetryable(f"report {report.id} is {report.status.value}")
    report.status = ReportStatus.QUEUED
    report.error = ""
    report.pages_done = report.pages_total = 0
    report.started_at = report.finished_at = None
    db.session.flush()
    queue_rendering(report)


def ensure_period_master_report(period_id: int) -> tuple[Report, bool]:
    """The automatic master report (PDF) of a closed period in the current account, made if
    missing; returns it and whether it was made now. Two delivery jobs racing make one:
    the partial unique index on automatic reports decides."""
    found = _automatic_report(period_id)
    if found is not None:
        return found, False
    report = Report(
        period_id=period_id,
        format=ReportFormat.PDF,
        status=ReportStatus.QUEUED,
        automatic=True,
    )
    try:
        with db.session.begin_nested():
            db.session.add(report)
    except IntegrityError:
        found = _automatic_report(period_id)
        if found is None:
            raise
        return found, False
    return report, True


def _exists(column: sa.orm.InstrumentedAttribute[int], value: int) -> bool:
    return db.session.scalar(sa.select(column).where(column == value)) is not None


def _automatic_report(period_id: int) -> Report | None:
    return db.session.scalar(
        sa.select(Report).where(Report.period_id == period_id, Report.automatic.is_(True))
    )
