"""Benchmark: the dialer API ingesting call attempts over HTTP, against a naive baseline.

    .venv/bin/python bench/ingest.py [--seconds 20] [--workers 2] [--threads 1] [--clients 4]

On a scratch PostgreSQL database (dropped and rebuilt: seatwise_bench_ingest) it creates
accounts with seats through the real operations and an API key, posts `--history` attempts in
process and gathers the tables' statistics (a database in use, not a brand-new one: see
`build`), starts gunicorn on loopback
(production settings, the rate limit on in Redis but set high), and runs, one after the other,
each for `--seconds` after a warm-up, with client processes on the same machine that each send
one request after the other on a kept-alive connection:

1. batches: `--clients` senders post batches of `--batch-size` attempts, each for a new lead
   (its details included, a new phone number each), to POST /api/v1/call-attempts: attempts/s,
   and p50/p99 per batch;
2. single posts: the same with one attempt per request, from one sender (the dialer posting
   each attempt as it ends), then from `--single-clients` senders at once (the server busy):
   p50/p99 per request, and attempts/s;
3. the naive baseline: `bench/naive_ingest.py` under the same gunicorn settings, `--clients`
   senders, one attempt per request, one INSERT and one counter upsert each: attempts/s, and
   the ratio of (1) to it.

Every answer is checked (200, every item created), and after the API's phases every account's
counters are recounted (`recompute_counters` must find no drift).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402  (the project's root is on the path from here)

DISPOSITIONS = [
    "live_transfer",
    "booked_appointment",
    "callback_later",
    "voicemail_no_answer",
    "not_interested_dnc",
    "bad_data_dnc",
]
# Real North American area codes, so that generated numbers are valid ones.
AREA_CODES = ["212", "213", "303", "312", "404", "415", "503", "512", "617", "702", "713", "206"]
SOURCES = ["Zillow", "Realtor.com", "Facebook", "Website"]
# Requests per second one sender's bodies are made for in advance: batches (40 of 100 are
# 4,000 attempts/s a sender), and single posts.
PREBUILT_BATCHES_PER_SECOND = 40
PREBUILT_SINGLES_PER_SECOND = 1000


@dataclass(frozen=True)
class Target:
    """Where a client sends, and what."""

    port: int
    path: str
    key: str
    seats: list[str]  # seat references (the API) ...
    naive: list[dict[str, Any]]  # ... or the baseline's ids per seat


@dataclass
class Tally:
    latencies: list[float]  # of the requests inside the measured window
    attempts: int  # created inside the measured window
    elapsed: float
    failures: int
    all_attempts: int = 0  # created during the whole phase, warm-up included
    cpu: tuple[float, float] = (0.0, 0.0)  # CPU seconds of the phase: gunicorn, PostgreSQL


def _phone(rng: random.Random) -> str:
    exchange = rng.randint(200, 999)
    if exchange in {555, 911, 311, 411, 611, 811}:
        exchange = 234
    return f"+1{rng.choice(AREA_CODES)}{exchange}{rng.randint(0, 9999):04d}"


def _batch(rng: random.Random, target: Target, size: int, tag: str) -> bytes:
    """A batch of attempts, each for a new lead, with unique event ids."""
    now = datetime.now(UTC)
    items = []
    for i in range(size):
        received = now - timedelta(minutes=rng.randint(10, 600))
        items.append(
            {
                "event_id": f"{tag}-{i}",
                "seat": rng.choice(target.seats),
                "lead_external_id": f"{tag}-{i}",
                "lead": {
                    "name": f"Lead {tag}-{i}",
                    "phone": _phone(rng),
                    "email": f"lead.{tag}.{i}@example.com",
                    "source": rng.choice(SOURCES),
                    "received_at": received.isoformat(),
                },
                "attempted_at": (received + timedelta(minutes=rng.randint(1, 9))).isoformat(),
                "disposition": rng.choice(DISPOSITIONS),
                "duration_seconds": rng.randint(0, 600),
                "isa_agent": "Bench Agent",
                "notes": "",
            }
        )
    return json.dumps({"attempts": items}).encode()


def _naive_attempt(rng: random.Random, target: Target, tag: str) -> bytes:
    ids = rng.choice(target.naive)
    attempted = datetime.now(UTC) - timedelta(minutes=rng.randint(1, 600))
    return json.dumps(
        {
            **ids,
            "event_id": tag,
            "attempted_at": attempted.isoformat(),
            "disposition": rng.choice(DISPOSITIONS),
            "duration_seconds": rng.randint(0, 600),
            "isa_agent": "Bench Agent",
        }
    ).encode()


def client(
    number: int, target: Target, size: int, warmup: float, seconds: float, phase: str
) -> Tally:
    """One sender with a kept-alive connection, posting one request after the other. Counts the
    requests answered inside the measured window (after the warm-up), and their latencies.

    The request bodies are made before the clock starts (as many as the sender could send at
    a rate well above the goal's; more, if needed, as it goes): the dialer runs elsewhere, and
    here its JSON would take the server's CPU."""
    rng = random.Random(f"{phase}-{number}")

    def body(n: int) -> bytes:
        tag = f"{phase}{number}-{n}"
        return _naive_attempt(rng, target, tag) if target.naive else _batch(rng, target, size, tag)

    rate = PREBUILT_BATCHES_PER_SECOND if size > 1 else PREBUILT_SINGLES_PER_SECOND
    bodies = [body(n) for n in range(int((warmup + seconds) * rate))]
    connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=60)
    connection.connect()
    # As HTTP client libraries do (urllib3 among them): http.client sends a request's headers
    # and body in two writes, which Nagle's algorithm would otherwise hold back.
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {target.key}"}
    started = time.perf_counter()
    measure_from, stop_at = started + warmup, started + warmup + seconds
    tally = Tally([], 0, seconds, 0)
    for n in itertools.count():
        payload = bodies[n] if n < len(bodies) else body(n)
        sent = time.perf_counter()
        if sent >= stop_at:
            break
        connection.request("POST", target.path, body=payload, headers=headers)
        response = connection.getresponse()
        answer = json.loads(response.read())
        done = time.perf_counter()
        created = size if target.naive else answer.get("created", 0)
        if response.status != 200 or created != size:
            tally.failures += 1
        if measure_from <= sent and done <= stop_at:
            tally.latencies.append(done - sent)
        if measure_from <= done <= stop_at:
            tally.attempts += created
        tally.all_attempts += created
    connection.close()
    return tally


def run_phase(
    name: str,
    target: Target,
    server: Server,
    clients: int,
    size: int,
    warmup: float,
    seconds: float,
) -> Tally:
    context = multiprocessing.get_context("spawn")
    before = server.cpu_seconds()
    with context.Pool(clients) as pool:
        tallies = pool.starmap(
            client, [(n, target, size, warmup, seconds, name) for n in range(clients)]
        )
    after = server.cpu_seconds()
    return Tally(
        latencies=[latency for tally in tallies for latency in tally.latencies],
        attempts=sum(tally.attempts for tally in tallies),
        elapsed=seconds,
        failures=sum(tally.failures for tally in tallies),
        all_attempts=sum(tally.all_attempts for tally in tallies),
        cpu=(after[0] - before[0], after[1] - before[1]),
    )


@dataclass(frozen=True)
class Server:
    """A gunicorn started by `start_gunicorn`, and the database it writes to."""

    process: subprocess.Popen[bytes]
    database: str

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU seconds used so far by gunicorn (its session's processes) and by PostgreSQL's
        backends of the database: what the server side costs, whatever else runs on the machine
        meanwhile. (PostgreSQL's shared background processes are left out.)"""
        return _cpu_seconds(self.process.pid, self.database)


def _cpu_seconds(gunicorn_session: int, database_name: str) -> tuple[float, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    app = database = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        used = int(fields[11]) + int(fields[12])  # utime + stime
        if int(fields[3]) == gunicorn_session:
            app += used
        elif title.startswith("postgres: ") and f" {database_name} " in title:
            database += used
    return app / ticks, database / ticks


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] * 1000


def build(
    database_url: str, redis_url: str, accounts: int, seats: int, history: int
) -> tuple[str, list[str]]:
    """A fresh schema with `accounts` agencies of `seats` seats each (real operations), M1 open
    since 10 days, and `history` attempts already posted to the API; returns an API key and the
    seat references.

    The statistics of the tables are gathered at the end, as autovacuum keeps them on a database
    in use: the plans PostgreSQL caches for the prepared statements of a brand-new database
    assume empty tables (the lead look-up then scans a seat's every lead by its other index,
    slower the more leads there are) until autovacuum next analyzes them, a minute later.
    """
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from app import create_app
    from app.api.auth import create_api_key
    from app.extensions import db
    from app.models import AccountKind, Plan, Seat
    from app.onboarding.operations import create_account
    from app.queue import redis_connection
    from app.seats.operations import PersonDetails, SeatDetails
    from app.tenancy import unscoped

    app = create_app()
    with app.app_context():
        db.session.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.session.commit()
        upgrade()
        redis_connection().flushdb()
        plan = Plan(
            code="P400", name="Plan 400", allowance=400, cpl_cents=1000, price_cents=400_000
        )
        db.session.add(plan)
        db.session.flush()
        start = (datetime.now(UTC) - timedelta(days=10)).date()
        for n in range(accounts):
            details = tuple(
                SeatDetails(
                    PersonDetails(f"Agent {n}-{s}", f"agent{n}.{s}@bench.example"), None, ""
                )
                for s in range(seats)
            )
            create_account(
                name=f"Bench agency {n}",
                kind=AccountKind.AGENCY,
                plan=plan,
                owner_email=f"owner{n}@bench.example",
                start=start,
                seats=details,
            )
        key = create_api_key("bench").secret
        db.session.commit()
        with unscoped():
            references = list(db.session.scalars(sa.select(Seat.reference).order_by(Seat.id)))
        client = app.test_client()
        target = Target(0, "/api/v1/call-attempts", key, references, [])
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        rng = random.Random("history")
        for n in range(0, history, 100):
            body = _batch(rng, target, min(100, history - n), f"h-{n}")
            answer = client.post(target.path, data=body, headers=headers)
            if answer.status_code != 200 or answer.get_json()["errors"]:
                raise SystemExit(f"the history was refused: {answer.get_data(as_text=True)}")
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        redis_connection().flushdb()  # the invitation mails queued by the signups
    return key, references


def naive_ids(database_url: str) -> list[dict[str, Any]]:
    """One lead per seat for the baseline to attempt, and the ids it writes."""
    import psycopg

    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            """
            INSERT INTO leads (account_id, seat_id, external_id, name, phone, email, source,
                               received_at, attempts_count, contacted, closed, created_at)
            SELECT account_id, id, 'naive', 'Naive lead', '+14155552671', '', 'Zillow', now(),
                   0, false, false, now()
            FROM seats
            RETURNING account_id, seat_id, id
            """
        ).fetchall()
        periods = dict(
            connection.execute(
                "SELECT account_id, id FROM billing_periods WHERE status = 'open'"
            ).fetchall()
        )
    return [
        {
            "account_id": account_id,
            "seat_id": seat_id,
            "lead_id": lead_id,
            "period_id": periods[account_id],
        }
        for account_id, seat_id, lead_id in rows
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(
    app_spec: str, ready_path: str, port: int, args: argparse.Namespace, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Start gunicorn (the app loaded once, before the workers fork, so that they are all ready
    together) and wait until it answers `ready_path`."""
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "--workers", str(args.workers),
        "--worker-class", args.worker_class,
        "--threads", str(args.threads),
        "--bind", f"127.0.0.1:{port}",
        "--chdir", str(ROOT / "bench") if app_spec.startswith("naive") else str(ROOT),
        "--log-level", "warning",
        "--preload",
        app_spec,
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", ready_path)
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                return process
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    stop(process)
    raise SystemExit(f"gunicorn did not start: {app_spec}")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def check_counters() -> tuple[int, int]:
    """Recount every account's counters; return (attempts stored, drifts found)."""
    import sqlalchemy as sa

    from app import create_app
    from app.calls.operations import recompute_counters
    from app.extensions import db
    from app.models import Account, CallAttempt
    from app.tenancy import tenant_context

    app = create_app()
    drifts = attempts = 0
    with app.app_context():
        for account_id in db.session.scalars(sa.select(Account.id)):
            with tenant_context(account_id):
                attempts += db.session.scalar(sa.select(sa.func.count(CallAttempt.id))) or 0
                drifts += len(recompute_counters(account_id))
            db.session.rollback()
    return attempts, drifts


def report(name: str, tally: Tally) -> float:
    rate = tally.attempts / tally.elapsed
    enough = len(tally.latencies) >= 2
    p50 = f"{percentile(tally.latencies, 50):6.1f} ms" if enough else "   n/a   "
    p99 = f"{percentile(tally.latencies, 99):6.1f} ms" if enough else "   n/a   "
    print(
        f"{name:<20} {len(tally.latencies):>7} requests {tally.attempts:>8} attempts "
        f"{rate:>9,.0f} attempts/s   p50 {p50}   p99 {p99}   failures {tally.failures}"
    )
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="gunicorn worker processes (one per core: fewer batches in flight wait less for "
        "each other's counter rows and for the cores, bench/RESULTS.md)",
    )
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per gunicorn worker (a batch holds the GIL most of its time: more threads "
        "in one process mostly wait for it)",
    )
    parser.add_argument("--clients", type=int, default=4, help="senders of batches (and baseline)")
    parser.add_argument("--single-clients", type=int, default=4, help="senders of single posts")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--seats", type=int, default=4, help="seats per account")
    parser.add_argument(
        "--history", type=int, default=20_000, help="attempts posted before the phases"
    )
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/seatwise_bench_ingest"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    args = parser.parse_args()

    import psycopg

    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    name = args.database_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as connection:
        if not connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "SEATWISE_ENV": "production",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": "bench-secret-key-bench-secret-key-123",
        # The limit stays on (one Redis round trip per request), set high enough for the run.
        "API_RATE_LIMIT": "10000000/minute",
    }
    os.environ.update(env)
    key, references = build(
        args.database_url, args.redis_url, args.accounts, args.seats, args.history
    )
    print(
        f"{args.accounts} accounts, {len(references)} seats, {args.history:,} attempts before; "
        f"gunicorn {args.workers} workers x "
        f"{args.threads} threads ({args.worker_class}); {args.seconds:.0f} s per phase after "
        f"{args.warmup:.0f} s of warm-up; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the start (other work on the machine shows here)"
    )
    print(machine.describe(args.database_url))

    port = free_port()
    server = Server(
        start_gunicorn("app:create_app()", "/api/v1/openapi.json", port, args, env), name
    )
    try:
        api = Target(port, "/api/v1/call-attempts", key, references, [])
        batches = run_phase(
            "b", api, server, args.clients, args.batch_size, args.warmup, args.seconds
        )
        alone = run_phase("a", api, server, 1, 1, args.warmup, args.seconds)
        singles = run_phase("s", api, server, args.single_clients, 1, args.warmup, args.seconds)
    finally:
        stop(server.process)
    stored, drifts = check_counters()  # before the baseline, whose raw inserts count nothing
    naive_port = free_port()
    naive = Target(naive_port, "/", "", [], naive_ids(args.database_url))
    server = Server(start_gunicorn("naive_ingest:app", "/", naive_port, args, env), name)
    try:
        baseline = run_phase("n", naive, server, args.clients, 1, args.warmup, args.seconds)
    finally:
        stop(server.process)

    print(f"{'phase':<20} {'requests':>16} {'attempts':>17}")
    batch_rate = report(f"batches of {args.batch_size}", batches)
    report("single, 1 sender", alone)
    report(f"single, {args.single_clients} senders", singles)
    naive_rate = report("naive baseline", baseline)
    print(f"batches / naive baseline: {batch_rate / naive_rate:.1f}x")
    print("server CPU per 1,000 attempts (gunicorn + PostgreSQL backends), and what two idle")
    print("cores would sustain at that cost:")
    for name, tally in [
        (f"batches of {args.batch_size}", batches),
        ("single posts", singles),
        ("naive baseline", baseline),
    ]:
        app, database = (1000 * seconds / max(tally.all_attempts, 1) for seconds in tally.cpu)
        capacity = 2000 / (app + database) if app + database else 0
        print(
            f"  {name:<18} {app:5.2f} s + {database:5.2f} s = {app + database:5.2f} s"
            f"   -> {capacity:,.0f} attempts/s"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"attempts stored through the API: {stored:,}; counter drift after recount: {drifts}")
    failures = batches.failures + alone.failures + singles.failures + baseline.failures
    ok = drifts == 0 and not failures
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
