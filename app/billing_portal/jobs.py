"""Billing jobs: the scheduled period close, and each invoice's PDF and email."""

from __future__ import annotations

from datetime import datetime

from app.billing_portal.closing import close_periods, due_period_ids
from app.models import utcnow
from app.queue import enqueue_after_commit, get_queue, job_retry

CLOSE_BATCH_SIZE = 100


def close_due_periods(now_iso: str | None = None) -> int:
    """Cron job: split the due periods into batches, one `close_period_batch` job each,
    so any number of workers share a large run. Returns the number of batches.

    A batch whose worker dies (killed, out of memory) is retried like one that raised: RQ's
    registry cleanup finds it abandoned and enqueues it again, and the close's claim makes
    the rerun close only what the dead one did not commit."""
    now = datetime.fromisoformat(now_iso) if now_iso else utcnow()
    ids = due_period_ids(now)
    queue = get_queue("billing")
    batches = [ids[i : i + CLOSE_BATCH_SIZE] for i in range(0, len(ids), CLOSE_BATCH_SIZE)]
    for batch in batches:
        queue.enqueue(
            close_period_batch, batch, now.isoformat(), job_timeout=1800, retry=job_retry()
        )
    return len(batches)


def close_period_batch(
    period_ids: list[int], now_iso: str, trigger: str = "schedule"
) -> dict[str, int]:
    """Close a batch of periods (each exactly once, see `closing`); `trigger` names who asked
    in the run's record ("operator" for a re-run from the console)."""
    result = close_periods(period_ids, datetime.fromisoformat(now_iso), trigger=trigger)
    return {"closed": result.closed, "skipped": result.skipped, "failed": len(result.failures)}


def enqueue_invoice_delivery(invoice_id: int) -> None:
    """After the issuing transaction commits: render the PDF, then email the owners."""
    from app.billing_portal.invoice_pdf import deliver_invoices

    enqueue_after_commit("reports", deliver_invoices, [invoice_id])
