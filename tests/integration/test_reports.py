"""Call reports: the PDF and CSV checked against the database, the rendering job's states,
the automatic master report at a period's close, and who may ask for and download what.

The PDF's text is read back with poppler's `pdftotext -layout` (rows come out as lines).
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.billing_portal.closing import close_periods
from app.calls.operations import record_attempt, record_lead
from app.calls.queries import ReportFilters, call_report_rows, format_speed
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    Disposition,
    Invoice,
    InvoiceLine,
    Lead,
    OutboxEmail,
    Report,
    ReportFormat,
    ReportStatus,
    Role,
    Seat,
    SeatUsage,
    User,
)
from app.pdf import files_root
from app.queue import get_queue
from app.reports import jobs
from app.reports.jobs import deliver_master_reports, render_report
from app.reports.layout import PAGE_LINES, Group, Heading, columns, paginate_table
from app.reports.queries import report_content
from app.reports.render import css_string
from app.seed import load_demo
from app.tenancy import tenant_context, unscoped
from app.usage.queries import period_totals
from tests import factories
from tests.conftest import Auth

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "reports"
NEW_YORK = ZoneInfo("America/New_York")
DISPOSITION_LABELS = "|".join(re.escape(d.label) for d in Disposition) + "|Not called yet"
# A lead row of the detail ends with its last disposition and its month key.
DETAIL_ROW = re.compile(rf"(?:{DISPOSITION_LABELS})\s+(?:M\d+|—)\s*$")


# --- helpers ----------------------------------------------------------------------------------


def pdf_pages(data: bytes) -> list[str]:
    """The PDF's text, page by page, as `pdftotext -layout` reads it."""
    result = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    )
    text = result.stdout.decode()
    # Unicode spaces (the rows are set with them) read as spaces.
    text = re.sub(r"[\u2000-\u200a]", " ", text)
    return text.split("\f")[:-1] if text.endswith("\f") else text.split("\f")


def column_starts(data: bytes, words: set[str], right_of: float = 400) -> list[float]:
    """Where (x, in points) each of `words` starts right of `right_of`, on every detail page."""
    result = subprocess.run(
        ["pdftotext", "-bbox", "-", "-"], input=data, capture_output=True, check=True
    )
    found = re.findall(r'<word xMin="([\d.]+)"[^>]*>([^<]*)</word>', result.stdout.decode())
    return [float(x) for x, word in found if word in words and float(x) > right_of]


def cells(line: str) -> list[str]:
    """A row of the PDF split into its cells (two spaces or more between cells)."""
    return re.split(r"\s{2,}", line.strip())


def cover_value(page: str, label: str) -> str:
    """On the cover, the value printed under `label` (labels sit above their values)."""
    lines = page.splitlines()
    for index, line in enumerate(lines):
        column = line.find(label)
        if column < 0:
            continue
        below = next(other for other in lines[index + 1 :] if other.strip())
        return below[column:].strip().split("  ")[0]
    raise AssertionError(f"{label!r} is not on the cover")


def report_file(report: Report) -> bytes:
    assert report.file_path is not None
    return (files_root() / report.file_path).read_bytes()


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def make_report(account: Account, **values: object) -> Report:
    with tenant_context(account.id):
        report = Report(account_id=account.id, **values)
        db.session.add(report)
        db.session.commit()
    return report


def reload(report: Report) -> Report:
    with unscoped():
        return db.session.scalars(
            sa.select(Report)
            .where(Report.id == report.id)
            .execution_options(populate_existing=True)
        ).one()


@pytest.fixture(autouse=True)
def _remove_report_files() -> Iterator[None]:
    """Report files written by a test are removed after it (the database is rolled back)."""
    folder = files_root() / "reports"
    before = set(folder.rglob("*")) if folder.exists() else set()
    yield
    if folder.exists():
        for path in sorted(set(folder.rglob("*")) - before, reverse=True):
            if path.is_file():
                path.unlink()
            elif not any(path.iterdir()):
                path.rmdir()


# --- the demo agency's master report ------------------------------------------------------------


@dataclass
class Demo:
    account: Account
    m2: BillingPeriod


@pytest.fixture
def demo(app: Flask) -> Demo:
    """The demo data (`flask seed-demo`): BrightPath's M2 is closed, with overage."""
    with app.test_request_context():
        load_demo(datetime.now(NEW_YORK))
    account = db.session.scalars(sa.select(Account).where(Account.slug == "brightpath")).one()
    with tenant_context(account.id):
        m2 = db.session.scalars(
            sa.select(BillingPeriod).where(BillingPeriod.month_index == 2)
        ).one()
    return Demo(account, m2)


def listed_leads(account: Account, period: BillingPeriod) -> list[Lead]:
    """What a period's report lists: leads received in it or first called in it."""
    with tenant_context(account.id):
        return list(
            db.session.scalars(
                sa.select(Lead).where(
                    sa.or_(
                        sa.and_(
                            Lead.received_at >= period.starts_at,
                            Lead.received_at < period.ends_at,
                        ),
                        Lead.billed_period_id == period.id,
                    )
                )
            )
        )


def test_the_demo_agencys_master_pdf_matches_the_database(demo: Demo) -> None:
    account, m2 = demo.account, demo.m2
    report = make_report(account, period_id=m2.id, format=ReportFormat.PDF)
    render_report(report.id)
    report = reload(report)
    assert report.status is ReportStatus.READY, report.error
    data = report_file(report)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "brightpath-master-M2.pdf").write_bytes(data)
    pages = pdf_pages(data)
    assert len(pages) == report.pages_total == report.pages_done
    assert report.size_bytes == len(data)
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page

    with tenant_context(account.id):
        totals = period_totals(m2.id)
        usage = {
            row.seat_id: row
            for row in db.session.scalars(sa.select(SeatUsage).where(SeatUsage.period_id == m2.id))
        }
        seats = {seat.reference: seat for seat in db.session.scalars(sa.select(Seat))}
        invoice = db.session.scalars(
            sa.select(Invoice).where(Invoice.closes_period_id == m2.id)
        ).one()
        overage = db.session.scalars(
            sa.select(InvoiceLine).where(
                InvoiceLine.invoice_id == invoice.id, InvoiceLine.kind == "overage"
            )
        ).all()
    leads = listed_leads(account, m2)

    cover = pages[0]
    assert "MASTER CALL REPORT" in cover
    assert "BrightPath Marketing" in cover
    assert f"All {len(seats)} seats" in cover
    assert cover_value(cover, "LEADS CALLED") == str(totals.leads_called)
    assert cover_value(cover, "Leads received") == str(totals.leads_received)
    assert cover_value(cover, "Leads called") == str(totals.leads_called)
    assert cover_value(cover, "Transfers + appointments") == str(
        totals.transfers + totals.appointments
    )
    assert cover_value(cover, "Leads listed") == str(len(leads))
    assert cover_value(cover, "Open leads") == str(sum(not lead.closed for lead in leads))
    # The overage is the closing invoice's: leads and money.
    assert overage, "the demo agency goes over its plan in M2"
    overage_leads = sum(line.quantity for line in overage)
    overage_cents = sum(line.amount_cents for line in overage)
    assert cover_value(cover, "OVERAGE") == f"{overage_leads} leads"
    assert (
        cover_value(cover, "OVERAGE COST") == f"${overage_cents // 100:,}.{overage_cents % 100:02d}"
    )
    assert cover_value(cover, "INVOICE") == invoice.number

    # The seat summary: one row per seat with the usage counters, and the counters' totals.
    text = "\n".join(pages)
    summary_rows = {
        row[1]: row
        for line in text.splitlines()
        if len(row := cells(line)) == 10 and row[1] in seats
    }
    assert set(summary_rows) == set(seats)
    for reference, row in summary_rows.items():
        counters = usage.get(seats[reference].id)
        received, called = (counters.leads_received, counters.leads_called) if counters else (0, 0)
        transfers = counters.transfers if counters else 0
        appointments = counters.appointments if counters else 0
        assert [int(row[2]), int(row[3]), int(row[5]), int(row[6])] == [
            received,
            called,
            transfers,
            appointments,
        ], reference
        open_leads = sum(
            1 for lead in leads if lead.seat_id == seats[reference].id and not lead.closed
        )
        assert int(row[8]) == open_leads, reference
    [all_seats] = [
        cells(line) for line in text.splitlines() if line.strip().startswith("All seats")
    ]
    assert [int(all_seats[1]), int(all_seats[2]), int(all_seats[4]), int(all_seats[5])] == [
        totals.leads_received,
        totals.leads_called,
        totals.transfers,
        totals.appointments,
    ]

    # The columns line up: the words that start the last two columns start at one x on every
    # row (a row is one line of text, its cells placed by measuring; see app.reports.typeset).
    starts = column_starts(data, {"Voicemail", "Bad", "Live", "Booked", "Callback", "Not"})
    assert len(starts) == len(leads)
    assert max(starts) - min(starts) < 0.3  # points
    months = column_starts(data, {"M1", "M2", "M3"}, right_of=500)
    assert max(months) - min(months) < 0.3

    # The lead detail: every listed lead once, under its seat.
    assert sum(1 for line in text.splitlines() if DETAIL_ROW.search(line)) == len(leads)
    for reference, seat in seats.items():
        count = sum(1 for lead in leads if lead.seat_id == seat.id)
        assert re.search(rf"{reference} · .*{count} leads? listed", text), reference


def test_the_demo_agencys_csv_has_a_row_per_lead_and_matches_the_database(demo: Demo) -> None:
    account, m2 = demo.account, demo.m2
    report = make_report(account, period_id=m2.id, format=ReportFormat.CSV)
    render_report(report.id)
    report = reload(report)
    assert report.status is ReportStatus.READY, report.error
    rows = csv_rows(report_file(report))
    leads = listed_leads(account, m2)
    assert len(rows) == len(leads)
    assert list(rows[0]) == [
        "Client",
        "Seat",
        "Seat reference",
        "Lead",
        "Source",
        "Received (America/New_York)",
        "First attempt (America/New_York)",
        "Speed to lead (minutes)",
        "Attempts",
        "Last disposition",
        "Month key",
    ]
    with tenant_context(account.id):
        seats = {seat.id: seat for seat in db.session.scalars(sa.select(Seat))}
    by_reference: dict[str, int] = {}
    for row in rows:
        by_reference[row["Seat reference"]] = by_reference.get(row["Seat reference"], 0) + 1
    for seat_id, seat in seats.items():
        assert by_reference.get(seat.reference, 0) == sum(
            1 for lead in leads if lead.seat_id == seat_id
        )
        assert all(
            row["Client"] == seat.client_label
            for row in rows
            if row["Seat reference"] == seat.reference
        )
    called_in_m2 = [row for row in rows if row["Month key"] == "M2"]
    assert len(called_in_m2) == period_totals_called(account, m2)


def period_totals_called(account: Account, period: BillingPeriod) -> int:
    with tenant_context(account.id):
        return period_totals(period.id).leads_called


# --- a hand-built agency --------------------------------------------------------------------------


@dataclass
class Example:
    account: Account
    seat: Seat
    other_seat: Seat
    m1: BillingPeriod


@pytest.fixture
def account() -> Account:
    """An agency whose M1 is February 2025; `owner`, `viewer`, `seat_member` belong to it."""
    return factories.subscribed_account(kind="agency", seats=2, start=date(2025, 2, 1))


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=NEW_YORK)


@pytest.fixture
def example(account: Account) -> Example:
    """Five leads on the first seat (one with a name a spreadsheet would run), one on the
    other; M1 (February) closed."""
    with tenant_context(account.id):
        seat, other_seat = db.session.scalars(sa.select(Seat).order_by(Seat.id)).all()

    def lead(on: Seat, key: str, name: str, source: str, received: datetime) -> Lead:
        found, _ = record_lead(on, key, name, "(917) 555-0101", "", source, received)
        return found

    olivia = lead(seat, "A1", "Olivia Test", "Zillow", at(2, 3, 9))
    record_attempt(seat, olivia, "e1", at(2, 3, 9, 4), Disposition.LIVE_TRANSFER, 60, "Maya", "")
    formula = lead(seat, "A2", '=HYPERLINK("http://x.example","click")', "+Facebook", at(2, 4, 10))
    record_attempt(
        seat, formula, "e2", at(2, 4, 12), Disposition.VOICEMAIL_NO_ANSWER, 9, "Maya", ""
    )
    lead(seat, "A3", "Never Called", "@Website", at(2, 5, 8))
    emma = lead(seat, "A4", "Emma\nNewline", "-Referral", at(2, 6, 8))
    record_attempt(
        seat, emma, "e4", at(2, 6, 8, 2), Disposition.BOOKED_APPOINTMENT, 300, "Maya", ""
    )
    other = lead(other_seat, "B1", "Other Seat Lead", "Zillow", at(2, 10, 10))
    record_attempt(
        other_seat, other, "e5", at(2, 10, 11), Disposition.CALLBACK_LATER, 60, "Maya", ""
    )
    with tenant_context(account.id):
        m1 = db.session.scalars(
            sa.select(BillingPeriod).order_by(BillingPeriod.month_index)
        ).first()
    assert m1 is not None
    db.session.commit()
    result = close_periods([m1.id], m1.ends_at + timedelta(hours=3), trigger="test")
    assert (result.closed, result.failures) == (1, [])
    return Example(account, seat, other_seat, m1)


def test_csv_cells_a_spreadsheet_would_run_are_neutralised(example: Example) -> None:
    report = make_report(example.account, period_id=example.m1.id, format=ReportFormat.CSV)
    render_report(report.id)
    rows = csv_rows(report_file(reload(report)))
    leads = {row["Lead"]: row for row in rows}
    assert '\'=HYPERLINK("http://x.example","click")' in leads
    assert leads['\'=HYPERLINK("http://x.example","click")']["Source"] == "'+Facebook"
    assert leads["Never Called"]["Source"] == "'@Website"
    assert leads["Never Called"]["Last disposition"] == "Not called yet"
    assert leads["Emma\nNewline"]["Source"] == "'-Referral"  # the CSV keeps the data as it came
    assert leads["Olivia Test"]["Speed to lead (minutes)"] == "4.0"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_a_seat_report_lists_the_seat_call_reports_leads(example: Example) -> None:
    """The PDF of one seat lists exactly the leads of that seat's call report (the colleague
    page, `app.calls.queries`), with the same KPIs."""
    report = make_report(
        example.account, period_id=example.m1.id, seat_id=example.seat.id, format=ReportFormat.PDF
    )
    render_report(report.id)
    text = "\n".join(pdf_pages(report_file(reload(report))))
    with tenant_context(example.account.id):
        rows = call_report_rows(example.seat, ReportFilters(period_key="M1"), NEW_YORK)
        content = report_content(reload(report), example.account, datetime.now(NEW_YORK))
    listed = {lead.lead_id for group in content.seat_leads for lead in group.rows}
    assert listed == {row.lead_id for row in rows}
    assert sum(1 for line in text.splitlines() if DETAIL_ROW.search(line)) == len(rows) == 4
    assert "Other Seat Lead" not in text
    assert "Emma Newline" in text  # a line break from the dialer never breaks a row
    assert "Seat call report" in text
    assert "Overage" not in text  # the money is the account's, not a seat's
    assert format_speed(content.kpis.speed_median) in text


def test_a_date_range_report_lists_the_leads_received_on_those_days(example: Example) -> None:
    report = make_report(
        example.account,
        date_from=date(2025, 2, 4),
        date_to=date(2025, 2, 6),
        format=ReportFormat.CSV,
    )
    render_report(report.id)
    rows = csv_rows(report_file(reload(report)))
    assert sorted(row["Seat reference"] for row in rows) == [example.seat.reference] * 3
    with tenant_context(example.account.id):
        content = report_content(reload(report), example.account, datetime.now(NEW_YORK))
    kpis = content.kpis
    # Received Feb 4-6: the formula lead (voicemail), Never Called, Emma (appointment).
    assert (kpis.leads_received, kpis.leads_called, kpis.leads_contacted) == (3, 2, 1)
    assert (kpis.transfers, kpis.appointments, kpis.open_leads) == (0, 1, 2)
    assert content.billing is None


# --- the rendering job ----------------------------------------------------------------------------


def test_the_job_never_renders_a_ready_report_again(example: Example) -> None:
    report = make_report(example.account, period_id=example.m1.id, format=ReportFormat.PDF)
    render_report(report.id)
    first = reload(report)
    assert first.status is ReportStatus.READY
    path, finished = first.file_path, first.finished_at
    assert render_report(report.id) == f"report {report.id} is ready already"
    again = reload(report)
    assert (again.file_path, again.finished_at) == (path, finished)


def test_a_report_left_rendering_by_a_killed_worker_is_rendered_from_scratch(
    example: Example,
) -> None:
    report = make_report(example.account, period_id=example.m1.id, format=ReportFormat.PDF)
    render_report(report.id)
    done = reload(report)
    old_path = done.file_path
    assert old_path is not None
    # As a worker killed mid-render leaves it: still "rendering", a temporary file beside.
    with tenant_context(example.account.id):
        done.status, done.pages_done = ReportStatus.RENDERING, 3
        db.session.commit()
    partial = files_root() / f"reports/{example.account.id}/.partial-killed"
    partial.write_bytes(b"%PDF-1.7 half")
    render_report(report.id)
    again = reload(report)
    assert again.status is ReportStatus.READY
    assert again.file_path != old_path
    assert not (files_root() / old_path).exists()
    assert report_file(again).startswith(b"%PDF")
    assert again.pages_done == again.pages_total


def test_a_failing_render_is_marked_failed_with_its_reason_and_raised_for_rqs_retry(
    example: Example, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> bytes:
        raise RuntimeError("the renderer ran out of paper")

    monkeypatch.setattr(jobs, "report_csv", broken)
    report = make_report(example.account, period_id=example.m1.id, format=ReportFormat.CSV)
    with pytest.raises(RuntimeError, match="out of paper"):
        render_report(report.id)
    failed = reload(report)
    assert failed.status is ReportStatus.FAILED
    assert (
        failed.error
        == "The report could not be rendered (RuntimeError: the renderer ran out of paper)."
    )
    assert failed.file_path is None


@pytest.mark.parametrize("then_fail", [False, True])
def test_a_run_that_another_run_beat_leaves_the_ready_report_alone(
    example: Example, monkeypatch: pytest.MonkeyPatch, then_fail: bool
) -> None:
    """Two runs of one report (an RQ retry and a Retry click, or a worker thought dead): the
    first to finish makes it ready; the other neither replaces its file nor marks it failed."""
    report = make_report(example.account, period_id=example.m1.id, format=ReportFormat.CSV)
    original = jobs.report_csv

    def beaten(content: object) -> bytes:
        data = original(content)  # type: ignore[arg-type]
        jobs._update(report.id, status=ReportStatus.READY, file_path="reports/first.csv")
        db.session.commit()
        if then_fail:
            raise RuntimeError("disk full")
        return data

    monkeypatch.setattr(jobs, "report_csv", beaten)
    folder = files_root() / f"reports/{example.account.id}"
    before = set(folder.glob("*")) if folder.exists() else set()
    if then_fail:
        with pytest.raises(RuntimeError):
            render_report(report.id)
    else:
        render_report(report.id)
    after = reload(report)
    assert (after.status, after.file_path, after.error) == (
        ReportStatus.READY,
        "reports/first.csv",
        "",
    )
    after_files = set(folder.glob("*")) if folder.exists() else set()
    assert after_files - before == set()  # the beaten run's own file is gone


def test_a_reversed_date_range_fails_with_a_readable_reason(example: Example) -> None:
    report = make_report(
        example.account,
        date_from=date(2025, 2, 6),
        date_to=date(2025, 2, 4),
        format=ReportFormat.PDF,
    )
    with pytest.raises(ValueError, match="ends before it starts"):
        render_report(report.id)
    assert reload(report).error == "The report's date range ends before it starts."


def test_progress_is_committed_page_by_page(
    example: Example, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []
    original = jobs._progress_of

    def spy(report_id: int) -> jobs.Progress:
        progress = original(report_id)

        def record(done: int, total: int) -> None:
            progress(done, total)
            row = reload(Report(id=report_id))
            seen.append((row.pages_done, row.pages_total))

        return record

    monkeypatch.setattr(jobs, "_progress_of", spy)
    report = make_report(example.account, period_id=example.m1.id, format=ReportFormat.PDF)
    render_report(report.id)
    total = reload(report).pages_total
    assert seen[0] == (0, total)
    assert seen[-1] == (total, total)


# --- the automatic master report ----------------------------------------------------------------


def test_the_close_makes_one_master_report_for_multi_seat_accounts_and_emails_the_owners(
    app: Flask,
) -> None:
    agency = factories.subscribed_account(kind="agency", seats=3, start=date(2025, 2, 1))
    single = factories.subscribed_account(kind="brokerage", seats=1, start=date(2025, 2, 1))
    solo = factories.subscribed_account(kind="solo", seats=1, start=date(2025, 2, 1))
    owner = factories.member(agency, Role.OWNER, email="owner@agency.example")
    factories.member(agency, Role.VIEWER, email="viewer@agency.example")
    periods = []
    for account in (agency, single, solo):
        with tenant_context(account.id):
            periods.append(db.session.scalars(sa.select(BillingPeriod)).one())
    db.session.commit()
    result = close_periods([p.id for p in periods], periods[0].ends_at + timedelta(hours=3), "test")
    assert result.closed == 3
    ids = deliver_master_reports([p.id for p in periods])
    assert deliver_master_reports([p.id for p in periods]) == ids  # a second run makes nothing new
    with unscoped():
        reports = db.session.scalars(sa.select(Report).where(Report.automatic.is_(True))).all()
    assert [(r.account_id, r.period_id, r.seat_id, r.format) for r in reports] == [
        (agency.id, periods[0].id, None, ReportFormat.PDF)
    ]
    render_report(reports[0].id)
    render_report(reports[0].id)  # ready already: no second email
    with unscoped():
        emails = db.session.scalars(
            sa.select(OutboxEmail).where(OutboxEmail.subject.contains("master call report"))
        ).all()
    assert [email.to_address for email in emails] == [owner.email]
    assert f"/a/{agency.slug}/reports/{reports[0].id}/download" in emails[0].body_text
    assert reload(reports[0]).emailed_at is not None


# --- the pages, the form and the downloads ----------------------------------------------------


@pytest.fixture
def logged_in(client: FlaskClient, auth: Auth, owner: User) -> FlaskClient:
    auth.login(owner)
    return client


def test_asking_for_a_report_queues_it_and_lists_it_with_a_progress_bar(
    example: Example, logged_in: FlaskClient
) -> None:
    base = f"/a/{example.account.slug}/reports/"
    page = logged_in.get(base)
    assert page.status_code == 200
    assert b"Master report: all seats" in page.data
    response = logged_in.post(base, data={"scope": "master", "period": "M1", "format": "csv"})
    assert response.status_code == 303
    with tenant_context(example.account.id):
        report = db.session.scalars(sa.select(Report)).one()
    assert (report.period_id, report.seat_id, report.format) == (
        example.m1.id,
        None,
        ReportFormat.CSV,
    )
    assert report.status is ReportStatus.QUEUED
    assert report.job_id in get_queue("reports").job_ids
    listing = logged_in.get(base).get_data(as_text=True)
    assert f'id="report-{report.id}"' in listing
    assert "<progress" in listing
    assert 'hx-trigger="every 1s"' in listing
    row = logged_in.get(f"{base}{report.id}", headers={"HX-Request": "true"})
    assert row.get_data(as_text=True).lstrip().startswith(f'<tr id="report-{report.id}"')
    assert "HX-Request" in row.headers["Vary"]


def test_the_request_form_refuses_reversed_dates(example: Example, logged_in: FlaskClient) -> None:
    response = logged_in.post(
        f"/a/{example.account.slug}/reports/",
        data={
            "scope": "master",
            "period": "dates",
            "date_from": "2025-02-10",
            "date_to": "2025-02-01",
            "format": "pdf",
        },
    )
    assert response.status_code == 422
    assert b"The last day comes before the first." in response.data
    with tenant_context(example.account.id):
        assert db.session.scalar(sa.select(sa.func.count(Report.id))) == 0


def test_a_ready_report_downloads_as_a_private_attachment(
    example: Example, logged_in: FlaskClient
) -> None:
    report = make_report(example.account, period_id=example.m1.id, format=ReportFormat.PDF)
    url = f"/a/{example.account.slug}/reports/{report.id}/download"
    assert logged_in.get(url).status_code == 404  # not rendered yet
    render_report(report.id)
    response = logged_in.get(url)
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename={example.account.slug}-master-report-M1.pdf"
    )
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.data == report_file(reload(report))
    response.close()


def test_a_failed_report_shows_its_reason_and_a_retry_button_that_queues_it_again(
    example: Example, logged_in: FlaskClient
) -> None:
    report = make_report(
        example.account,
        period_id=example.m1.id,
        format=ReportFormat.PDF,
        status=ReportStatus.FAILED,
        error="The report's file could not be written (No space left on device).",
    )
    base = f"/a/{example.account.slug}/reports/"
    page = logged_in.get(base).get_data(as_text=True)
    assert "No space left on device" in page
    assert f'action="{base}{report.id}/retry"' in page
    response = logged_in.post(f"{base}{report.id}/retry", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<progress" in response.get_data(as_text=True)
    again = reload(report)
    assert (again.status, again.error) == (ReportStatus.QUEUED, "")
    assert again.job_id in get_queue("reports").job_ids


def test_a_seat_member_sees_asks_for_and_downloads_only_their_own_seats_reports(
    example: Example, client: FlaskClient, auth: Auth, seat_member: User
) -> None:
    own = make_report(
        example.account, period_id=example.m1.id, seat_id=example.seat.id, format=ReportFormat.CSV
    )
    other = make_report(
        example.account,
        period_id=example.m1.id,
        seat_id=example.other_seat.id,
        format=ReportFormat.CSV,
    )
    master = make_report(example.account, period_id=example.m1.id, format=ReportFormat.CSV)
    for report in (own, other, master):
        render_report(report.id)
    auth.login(seat_member)
    base = f"/a/{example.account.slug}/reports/"
    page = client.get(base).get_data(as_text=True)
    assert f'id="report-{own.id}"' in page
    assert f'id="report-{other.id}"' not in page
    assert f'id="report-{master.id}"' not in page
    assert "Master report" not in page
    download = client.get(f"{base}{own.id}/download")
    assert download.status_code == 200
    download.close()
    for report in (other, master):
        assert client.get(f"{base}{report.id}").status_code == 404
        assert client.get(f"{base}{report.id}/download").status_code == 404
        assert client.post(f"{base}{report.id}/retry").status_code == 404
    # The master report and another seat's are not among the choices: refused as such.
    for scope in ("master", str(example.other_seat.id)):
        response = client.post(base, data={"scope": scope, "period": "M1", "format": "pdf"})
        assert response.status_code == 422
    response = client.post(
        base, data={"scope": str(example.seat.id), "period": "M1", "format": "pdf"}
    )
    assert response.status_code == 303


# --- plain pieces ---------------------------------------------------------------------------------


def test_css_strings_escape_everything_that_could_end_them() -> None:
    escaped = css_string('Harbor "Realty" </style><img src=x> \\ ;}')
    assert escaped.startswith('"')
    assert escaped.endswith('"')
    assert not set(escaped[1:-1]) & set("\"'<>;}{")
    assert "\\22 " in escaped
    assert "\\3c " in escaped


def test_pagination_never_overfills_a_page_and_continues_groups_under_their_heading() -> None:
    table = columns(("A", 1), ("B", 1, True))
    groups = [
        Group(Heading(f"Seat {n}", "meta", level=2), [(f"lead {i}", str(i)) for i in range(size)])
        for n, size in enumerate([3, 0, 120, 47, 1])
    ]
    pages = paginate_table(Heading("Lead detail"), table, groups, 5, header_per_group=True)
    assert [page.number for page in pages] == list(range(5, 5 + len(pages)))
    assert all(page.lines <= PAGE_LINES for page in pages)
    rows = [
        row
        for page in pages
        for block in page.blocks
        if block.kind == "rows"
        for row in block.cells
    ]  # type: ignore[union-attr]
    assert len(rows) == 3 + 120 + 47 + 1
    for page in pages[1:]:
        first = page.blocks[0]
        if first.kind == "heading" and first.continued:  # type: ignore[union-attr]
            assert page.blocks[1].kind == "header"
    # A heading is never left at a page's foot without rows.
    for page in pages:
        assert page.blocks[-1].kind not in ("heading", "header")
