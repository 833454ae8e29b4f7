"""Benchmark: a bounded load run against the dashboard page, its unchanged poll, the dialer
API and sign-in, on loopback, against gunicorn and PostgreSQL.

    .venv/bin/python bench/load.py [--seconds 10] [--connections 8] [--max-load 2]

Refuses to start while the machine is busy (1-minute load average at or over --max-load): the
figures would measure the other work. Loads one agency (200 seats, 20,000 called leads, as
`bench/dashboard.py` builds it) into a database of its own, serves `bench/load_app.py` with
4 gunicorn workers and gives each endpoint in turn --connections connections for --seconds
seconds from wrk (2 threads, `bench/wrk_load.lua`):

  dashboard  GET the usage dashboard, signed in                          expects 200
  poll       the same as an htmx poll with the page's ETag (unchanged)   expects 304
  api        POST /api/v1/call-attempts, 10 new attempts per request     expects 200
  login      POST /login, 16 users in turn, right password               expects 302

Prints each one's requests/s, latency p50/p95/p99 and its answers by status. Any other
answer — a 429 included: the run sets API_RATE_LIMIT high and exempts sign-in from the
limiter (see `bench/load_app.py`) so none is expected — or a socket error is an error, and
so is a mismatch between the attempts accepted and those stored; the exit code is 1 if there
was any (2: the machine was busy, nothing measured).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dashboard import PASSWORD, build, dashboard_etag, login, start_gunicorn  # noqa: E402

LOGIN_USERS = 16
EXPECTED = {"dashboard": 200, "poll": 304, "api": 200, "login": 302}


def add_bench_access(slug: str) -> tuple[str, list[str]]:
    """Sign-in users and an API key; returns the key's secret and the agency's seat refs."""
    import sqlalchemy as sa

    from app.api.auth import create_api_key
    from app.auth.passwords import hash_password
    from app.extensions import db
    from app.models import Account, Seat, User
    from app.tenancy import tenant_context

    password_hash = hash_password(PASSWORD)
    for n in range(LOGIN_USERS):
        db.session.add(
            User(email=f"load{n}@bench.example", name=f"Load {n}", password_hash=password_hash)
        )
    secret = create_api_key("load bench").secret
    account = db.session.scalars(sa.select(Account).where(Account.slug == slug)).one()
    with tenant_context(account.id):
        seats = list(db.session.scalars(sa.select(Seat.reference).order_by(Seat.id).limit(50)))
    db.session.commit()
    return secret, seats


def stored_load_attempts() -> int:
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import CallAttempt
    from app.tenancy import unscoped

    with unscoped():
        count = db.session.scalar(
            sa.select(sa.func.count(CallAttempt.id)).where(CallAttempt.event_id.like("load-%"))
        )
    db.session.rollback()
    return int(count or 0)


def login_bodies(base: str) -> tuple[str, list[str]]:
    """A signed-out session's cookie and, for each sign-in user, the form body to post."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("User-Agent", "seatwise-bench")]
    page = opener.open(f"{base}/login").read().decode()
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "no CSRF token on the login page"
    bodies = [
        urllib.parse.urlencode(
            {"csrf_token": match.group(1), "email": f"load{n}@bench.example", "password": PASSWORD}
        )
        for n in range(LOGIN_USERS)
    ]
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar), bodies


def run_wrk(url: str, seconds: int, connections: int, **env: str) -> dict[str, Any]:
    """One wrk run; its RESULT line parsed: figures, and the answers by status."""
    result = subprocess.run(
        [
            *("wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"),
            *("-s", str(ROOT / "bench" / "wrk_load.lua"), url),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    line = next(li for li in result.stdout.splitlines() if li.startswith("RESULT"))
    figures: dict[str, Any] = {"statuses": {}}
    for key, value in re.findall(r"(\w+)=([\d.]+)", line):
        if key.startswith("status_"):
            figures["statuses"][int(key.removeprefix("status_"))] = int(value)
        else:
            figures[key] = float(value)
    figures["rate"] = figures["requests"] / figures["seconds"]
    return figures


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seats", type=int, default=200)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--max-load", type=float, default=2.0)
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/seatwise_bench_load"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    args = parser.parse_args()
    if os.getloadavg()[0] >= args.max_load:
        print(f"the machine is busy (load average {load_average()}); not measuring now")
        return 2
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average before: {load_average()}")
    name = args.database_url.rsplit("/", 1)[1]
    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name!r}: a benchmark database's name has 'bench'")
    admin = args.database_url.rsplit("/", 1)[0] + "/postgres"
    for statement in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", admin, "-qc", statement], check=True, capture_output=True)
    os.environ.update(
        {
            "SEATWISE_ENV": "production",
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "SECRET_KEY": "bench-" + "k" * 40,
            "SEATWISE_BASE_URL": "http://127.0.0.1",
            "API_RATE_LIMIT": "1000000/minute",
        }
    )
    from flask_migrate import upgrade

    from app import create_app

    app = create_app()
    with app.app_context(), app.test_request_context():
        upgrade()
        slug = build(args.seats, args.leads)
        key, seats = add_bench_access(slug)
    server, base = start_gunicorn("bench.load_app:app", args.workers)
    runs: dict[str, dict[str, Any]] = {}
    try:
        cookie = login(base)
        page_url, etag = dashboard_etag(base, slug, cookie)
        signed_out, bodies = login_bodies(base)
        at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        plans = {
            "dashboard": (page_url, {"BENCH_MODE": "page", "BENCH_COOKIE": cookie}),
            "poll": (
                page_url,
                {"BENCH_MODE": "poll", "BENCH_COOKIE": cookie, "BENCH_ETAG": etag},
            ),
            "api": (
                base,
                {"BENCH_MODE": "api", "BENCH_KEY": key, "BENCH_SEATS": ",".join(seats)}
                | {"BENCH_AT": at},
            ),
            "login": (
                base,
                {
                    "BENCH_MODE": "login",
                    "BENCH_COOKIE": signed_out,
                    "BENCH_BODIES": "\n".join(bodies),
                },
            ),
        }
        for endpoint, (url, env) in plans.items():
            runs[endpoint] = run_wrk(url, args.seconds, args.connections, **env)
            print(f"  {endpoint}: done")
    finally:
        server.terminate()
        server.wait(timeout=30)
    with app.app_context():
        stored = stored_load_attempts()
    print(f"load average after: {load_average()}")
    print(
        f"{args.connections} connections per endpoint, {args.seconds} s each, "
        f"{args.workers} gunicorn workers, {args.seats} seats / {args.leads:,} leads"
    )
    print(f"{'endpoint':<10} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  answers")
    errors = 0
    for endpoint, figures in runs.items():
        statuses = figures["statuses"]
        unexpected = sum(n for status, n in statuses.items() if status != EXPECTED[endpoint])
        failed = unexpected + int(figures["socket_errors"])
        errors += failed
        answers = ", ".join(f"{n} × {status}" for status, n in sorted(statuses.items()))
        print(
            f"{endpoint:<10} {figures['rate']:>8.1f} {figures['p50']:>8.1f} "
            f"{figures['p95']:>8.1f} {figures['p99']:>8.1f}  {answers}; errors: {failed}"
        )
    # Requests still in flight when wrk stops are stored without being counted: one a connection.
    accepted = runs["api"]["statuses"].get(200, 0)
    print(f"API attempts stored: {stored:,}; answered as accepted: {10 * accepted:,}")
    if not 10 * accepted <= stored <= 10 * (accepted + args.connections):
        print("the stored attempts do not match the accepted ones")
        errors += 1
    print("errors:", errors)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
