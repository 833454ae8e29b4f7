"""Benchmark: the live usage dashboard for a 1,000-seat account with 100,000 called leads.

    .venv/bin/python bench/dashboard.py [--seconds 15] [--connections 16]

Loads the account on PostgreSQL, serves the app with gunicorn on loopback, logs in over
HTTP, and drives 16 concurrent connections with wrk (apt-get install wrk) against:
the full dashboard page, an unchanged htmx poll (answered 304 by ETag), and — the
baseline, in the same run — the same page computed from the raw call data.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402  (the project's root is on the path from here)

PASSWORD = "bench-password-1"
DISPOSITIONS = [
    ("voicemail_no_answer", 50, False),
    ("callback_later", 20, True),
    ("not_interested_dnc", 10, True),
    ("bad_data_dnc", 5, False),
    ("live_transfer", 8, True),
    ("booked_appointment", 7, True),
]


def build(seats: int, leads: int) -> str:
    """One agency, `seats` seats, `leads` leads called in the open period; returns its slug."""
    import sqlalchemy as sa

    from app.auth.passwords import hash_password
    from app.calls.operations import recompute_counters
    from app.extensions import db
    from app.models import AccountKind, CallAttempt, Lead, Plan, User
    from app.onboarding.operations import create_account
    from app.seats.operations import PersonDetails, SeatDetails, create_seat
    from app.tenancy import tenant_context, unscoped

    rng = random.Random(7)
    start = (datetime.now(UTC) - timedelta(days=12)).date()
    plan = Plan(
        code="ENT", name="Enterprise 8000", allowance=8000, cpl_cents=800, price_cents=8000 * 800
    )
    db.session.add(plan)
    db.session.flush()
    new = create_account(
        name="Bench Agency",
        kind=AccountKind.AGENCY,
        plan=plan,
        owner_email="owner@bench.example",
        start=start,
    )
    owner = db.session.get_one(User, new.owner.id)
    owner.password_hash = hash_password(PASSWORD)
    account = new.account
    period_id = new.subscribed.period.id
    with tenant_context(account.id):
        seat_ids = [
            create_seat(
                account,
                SeatDetails(
                    PersonDetails(f"Agent {n:04d}", f"agent{n}@bench.example"),
                    client_label=f"Client {n % 25:02d}",
                ),
                at_signup=True,
            ).id
            for n in range(seats)
        ]
    db.session.commit()
    period_start = datetime.combine(start, datetime.min.time(), UTC) + timedelta(hours=5)
    span = (datetime.now(UTC) - timedelta(hours=1) - period_start).total_seconds()
    weights = [w for _, w, _ in DISPOSITIONS]
    lead_rows, attempt_rows = [], []
    for n in range(leads):
        seat_id = seat_ids[n % seats]
        received = period_start + timedelta(seconds=rng.random() * span)
        first = received + timedelta(minutes=rng.randint(1, 90))
        disposition, _, contacted = rng.choices(DISPOSITIONS, weights)[0]
        lead_rows.append(
            {
                "id": n + 1,
                "account_id": account.id,
                "seat_id": seat_id,
                "external_id": f"B{n}",
                "name": f"Lead {n}",
                "phone": "+15555550100",
                "source": "Zillow",
                "received_at": received,
                "first_attempt_at": first,
                "billed_period_id": period_id,
                "last_attempt_at": first,
                "last_disposition": disposition,
                "attempts_count": 1,
                "contacted": contacted,
                "closed": disposition not in ("callback_later", "voicemail_no_answer"),
            }
        )
        attempt_rows.append(
            {
                "account_id": account.id,
                "event_id": f"BE{n}",
                "seat_id": seat_id,
                "lead_id": n + 1,
                "attempted_at": first,
                "disposition": disposition,
                "duration_seconds": 60,
                "isa_agent": "Isa",
                "period_id": period_id,
            }
        )
    with unscoped():
        for start_at in range(0, leads, 10_000):
            db.session.execute(sa.insert(Lead), lead_rows[start_at : start_at + 10_000])
            db.session.execute(sa.insert(CallAttempt), attempt_rows[start_at : start_at + 10_000])
        db.session.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('leads', 'id'), (SELECT max(id) FROM leads))"
            )
        )
    db.session.commit()
    drift = recompute_counters(account.id)
    db.session.commit()
    # Vacuumed, with fresh statistics, as autovacuum keeps a live database, and the build's
    # writes flushed to disk: neither autovacuum nor a checkpoint busy with the 100,000 new
    # rows while the pages are measured.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
        connection.exec_driver_sql("CHECKPOINT")
    print(f"counters rebuilt from raw data ({len(drift)} cells written)")
    return account.slug


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def login(base: str) -> str:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("User-Agent", "seatwise-bench")]
    page = opener.open(f"{base}/login").read().decode()
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "no CSRF token on the login page"
    data = urllib.parse.urlencode(
        {"csrf_token": match.group(1), "email": "owner@bench.example", "password": PASSWORD}
    ).encode()
    opener.open(f"{base}/login", data)
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


def start_gunicorn(app_spec: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn with `workers` sync workers on a free loopback port, once it answers; returns
    the process and its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [
            *(str(ROOT / ".venv/bin/gunicorn"), "-w", str(workers)),
            *("-b", f"127.0.0.1:{port}", "--log-level", "warning", app_spec),
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{base}/login")
            break
        except OSError:
            time.sleep(0.2)
    return server, base


def dashboard_etag(base: str, slug: str, cookie: str) -> tuple[str, str]:
    """The dashboard's URL and the ETag of its live partial (what a poll sends back)."""
    page_url = f"{base}/a/{slug}/"
    request = urllib.request.Request(
        page_url,
        headers={"Cookie": cookie, "HX-Request": "true", "User-Agent": "seatwise-bench"},
    )
    with urllib.request.urlopen(request) as response:
        etag = str(response.headers["ETag"])
        assert 'id="usage-live"' in response.read().decode(), "not the dashboard"
    return page_url, etag


def wrk(url: str, seconds: int, connections: int, **env: str) -> dict[str, float]:
    result = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "wrk_report.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    line = next(li for li in result.stdout.splitlines() if li.startswith("RESULT"))
    figures: dict[str, float] = {}
    for key, value in re.findall(r"(\w+)=([\d.]+)", line):
        figures[key] = float(value)
    figures["rate"] = figures["requests"] / figures["seconds"]
    print(f"  {line.removeprefix('RESULT ')}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seats", type=int, default=1000)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="gunicorn sync workers (one per core: with 4 on this 2-core machine each request "
        "cost a third more CPU and the p95s were ~50%% higher, bench/RESULTS.md)",
    )
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/seatwise_bench_dash"
    )
    args = parser.parse_args()
    env = {
        "SEATWISE_ENV": "production",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": "redis://127.0.0.1:6379/7",
        "SECRET_KEY": "bench-" + "k" * 40,
        "SEATWISE_BASE_URL": "http://127.0.0.1",
    }
    os.environ.update(env)
    admin = args.database_url.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(
        ["psql", admin, "-qc", "DROP DATABASE IF EXISTS seatwise_bench_dash"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["psql", admin, "-qc", "CREATE DATABASE seatwise_bench_dash"],
        check=True,
        capture_output=True,
    )
    from flask_migrate import upgrade

    from app import create_app
    from app.queue import redis_connection

    app = create_app()
    with app.app_context(), app.test_request_context():
        redis_connection().flushdb()  # the benchmark's own: sign-in limits of earlier runs
        upgrade()
        started = time.perf_counter()
        slug = build(args.seats, args.leads)
        print(
            f"built {args.seats} seats, {args.leads} called leads in "
            f"{time.perf_counter() - started:.0f} s"
        )
    print(machine.describe(args.database_url))
    server, base = start_gunicorn("bench.dashboard_app:app", args.workers)
    try:
        cookie = login(base)
        page_url, etag = dashboard_etag(base, slug, cookie)
        common = {"BENCH_COOKIE": cookie}
        print(f"full page, {args.connections} connections:")
        full = wrk(page_url, args.seconds, args.connections, **common)
        print("unchanged poll (304):")
        poll = wrk(
            page_url, args.seconds, args.connections, BENCH_HX="1", BENCH_ETAG=etag, **common
        )
        print("baseline: the same page from raw call data:")
        raw = wrk(f"{base}/a/{slug}/raw/", args.seconds, args.connections, **common)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"full page p95 {full['p95']:.1f} ms (goal ≤ 50), {full['rate']:.0f} req/s")
    print(f"poll 304 p95 {poll['p95']:.1f} ms (goal ≤ 10), {poll['rate']:.0f} req/s")
    print(f"raw-data page p95 {raw['p95']:.1f} ms, {raw['rate']:.0f} req/s")
    print(
        f"ratio raw/counters: p95 {raw['p95'] / full['p95']:.1f}x, "
        f"throughput {full['rate'] / raw['rate']:.1f}x"
    )
    errors = full["errors"] + poll["errors"] + raw["errors"]
    print("errors:", int(errors))
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
