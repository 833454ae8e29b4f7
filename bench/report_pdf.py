"""Benchmark: the master call report PDF of a 40-seat agency with 10,000 leads, and of a
10-seat one with 1,000 leads, against the same content as one plain WeasyPrint document.

    .venv/bin/python bench/report_pdf.py [--leads 10000] [--seats 40] [--processes 2]
                                         [--small-leads 1000] [--small-seats 10] [--skip-plain]

Builds both accounts on a SQLite file in a temporary folder (leads received over the open
period, one recorded call attempt each, counters rebuilt from the raw data), then renders
each report in a fresh process, as the RQ work horse runs a job: the product's job
(`render_report`: queries, chunked layout, the pool of `--processes` rendering processes,
the merge with pypdf, the atomic write) and, for the big report, the plain baseline — the
same cover, seat summary and lead detail as one WeasyPrint document with ordinary tables
(repeated headers, "page X of Y" from counter(pages)), rendered in one process.

Peak memory is `resource.getrusage` ru_maxrss: of the measuring process itself, and of its
children (the largest one: a rendering process of the pool; WeasyPrint's start-up also forks
short-lived `ldconfig`/`ld` probes of the ~140 MB process, counted there too). Wall times
are the job's own: the process start-up and imports, which a worker has done already, are
left out (and shown apart in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCES = ["Zillow", "Realtor.com", "Facebook", "Website", "Google Ads", "Referral"]
# (disposition, weight, contacted, closes)
OUTCOMES = [
    ("voicemail_no_answer", 50, False, False),
    ("callback_later", 14, True, False),
    ("not_interested_dnc", 9, True, True),
    ("live_transfer", 9, True, True),
    ("booked_appointment", 8, True, True),
    ("bad_data_dnc", 6, False, True),
]

PLAIN_TEMPLATE = """{% extends "pdf/_base.html" %}
{% block title %}{{ content.title }}{% endblock %}
{% block body %}
<style>
  @page { @bottom-right { content: "Page " counter(page) " of " counter(pages); } }
  body { font-size: 7.5pt; }
  td, th { padding: 1mm 1.4mm; white-space: nowrap; }
  .seat { break-before: page; }
  h2 { margin: 4mm 0 2mm; }
  .num { text-align: right; }
</style>
{% include "pdf/_report_cover.html" %}
<h2 class="seat">Seats</h2>
<table>
  <thead><tr>{% for c in summary_columns %}<th>{{ c.label }}</th>{% endfor %}</tr></thead>
  <tbody>{% for row in summary_rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}
  </tr>{% endfor %}</tbody>
</table>
<h2 class="seat">Lead detail</h2>
{% for title, meta, rows in detail %}
<h3>{{ title }}</h3><p class="muted">{{ meta }}</p>
<table>
  <thead><tr>{% for c in detail_columns %}<th>{{ c.label }}</th>{% endfor %}</tr></thead>
  <tbody>{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}
  </tr>{% endfor %}</tbody>
</table>
{% endfor %}
{% endblock %}
"""


def make_app(database_url: str, **config: Any) -> Any:
    folder = Path(database_url.removeprefix("sqlite:///")).parent
    os.environ.update(
        SEATWISE_ENV="test",
        SECRET_KEY="bench-secret-key-that-is-long-enough-1234",
        DATABASE_URL=database_url,
        FILES_DIR=str(folder / "files"),  # the reports' files stay in the bench's folder
    )
    os.environ.pop("REDIS_URL", None)
    from app import create_app

    return create_app({"TESTING": True, **config})


def build(database_url: str, slug: str, seats: int, leads: int, seed: int) -> int:
    """An agency with `seats` seats and `leads` leads in its open period; returns the id of
    its master report (PDF) of that period."""
    import sqlalchemy as sa

    from app.calls.operations import recompute_counters
    from app.extensions import db
    from app.models import (
        AccountKind,
        CallAttempt,
        Lead,
        Plan,
        Report,
        ReportFormat,
        Seat,
    )
    from app.onboarding.operations import create_account
    from app.seats.operations import PersonDetails, SeatDetails
    from app.seed import FIRST_NAMES, LAST_NAMES
    from app.tenancy import tenant_context, unscoped

    rng = random.Random(seed)

    def person_name() -> str:
        return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"

    start = (datetime.now(UTC) - timedelta(days=20)).date()
    plan = db.session.scalar(sa.select(Plan).where(Plan.code == "BENCH"))
    if plan is None:
        plan = Plan(code="BENCH", name="Scale 8000", allowance=8000, cpl_cents=800)
        plan.price_cents = plan.allowance * plan.cpl_cents
        db.session.add(plan)
        db.session.flush()
    new = create_account(
        name=f"Bench Agency {slug}",
        kind=AccountKind.AGENCY,
        plan=plan,
        owner_email=f"owner@{slug}.example",
        start=start,
        seats=tuple(
            SeatDetails(
                PersonDetails(person_name(), f"agent{n}@{slug}.example"),
                client_label=f"Client {n % 8 + 1:02d}",
            )
            for n in range(seats)
        ),
    )
    account = new.account
    account.slug = slug
    period_id = new.subscribed.period.id
    with tenant_context(account.id):
        seat_ids = list(db.session.scalars(sa.select(Seat.id).order_by(Seat.id)))
    db.session.commit()
    period_start = datetime.combine(start, datetime.min.time(), UTC) + timedelta(hours=5)
    span = (datetime.now(UTC) - timedelta(hours=12) - period_start).total_seconds()
    weights = [outcome[1] for outcome in OUTCOMES]
    with unscoped():
        first_id = (db.session.scalar(sa.select(sa.func.max(Lead.id))) or 0) + 1
    lead_rows, attempt_rows = [], []
    for n in range(leads):
        lead_id = first_id + n
        seat_id = seat_ids[n % seats]
        received = period_start + timedelta(seconds=rng.random() * span)
        first = received + timedelta(minutes=rng.choice([2, 5, 11, 25, 70, 400]) * rng.random() + 1)
        disposition, _w, contacted, closes = rng.choices(OUTCOMES, weights)[0]
        attempts = rng.randint(1, 6)
        lead_rows.append(
            {
                "id": lead_id,
                "account_id": account.id,
                "seat_id": seat_id,
                "external_id": f"{slug}-{n}",
                "name": person_name(),
                "phone": f"(917) 555-01{rng.randint(0, 99):02d}",
                "email": f"lead{n}@example.com",
                "source": rng.choice(SOURCES),
                "received_at": received,
                "first_attempt_at": first,
                "billed_period_id": period_id,
                "last_attempt_at": first,
                "last_disposition": disposition,
                "attempts_count": attempts,
                "contacted": contacted,
                "closed": closes,
            }
        )
        attempt_rows.append(
            {
                "account_id": account.id,
                "event_id": f"{slug}-e{n}",
                "seat_id": seat_id,
                "lead_id": lead_id,
                "attempted_at": first,
                "disposition": disposition,
                "duration_seconds": 60,
                "isa_agent": "Isa",
                "period_id": period_id,
            }
        )
    with unscoped():
        db.session.execute(sa.insert(Lead), lead_rows)
        db.session.execute(sa.insert(CallAttempt), attempt_rows)
    db.session.commit()
    recompute_counters(account.id)
    with tenant_context(account.id):
        report = Report(account_id=account.id, period_id=period_id, format=ReportFormat.PDF)
        db.session.add(report)
        db.session.commit()
        return report.id


def peak_rss_mb() -> dict[str, float]:
    """ru_maxrss (KiB on Linux) of this process and of its largest waited-for child."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self_mb": round(own, 1), "children_mb": round(children, 1)}


def measure(database_url: str, report_id: int, plain: bool, processes: int) -> dict[str, Any]:
    """In this (fresh) process: render the report the product's way, or the plain way."""
    started = time.perf_counter()
    app = make_app(database_url, REPORT_RENDER_PROCESSES=processes)
    with app.app_context():
        from app.pdf import render_pdf  # noqa: F401  (imported as a worker would have it)

        startup = time.perf_counter() - started
        began = time.perf_counter()
        if plain:
            pages, size = render_plain(report_id)
        else:
            pages, size = render_product(report_id)
        wall = time.perf_counter() - began
    return {
        "wall_s": round(wall, 2),
        "startup_s": round(startup, 2),
        "pages": pages,
        "bytes": size,
        **peak_rss_mb(),
        "load": os.getloadavg(),
    }


def render_product(report_id: int) -> tuple[int, int]:
    from app.extensions import db
    from app.models import Report, ReportStatus
    from app.reports.jobs import render_report
    from app.tenancy import unscoped

    render_report(report_id)
    with unscoped():
        report = db.session.get_one(Report, report_id)
        assert report.status is ReportStatus.READY, report.error
        return report.pages_total, report.size_bytes or 0


def render_plain(report_id: int) -> tuple[int, int]:
    """The same content as one WeasyPrint document with plain tables."""
    import io

    from flask import render_template_string
    from pypdf import PdfReader

    from app.calls.queries import format_speed
    from app.extensions import db
    from app.models import Account, Report, utcnow
    from app.pdf import render_pdf
    from app.reports import layout
    from app.reports.document import (
        DETAIL_COLUMNS,
        SUMMARY_COLUMNS,
        detail_cells,
        generated_label,
        seat_heading,
        summary_cells,
        summary_totals,
    )
    from app.reports.queries import report_content
    from app.reports.render import css_string
    from app.tenancy import tenant_context, unscoped

    with unscoped():
        account_id = db.session.get_one(Report, report_id).account_id
    with tenant_context(account_id):
        report = db.session.get_one(Report, report_id)
        content = report_content(report, db.session.get_one(Account, account_id), utcnow())
    today = content.generated_at.date()
    called = content.kpis.leads_called
    html = render_template_string(
        PLAIN_TEMPLATE,
        content=content,
        geometry=layout,
        generated=generated_label(content.generated_at),
        css_string=css_string,
        format_speed=format_speed,
        summary_columns=SUMMARY_COLUMNS,
        detail_columns=DETAIL_COLUMNS,
        summary_rows=[summary_cells(s, called) for s in content.seats] + [summary_totals(content)],
        detail=[
            (
                heading.title,
                heading.meta,
                [detail_cells(row, today) for row in group.rows],
            )
            for group in content.seat_leads
            for heading in [seat_heading(group.seat, len(group.rows), group.seat.called)]
        ],
    )
    data = render_pdf(html)
    return len(PdfReader(io.BytesIO(data)).pages), len(data)


def run_measurement(
    database_url: str, report_id: int, plain: bool, processes: int
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--measure",
        str(report_id),
        "--database-url",
        database_url,
        "--processes",
        str(processes),
    ]
    if plain:
        command.append("--plain")
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"measurement failed:\n{result.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["process_s"] = round(time.perf_counter() - started, 2)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--seats", type=int, default=40)
    parser.add_argument("--small-leads", type=int, default=1_000)
    parser.add_argument("--small-seats", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--skip-plain", action="store_true")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure is not None:
        figures = measure(args.database_url, args.measure, args.plain, args.processes)
        print(json.dumps(figures))
        return 0

    folder = Path(tempfile.mkdtemp(prefix="seatwise-bench-report-"))
    database_url = f"sqlite:///{folder / 'bench.db'}"
    app = make_app(database_url)
    app.logger.disabled = True  # no Redis here: the signup's "could not enqueue" is expected
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        began = time.perf_counter()
        big = build(database_url, "big", args.seats, args.leads, seed=7)
        small = build(database_url, "small", args.small_seats, args.small_leads, seed=8)
        print(f"data built in {time.perf_counter() - began:.1f}s ({folder})")

    print(f"load average before: {os.getloadavg()}")
    runs = {
        f"{args.small_leads:,} leads, {args.small_seats} seats (product)": run_measurement(
            database_url, small, False, args.processes
        ),
        f"{args.leads:,} leads, {args.seats} seats (product)": run_measurement(
            database_url, big, False, args.processes
        ),
    }
    if not args.skip_plain:
        # The baseline renders the big report's content again, into its own file.
        with app.app_context():
            from app.extensions import db
            from app.models import Report, ReportFormat
            from app.tenancy import unscoped

            with unscoped():
                source = db.session.get_one(Report, big)
                copy = Report(
                    account_id=source.account_id,
                    period_id=source.period_id,
                    format=ReportFormat.PDF,
                )
                db.session.add(copy)
                db.session.commit()
                plain_id = copy.id
        runs[f"{args.leads:,} leads, {args.seats} seats (plain WeasyPrint)"] = run_measurement(
            database_url, plain_id, True, args.processes
        )
    print(f"load average after: {os.getloadavg()}")
    print()
    print(
        "| report | pages | job wall time | peak RSS, job process | peak RSS, largest "
        "rendering process | file |"
    )
    print("|---|---|---|---|---|---|")
    for name, f in runs.items():
        # Without a pool the only children are WeasyPrint's start-up probes (ldconfig, ld).
        children = f"{f['children_mb']:.0f} MB" if "plain" not in name else "no pool"
        print(
            f"| {name} | {f['pages']} | {f['wall_s']:.1f} s | {f['self_mb']:.0f} MB | "
            f"{children} | {f['bytes'] / 1e6:.2f} MB |"
        )
    plain_key = next((k for k in runs if "plain" in k), None)
    if plain_key:
        product = runs[f"{args.leads:,} leads, {args.seats} seats (product)"]
        plain = runs[plain_key]
        peak = max(product["self_mb"], product["children_mb"])
        print()
        print(
            f"ratios, plain / product: wall time {plain['wall_s'] / product['wall_s']:.1f}x, "
            f"peak RSS per process {plain['self_mb'] / peak:.1f}x"
        )
    print(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
