"""Report jobs (queue `reports`): rendering one report, and the master reports of closed
periods. Both take ids, open the tenant context themselves, and are safe to run again.

The status the user sees is the report row, committed as the work goes: rendering, the pages
done out of the total, then ready with the file's size, or failed with a reason. The file is
written to a temporary name and renamed into place before the row says ready, so a worker
killed at any moment never leaves a half-written file behind a ready report; a ready report is
never rendered again, and one left "rendering" by a killed worker is rendered again from
scratch. Every status write is conditional on the report not being ready yet, so when two runs
of one report overlap (an RQ retry and a Retry click), the first to finish wins and the other
neither replaces its file nor marks it failed.

A report asked for while Redis was down is committed all the same and shows as queued; the
sweep (a cron job) hands it to the queue once Redis is back.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from rq import get_current_job
from rq.job import Job

from app.extensions import db
from app.mail.operations import queue_email
from app.models import (
    Account,
    AccountKind,
    BillingPeriod,
    Report,
    ReportFormat,
    ReportStatus,
    utcnow,
)
from app.pdf import files_root, store_file
from app.queue import FAILED_JOB_TTL, get_queue, job_retry
from app.reports.document import report_csv
from app.reports.operations import ensure_period_master_report, queue_rendering
from app.reports.queries import (
    ReportScopeError,
    account_seat_count,
    describe_reports,
    owner_emails,
    report_content,
)
from app.reports.render import Progress, render_report_pdf
from app.tenancy import tenant_context, unscoped

log = logging.getLogger(__name__)

# Temporary files older than this in a reports folder were left by a killed worker.
_STALE_PARTIAL_SECONDS = 3600


def render_report(report_id: int) -> str:
    """Job: render the report's PDF or CSV and mark it ready (see the module docstring).

    Raises what the rendering raised, after marking the report failed with a readable reason,
    so that RQ's retries apply.
    """
    with unscoped():  # the job gets only the report's id: find its account first
        account_id = db.session.scalar(sa.select(Report.account_id).where(Report.id == report_id))
    db.session.rollback()
    if account_id is None:
        return "no such report"
    with tenant_context(account_id):
        started = _update(
            report_id,
            status=ReportStatus.RENDERING,
            pages_done=0,
            pages_total=0,
            error="",
            started_at=utcnow(),
            finished_at=None,
        )
        db.session.commit()
        if not started:
            return f"report {report_id} is ready already"
        try:
            relative = _render_and_store(report_id, account_id)
        except Exception as exc:
            db.session.rollback()
            _update(
                report_id,
                status=ReportStatus.FAILED,
                error=failure_reason(exc),
                finished_at=utcnow(),
            )
            db.session.commit()
            raise
    return relative


def _update(report_id: int, **values: object) -> bool:
    """Set `values` on the report unless it is ready (a ready report is never touched again);
    whether it was. A single UPDATE, so that on SQLite it can open its transaction: a write
    after a read in one transaction fails there, rather than waits, when someone else wrote
    in between."""
    result = db.session.execute(
        sa.update(Report)
        .where(Report.id == report_id, Report.status != ReportStatus.READY)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def _render_and_store(report_id: int, account_id: int) -> str:
    """Render, write the file atomically, then mark the report ready (one commit)."""
    started = time.perf_counter()
    report = db.session.get_one(Report, report_id)
    account = db.session.get_one(Account, account_id)
    content = report_content(report, account, utcnow())
    report_format, previous = report.format, report.file_path
    db.session.commit()  # the reads end here: each write below starts a transaction of its own
    if report_format is ReportFormat.PDF:
        processes = int(current_app.config.get("REPORT_RENDER_PROCESSES", 2))
        rendered = render_report_pdf(content, processes, _progress_of(report_id))
        data, pages = rendered.data, rendered.pages
    else:
        data, pages = report_csv(content), 0
    folder = f"reports/{account_id}"
    _remove_stale_partials(files_root() / folder)
    # A fresh name for every rendering: a file is never overwritten while someone downloads it.
    relative = f"{folder}/{report_id}-{uuid.uuid4().hex[:16]}.{report_format.value}"
    store_file(relative, data)
    marked = _update(
        report_id,
        file_path=relative,
        size_bytes=len(data),
        pages_done=pages,
        pages_total=pages,
        status=ReportStatus.READY,
        finished_at=utcnow(),
    )
    report = db.session.get_one(Report, report_id, populate_existing=True)
    if marked and report.automatic and report.emailed_at is None:
        _email_owners(report, db.session.get_one(Account, account_id))
        report.emailed_at = utcnow()
    db.session.commit()
    if not marked:  # another run made it ready meanwhile: this file is not the report's
        (files_root() / relative).unlink(missing_ok=True)
        return report.file_path or relative
    if previous and previous != relative:
        (files_root() / previous).unlink(missing_ok=True)
    log.info("report %s: %d bytes in %.1fs", report_id, len(data), time.perf_counter() - started)
    return relative


def _progress_of(report_id: int) -> Progress:
    """A progress callback that commits pages done / total, for the page's progress bar."""

    def progress(done: int, total: int) -> None:
        _update(report_id, pages_done=done, pages_total=total)
        db.session.commit()

    return progress


def failure_reason(exc: Exception) -> str:
    """What went wrong, for the person waiting for the report."""
    if isinstance(exc, ReportScopeError):
        reason = str(exc)
    elif isinstance(exc, OSError):
        reason = f"The report's file could not be written ({exc.strerror or exc})."
    else:
        lines = str(exc).strip().splitlines()
        detail = f": {lines[0][:200]}" if lines else ""
        reason = f"The report could not be rendered ({type(exc).__name__}{detail})."
    job = get_current_job()
    if job is not None and (job.retries_left or 0) > 0:
        reason += " It will be tried again automatically in a moment."
    return reason


def _remove_stale_partials(folder: Path) -> None:
    """Temporary files of renderings whose worker was killed (the rename never happened)."""
    if not folder.is_dir():
        return
    cutoff = time.time() - _STALE_PARTIAL_SECONDS
    for partial in folder.glob(".partial-*"):
        try:
            if partial.stat().st_mtime < cutoff:
                partial.unlink()
        except FileNotFoundError:
            continue


def _email_owners(report: Report, account: Account) -> None:
    [item] = describe_reports([report])
    period = db.session.get_one(BillingPeriod, report.period_id) if report.period_id else None
    for address in owner_emails():
        queue_email(
            address,
            "report_ready",
            account_id=account.id,
            account=account,
            report=report,
            title=item.title,
            period_key=period.key if period else "",
        )


def deliver_master_reports(period_ids: list[int]) -> list[int]:
    """Job, queued by the period close: for each closed period of a multi-seat account (a
    brokerage or agency with more than one seat), make its master report (PDF) once and queue
    its rendering; the owners are emailed when it is ready. Returns the reports' ids."""
    with unscoped():  # the close's batch spans accounts: find each period's account
        rows = db.session.execute(
            sa.select(BillingPeriod.id, BillingPeriod.account_id)
            .where(BillingPeriod.id.in_(period_ids))
            .order_by(BillingPeriod.id)
        ).all()
    report_ids = []
    for period_id, account_id in rows:
        with tenant_context(account_id):
            account = db.session.get_one(Account, account_id)
            if account.kind is AccountKind.SOLO or account_seat_count() < 2:
                continue
            report, _made = ensure_period_master_report(period_id)
            db.session.flush()
            if report.status is not ReportStatus.READY:
                queue_rendering(report)
            db.session.commit()
            report_ids.append(report.id)
    return report_ids


def sweep_waiting_reports() -> int:
    """Cron job: queue again every report that has waited longer than REPORT_SWEEP_SECONDS
    while Redis knows nothing of its job (Redis was down when it was asked for, or lost its
    data). Returns how many were queued.

    The wait keeps the sweep from racing the request's own hand-over just after its commit;
    if it ever does, the job runs twice and the second run finds the report ready."""
    cutoff = utcnow() - timedelta(seconds=int(current_app.config["REPORT_SWEEP_SECONDS"]))
    with unscoped():  # the sweep looks after every account's waiting reports
        waiting = db.session.execute(
            sa.select(Report.id, Report.job_id)
            .where(
                Report.status == ReportStatus.QUEUED,
                Report.job_id.is_not(None),
                Report.created_at < cutoff,
            )
            .order_by(Report.id)
        ).all()
    db.session.rollback()
    queue = get_queue("reports")
    swept = 0
    for report_id, job_id in waiting:
        if Job.exists(str(job_id), connection=queue.connection):
            continue
        queue.enqueue(
            render_report, report_id, job_id=job_id, retry=job_retry(), failure_ttl=FAILED_JOB_TTL
        )
        swept += 1
    if swept:
        log.info("queued %d report(s) that were waiting without a job", swept)
    return swept
