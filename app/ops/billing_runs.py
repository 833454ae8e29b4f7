"""Billing runs in the operator console: due periods, the last runs, failures, re-runs.

A re-run only enqueues the close on the `billing` queue: closing is exactly once (see
`app.billing_portal.closing`), so a re-run of a period that another run is closing, or has
closed meanwhile, changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Response, abort, current_app, flash, redirect, url_for
from redis.exceptions import RedisError
from werkzeug.wrappers import Response as BaseResponse

from app.audit import record_operator_action
from app.billing_portal.jobs import close_due_periods, close_period_batch
from app.extensions import db
from app.models import Account, BillingPeriod, BillingRun, PeriodStatus, utcnow
from app.ops import bp
from app.ops.forms_calls import ConfirmForm
from app.queue import QueueUnavailable, get_queue
from app.settings import get_setting
from app.tenancy import unscoped
from app.web import render

RECENT_RUNS = 20


@dataclass(frozen=True)
class PeriodRow:
    """An open period past its end, with its account."""

    period: BillingPeriod
    account_name: str
    due_at: datetime
    overdue: bool


def _grace() -> timedelta:
    return timedelta(minutes=int(get_setting("close_grace_minutes")))


def _overdue_after() -> timedelta:
    """A due period still open after two scheduled runs is overdue: the close is not keeping up."""
    return timedelta(seconds=2 * current_app.config["CLOSE_INTERVAL_SECONDS"])


def _open_past_end(now: datetime) -> list[PeriodRow]:
    """Open periods whose end has passed, due (grace over) first, oldest first."""
    grace, overdue_after = _grace(), _overdue_after()
    with unscoped():  # the console sees every account's periods
        rows = db.session.execute(
            sa.select(BillingPeriod, Account.name)
            .join(Account, Account.id == BillingPeriod.account_id)
            .where(BillingPeriod.status == PeriodStatus.OPEN, BillingPeriod.ends_at <= now)
            .order_by(BillingPeriod.ends_at, BillingPeriod.id)
            .limit(200)
        ).all()
    return [
        PeriodRow(
            period, name, period.ends_at + grace, period.ends_at + grace + overdue_after < now
        )
        for period, name in rows
    ]


@bp.get("/billing-runs")
def billing_runs() -> Response:
    """Periods due for closing, the last runs with their counts and durations, failures."""
    now = utcnow()
    past_end = _open_past_end(now)
    due = [row for row in past_end if row.due_at <= now]
    runs = db.session.scalars(
        sa.select(BillingRun).order_by(BillingRun.id.desc()).limit(RECENT_RUNS)
    ).all()
    return render(
        "ops/billing_runs.html",
        due=due,
        waiting=[row for row in past_end if row.due_at > now],
        failed=[row for row in due if row.period.close_error],
        runs=runs,
        grace=_grace(),
        confirm_form=ConfirmForm(),
        now=now,
    )


@bp.post("/billing-runs/close-due")
def billing_run_close_due() -> BaseResponse:
    """Enqueue the scheduled close now: every due period, in batches."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if _enqueue(close_due_periods, utcnow().isoformat()):
        record_operator_action("billing.close_enqueued", details={"scope": "due"})
        db.session.commit()
        flash("The close of every due period is queued; it runs in a moment.", "success")
    return redirect(url_for("ops.billing_runs"), 303)


@bp.post("/billing-runs/periods/<int:period_id>/rerun")
def billing_run_period(period_id: int) -> BaseResponse:
    """Enqueue the close of one due period again (after a failure, say)."""
    with unscoped():  # the console acts on any account's period; the audit names its account
        period = db.session.get(BillingPeriod, period_id)
    if period is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    now = utcnow()
    if period.status is not PeriodStatus.OPEN:
        flash(f"Period {period.key} is {period.status.value} already: nothing to re-run.", "info")
    elif period.ends_at + _grace() > now:
        flash(f"Period {period.key} is not due yet: its grace window is still open.", "error")
    elif _enqueue(close_period_batch, [period.id], now.isoformat(), "operator"):
        record_operator_action(
            "billing.close_enqueued",
            account_id=period.account_id,
            target=period,
            details={"period": period.key, "scope": "period"},
        )
        db.session.commit()
        flash(f"The close of period {period.key} is queued; it runs in a moment.", "success")
    return redirect(url_for("ops.billing_runs"), 303)


def _enqueue(func: Callable[..., Any], *args: Any) -> bool:
    """Put the close on the billing queue; False, with a message, when Redis cannot be reached."""
    try:
        get_queue("billing").enqueue(func, *args, job_timeout=1800)
    except (RedisError, QueueUnavailable) as exc:
        flash(f"The billing queue cannot be reached ({exc}); nothing was queued.", "error")
        return False
    return True
