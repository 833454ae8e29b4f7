"""Benchmark: close one billing period for each of N accounts with real worker processes.

    .venv/bin/python bench/close_periods.py [--accounts 10000] [--workers 2]

Builds N accounts (1-5 seats each, usage over and under plan) on PostgreSQL, enqueues
the scheduled `close_due_periods` job and times worker processes (billing queue only:
invoice PDFs are excluded) until every period is closed. Prints the figures; checks
one closing invoice per period.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(accounts: int, rng: random.Random) -> None:
    """Bulk-load accounts whose M1 ended yesterday (ids assigned here, sequences reset)."""
    import sqlalchemy as sa

    from app import billing
    from app.extensions import db
    from app.models import (
        Account,
        BillingPeriod,
        Person,
        Plan,
        Seat,
        SeatUsage,
        Subscription,
    )
    from app.tenancy import unscoped

    plans = [(25, 1400), (50, 1300), (100, 1200), (200, 1100), (400, 1000), (800, 900)]
    anchor = (datetime.now(UTC) - timedelta(days=35)).date().replace(day=1)
    tz = "America/New_York"
    bounds = billing.period_bounds(anchor, 1, tz)
    with unscoped():
        db.session.execute(
            sa.insert(Plan),
            [
                {
                    "id": i,
                    "code": f"P{a}",
                    "name": f"Plan {a}",
                    "allowance": a,
                    "cpl_cents": c,
                    "price_cents": a * c,
                }
                for i, (a, c) in enumerate(plans, start=1)
            ],
        )
        rows: dict[str, list[dict[str, object]]] = {
            "accounts": [],
            "subs": [],
            "periods": [],
            "persons": [],
            "seats": [],
            "usage": [],
        }
        seat_id = 0
        for n in range(1, accounts + 1):
            plan_index = rng.randrange(len(plans))
            allowance, cpl = plans[plan_index]
            kind = rng.choice(["solo", "brokerage", "agency"])
            rows["accounts"].append(
                {
                    "id": n,
                    "slug": f"bench-{n}",
                    "name": f"Bench {n}",
                    "kind": kind,
                    "timezone": tz,
                    "billing_email": f"b{n}@bench.example",
                }
            )
            rows["subs"].append(
                {"id": n, "account_id": n, "plan_id": plan_index + 1, "anchor_date": anchor}
            )
            rows["periods"].append(
                {
                    "id": n,
                    "account_id": n,
                    "subscription_id": n,
                    "month_index": 1,
                    "starts_at": bounds.starts_at,
                    "ends_at": bounds.ends_at,
                    "plan_id": plan_index + 1,
                    "plan_code": f"P{allowance}",
                    "plan_name": f"Plan {allowance}",
                    "allowance": allowance,
                    "price_cents": allowance * cpl,
                    "cpl_cents": cpl,
                    "seat_fee_cents": 5700,
                }
            )
            for _ in range(1 if kind == "solo" else rng.randint(1, 5)):
                seat_id += 1
                rows["persons"].append(
                    {
                        "id": seat_id,
                        "account_id": n,
                        "name": f"Agent {seat_id}",
                        "email": f"a{seat_id}@bench.example",
                    }
                )
                rows["seats"].append(
                    {
                        "id": seat_id,
                        "account_id": n,
                        "reference": f"ST-B{seat_id:07d}",
                        "primary_person_id": seat_id,
                        "fee_period_id": n if kind != "solo" and rng.random() < 0.2 else None,
                        "fee_cents": 5700,
                    }
                )
                rows["usage"].append(
                    {
                        "account_id": n,
                        "period_id": n,
                        "seat_id": seat_id,
                        "leads_called": rng.randint(0, allowance // 2),
                        "version": 1,
                    }
                )
        for model, key in (
            (Account, "accounts"),
            (Subscription, "subs"),
            (BillingPeriod, "periods"),
            (Person, "persons"),
            (Seat, "seats"),
            (SeatUsage, "usage"),
        ):
            for i in range(0, len(rows[key]), 5000):
                db.session.execute(sa.insert(model), rows[key][i : i + 5000])
        for table in ("plans", "accounts", "subscriptions", "billing_periods", "persons", "seats"):
            db.session.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
        db.session.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/seatwise_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    args = parser.parse_args()
    os.environ.update(
        SEATWISE_ENV="test",
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        SECRET_KEY="bench-secret-key-bench-secret-key-123",
    )
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from app import create_app
    from app.billing_portal.jobs import close_due_periods
    from app.extensions import db
    from app.models import Invoice, InvoiceKind
    from app.queue import QUEUE_NAMES, get_queue, redis_connection
    from app.tenancy import unscoped

    app = create_app()
    with app.app_context():
        db.session.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.session.commit()
        upgrade()
        redis_connection().flushdb()
        started = time.perf_counter()
        build(args.accounts, random.Random(20261126))
        print(f"built {args.accounts} accounts in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        batches = close_due_periods()
        workers = [
            subprocess.Popen(
                [sys.executable, str(ROOT / "worker.py"), "--burst", "--queue=billing"],
                cwd=ROOT,
                env=os.environ.copy(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(args.workers)
        ]
        codes = [worker.wait() for worker in workers]
        elapsed = time.perf_counter() - started
        db.session.rollback()
        with unscoped():
            closing = db.session.scalar(
                sa.select(sa.func.count(sa.distinct(Invoice.closes_period_id))).where(
                    Invoice.kind == InvoiceKind.CLOSING
                )
            )
            total = db.session.scalar(
                sa.select(sa.func.count(Invoice.id)).where(Invoice.kind == InvoiceKind.CLOSING)
            )
        for name in QUEUE_NAMES:
            get_queue(name).empty()
    print(f"workers: {args.workers} (exit codes {codes}), batches: {batches}")
    print(
        f"closed {closing} periods ({total} closing invoices) in {elapsed:.1f} s "
        f"= {closing / elapsed:.0f} periods/s"
    )
    ok = closing == total == args.accounts and set(codes) == {0}
    print("OK: one closing invoice per period" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
