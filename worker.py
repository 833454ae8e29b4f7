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
    """Runs each job inside the Flask app context, on database connections of its own."""

    flask_app: Flask

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        from app.extensions import db

        with self.flask_app.app_context():
            # The work horse is a fork: never reuse a connection the parent may hold.
            db.engine.dispose(close=False)
            try:
                return super().perform_job(job, queue, execution)
            finally:
                db.session.remove()


def run_worker(app: Flask, queue_names: Sequence[str], burst: bool = False) -> None:
    from app.queue import redis_connection

    with app.app_context():
        connection = redis_connection()
    AppWorker.flask_app = app
    worker = AppWorker(
        [Queue(name, connection=connection) for name in queue_names], connection=connection
    )
    worker.work(burst=burst, with_scheduler=True)


def build_scheduler(app: Flask) -> CronScheduler:
    """The periodic jobs: closing due billing periods and sweeping mail left pending."""
    from app.billing_portal.jobs import close_due_periods
    from app.mail.jobs import sweep_pending_mail
    from app.queue import redis_connection

    with app.app_context():
        connection = redis_connection()
    scheduler = CronScheduler(connection=connection, name="seatwise")
    scheduler.register(
        close_due_periods,
        "billing",
        interval=app.config["CLOSE_INTERVAL_SECONDS"],
        job_timeout=1800,
    )
    scheduler.register(sweep_pending_mail, "mail", interval=120)
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
