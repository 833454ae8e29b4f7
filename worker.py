"""The RQ worker (queues billing, reports, mail) and, with `scheduler`, the cron scheduler.

python worker.py             # a worker
python worker.py scheduler   # the one cron scheduler process
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flask import Flask
from rq import Queue, Worker
from rq.cron import CronScheduler
from rq.executions import Execution
from rq.job import Job


class AppWorker(Worker):
    """Runs each job inside the Flask app context, on database connections of its own.

    A job whose worker dies (SIGKILL, out of memory, the machine) stops having its heartbeat
    renewed; `abandoned_after` seconds (WORKER_ABANDONED_AFTER_SECONDS) after the last one,
    the registry cleanup of any worker counts it abandoned and retries it by its retry policy,
    or fails it when it has no retries left. Each worker cleans up when it starts and then at
    least that often, also while it waits for work (RQ's defaults: a minute and a half, and
    every ten minutes between jobs).
    """

    flask_app: Flask
    abandoned_after: int = 90

    @property
    def dequeue_timeout(self) -> int:
        return max(1, min(self.worker_ttl - 15, self.abandoned_after))

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """Until the next heartbeat, plus the margin that makes `abandoned_after` in all."""
        until_next = int(self.job_monitoring_interval)
        if job.timeout and job.timeout > 0:
            until_next = int(min(job.timeout - working_time, until_next))
        return until_next + max(0, self.abandoned_after - int(self.job_monitoring_interval))

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        from app.extensions import db

        with self.flask_app.app_context():
            # The work horse is a fork: never reuse a connection the parent may hold.
            for engine in db.engines.values():
                engine.dispose(close=False)
            try:
                return super().perform_job(job, queue, execution)
            finally:
                db.session.remove()


def run_worker(app: Flask, queue_names: Sequence[str], burst: bool = False) -> None:
    from app.queue import redis_connection

    with app.app_context():
        connection = redis_connection()
    AppWorker.flask_app = app
    abandoned_after = int(app.config["WORKER_ABANDONED_AFTER_SECONDS"])
    AppWorker.abandoned_after = abandoned_after
    worker = AppWorker(
        [Queue(name, connection=connection) for name in queue_names],
        connection=connection,
        # The horse's heartbeat, three times per abandonment window (RQ's default: 30 s).
        job_monitoring_interval=max(1, abandoned_after // 3),
        maintenance_interval=abandoned_after,
    )
    worker.work(burst=burst, with_scheduler=True)


class AppCronScheduler(CronScheduler):
    """RQ's cron scheduler, whose stop on SIGTERM or SIGINT cannot be lost.

    RQ raises StopRequested, an Exception, from its signal handler: a signal that lands inside
    an `except Exception` (a logging handler's emit, say) is swallowed there, and the scheduler
    sleeps on for up to a minute. SystemExit passes such handlers; `start` still registers the
    scheduler's death on the way out."""

    def _request_stop(self, signum: int, frame: object) -> None:
        self.log.info("CronScheduler %s: received shutdown signal %s", self.name, signum)
        raise SystemExit(0)


def build_scheduler(app: Flask) -> CronScheduler:
    """The periodic jobs: closing due billing periods, and sweeping mail and reports that were
    left waiting while Redis was down."""
    from app.billing_portal.jobs import close_due_periods
    from app.mail.jobs import sweep_pending_mail
    from app.queue import redis_connection
    from app.reports.jobs import sweep_waiting_reports

    with app.app_context():
        connection = redis_connection()
    scheduler = AppCronScheduler(connection=connection, name="seatwise")
    scheduler.register(
        close_due_periods,
        "billing",
        interval=app.config["CLOSE_INTERVAL_SECONDS"],
        job_timeout=1800,
    )
    scheduler.register(sweep_pending_mail, "mail", interval=120)
    scheduler.register(
        sweep_waiting_reports, "reports", interval=app.config["REPORT_SWEEP_SECONDS"]
    )
    return scheduler


def main(argv: list[str]) -> int:
    from app import create_app
    from app.queue import QUEUE_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", nargs="?", choices=["worker", "scheduler"], default="worker")
    parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    parser.add_argument("--queue", action="append", choices=QUEUE_NAMES, help="repeatable")
    args = parser.parse_args(argv[1:])
    app = create_app()
    if args.role == "scheduler":
        build_scheduler(app).start()
    else:
        run_worker(app, args.queue or QUEUE_NAMES, burst=args.burst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
