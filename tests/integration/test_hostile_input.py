"""Hostile input in every field a user or the dialer fills: names, notes, client labels, CSV
cells and API payloads.

Markup comes back as text on the pages (stored and reflected), in the PDFs and in the mails;
WeasyPrint fetches nothing a user wrote (a local HTTP server counts every request it gets);
spreadsheet cells that would run as a formula are neutralised in every CSV export; oversized and
malformed bodies get a clear 4xx answer.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, request
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.api.auth import create_api_key
from app.billing_portal.notify import post_to_team
from app.calls.importer import COLUMN_NAMES, import_call_report
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    IngestionError,
    Invoice,
    Lead,
    OutboxEmail,
    PeriodStatus,
    Report,
    ReportFormat,
    ReportStatus,
    Role,
    Seat,
    User,
)
from app.pdf import files_root, render_pdf
from app.reports.jobs import render_report
from app.security import MAX_FORM_BYTES, MAX_UPLOAD_BYTES
from app.settings import set_setting
from app.tenancy import tenant_context, unscoped
from tests import factories
from tests.conftest import TEST_CONFIG, Auth, app_on_the_test_connection
from tests.onboarding_forms import seat_form, signup_form

SCRIPT = "<script>alert('sw')</script>"
BREAKOUT = '"><img src=x onerror=alert(1)>'
# Raw, any of these on a page would be markup that came from user data.
RAW_MARKERS = ("<script>alert", "<img src=x", '"><img', '<img src="http://127.0.0.1', "<b>bold")
FORMULAS = ('=HYPERLINK("http://evil.example","x")', "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1")


# --- a server that counts what the PDF renderer asks for ---------------------------------------


class Probe:
    """A local HTTP server that records every path requested of it."""

    def __init__(self) -> None:
        hits: list[str] = []
        posted: list[Any] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                posted.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.hits = hits
        self.posted = posted  # JSON bodies POSTed (a webhook's deliveries)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def markup(self, where: str) -> str:
        """Markup that would make a renderer fetch `<url>/<where>-...` if it were ever live."""
        return (
            f'<img src="{self.url}/{where}-img"><link rel=stylesheet href="{self.url}/{where}-css">'
            f'<b style="background:url({self.url}/{where}-bg)">bold</b>'
        )


@pytest.fixture
def probe() -> Iterator[Probe]:
    probe = Probe()
    probe.thread.start()
    yield probe
    probe.server.shutdown()
    probe.server.server_close()


# --- an account full of hostile data ------------------------------------------------------------


class Hostile:
    def __init__(self, account: Account, owner: User, seat: Seat, api_key: str) -> None:
        self.account, self.owner, self.seat, self.api_key = account, owner, seat, api_key


def post_attempts(client: FlaskClient, key: str, attempts: list[dict[str, Any]]) -> None:
    response = client.post(
        "/api/v1/call-attempts",
        json={"attempts": attempts},
        headers={"Authorization": f"Bearer {key}"},
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["errors"] == 0, body


def attempt(seat: Seat, n: int, name: str, **more: str) -> dict[str, Any]:
    now = datetime.now(UTC) - timedelta(minutes=10)
    return {
        "event_id": f"hostile-{n}",
        "seat": seat.reference,
        "lead_external_id": more.pop("external_id", f"hostile-lead-{n}"),
        "lead": {
            "name": name,
            "phone": f"+1415555{n:04d}",
            "source": more.pop("source", "Zillow"),
            "received_at": (now - timedelta(minutes=5)).isoformat(),
        },
        "attempted_at": now.isoformat(),
        "disposition": "live_transfer",
        "duration_seconds": 42,
        "isa_agent": more.pop("isa_agent", "Jordan"),
        "notes": more.pop("notes", ""),
    }


@pytest.fixture
def hostile(client: FlaskClient, probe: Probe) -> Hostile:
    """An agency named with markup; a seat added through the real form with markup in every
    text field; leads and notes with markup from the API; formula-like names from the API and
    from a CSV import."""
    account = factories.subscribed_account(
        kind="agency", seats=1, name=f"Acme {SCRIPT} {probe.markup('account')}"[:200]
    )
    owner = factories.member(account, Role.OWNER, name=f"Owner {BREAKOUT}")
    key = create_api_key("hostile").secret
    db.session.commit()  # a request that rolls back must not take the fixtures with it
    Auth(client).login(owner)
    form = seat_form(
        client_label=f"Client {BREAKOUT}",
        notes=f"Note {SCRIPT} {probe.markup('seat-notes')}",
        **{"primary-name": f"Primary {SCRIPT}", "backup-name": f"Backup {BREAKOUT}"},
    )
    form.update({"backup-email": "backup@summit.example", "backup-mobile": "(312) 555-0142"})
    response = client.post(f"/a/{account.slug}/seats/new", data=form)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    with tenant_context(account.id):
        seat = db.session.scalars(
            sa.select(Seat).where(Seat.client_label == f"Client {BREAKOUT}")
        ).one()
    post_attempts(
        client,
        key,
        [
            attempt(
                seat,
                1,
                f"Lead {SCRIPT}{BREAKOUT}",
                source="<b>bold</b>",
                isa_agent=f"Agent {BREAKOUT}",
                notes=f"{SCRIPT} {probe.markup('notes')}",
            ),
            attempt(seat, 2, probe.markup("lead")[:200], external_id=f"ext {BREAKOUT}"),
        ]
        + [attempt(seat, 10 + n, formula) for n, formula in enumerate(FORMULAS)],
    )
    import_rows(seat)
    return Hostile(account, owner, seat, key)


def import_rows(seat: Seat) -> None:
    """Formula-like and markup cells through the dialer's CSV export importer."""
    now = datetime.now(UTC) - timedelta(minutes=30)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMN_NAMES)
    for n, name in enumerate(("=1+2", f"Imported {SCRIPT}")):
        writer.writerow(
            [
                f"import-{n}",
                seat.reference,
                f"@import-{n}" if n == 0 else f"import-lead {BREAKOUT}",
                name,
                f"+1 415 555 02{n:02d}",
                "",
                "-Referral" if n == 0 else "<b>bold</b>",
                (now - timedelta(minutes=5)).isoformat(),
                now.isoformat(),
                "Live Transfer",
                "60",
                f"Agent {SCRIPT}",
                f"=cmd|' /C calc'!A0 {SCRIPT}",
            ]
        )
    result = import_call_report(io.StringIO(out.getvalue()), dry_run=False)
    assert result.clean, result
    assert result.attempts_created == 2
    db.session.commit()


def lead_id(hostile: Hostile, external_id: str) -> int:
    with tenant_context(hostile.account.id):
        found: int = db.session.scalars(
            sa.select(Lead.id).where(Lead.external_id == external_id)
        ).one()
    return found


def assert_escaped(url: str, html: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in html, f"{url}: {marker!r} came through as markup"


# --- HTML pages -------------------------------------------------------------------------------


def test_markup_in_every_field_is_text_on_the_pages(
    client: FlaskClient, hostile: Hostile, operator: User
) -> None:
    tenant = f"/a/{hostile.account.slug}"
    seat = f"{tenant}/seats/{hostile.seat.id}"
    urls = [
        f"{tenant}/",
        f"{tenant}/seats/",
        seat,
        f"{seat}/usage",
        f"{seat}/calls",
        f"{seat}/leads/{lead_id(hostile, 'hostile-lead-1')}",
        f"{seat}/leads/{lead_id(hostile, 'import-lead ' + BREAKOUT)}",
        f"{tenant}/reports/",
        f"{tenant}/billing/",
        f"{tenant}/members",
        f"{tenant}/audit",
    ]
    pages = {}
    for url in urls:
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, url
            assert_escaped(url, response.get_data(as_text=True))
        pages[url] = response.get_data(as_text=True)
    # The text is there, escaped: shown as written, not dropped.
    assert "Lead &lt;script&gt;alert(&#39;sw&#39;)&lt;/script&gt;" in pages[urls[5]]
    assert "Client &#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in pages[seat]
    assert "Imported &lt;script&gt;" in pages[urls[4]]
    Auth(client).logout()
    Auth(client).login(operator)
    response = client.get("/ops/")
    assert response.status_code == 200
    assert "Acme &lt;script&gt;" in response.get_data(as_text=True)
    assert_escaped("/ops/", response.get_data(as_text=True))


@pytest.mark.parametrize(
    ("path", "argument"),
    [
        ("/seats/", "q"),
        ("/seats/{seat}/calls", "q"),
        ("/seats/{seat}/calls", "source"),
        ("/seats/{seat}/calls", "period"),
        ("/billing/choose", "leads"),
        ("/audit", "q"),
        ("/", "period"),
    ],
)
def test_markup_in_a_query_string_is_not_reflected_as_markup(
    client: FlaskClient, auth: Auth, owner: User, account: Account, path: str, argument: str
) -> None:
    auth.login(owner)
    url = f"/a/{account.slug}" + path.format(seat=factories.first_seat(account).id)
    for value in (SCRIPT, BREAKOUT, "<b>bold</b>"):
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, query_string={argument: value}, headers=headers)
            assert response.status_code < 500, (url, argument)
            assert_escaped(f"{url}?{argument}=", response.get_data(as_text=True))


# --- CSV exports ------------------------------------------------------------------------------


def neutralised(cell: str) -> bool:
    return not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_the_call_report_csv_neutralises_formula_cells(
    client: FlaskClient, hostile: Hostile
) -> None:
    response = client.get(f"/a/{hostile.account.slug}/seats/{hostile.seat.id}/calls.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    header, body = rows[0], rows[1:]
    by_name = {row[header.index("Lead")]: row for row in body}
    for formula in (*FORMULAS, "=1+2"):
        assert f"'{formula}" in by_name, formula  # kept, with a leading quote
    for row in body:
        assert all(neutralised(cell) for cell in row), row
    imported = by_name["'=1+2"]
    assert imported[header.index("Source")] == "'-Referral"
    assert imported[header.index("Lead reference")] == "'@import-0"


def test_the_master_report_csv_neutralises_formula_cells(hostile: Hostile) -> None:
    report = make_report(hostile, ReportFormat.CSV)
    render_report(report.id)
    data = report_bytes(report)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    names = {row[header.index("Lead")] for row in body}
    assert {f"'{formula}" for formula in (*FORMULAS, "=1+2")} <= names
    for row in body:
        assert all(neutralised(cell) for cell in row), row


# --- PDFs -------------------------------------------------------------------------------------


def make_report(hostile: Hostile, report_format: ReportFormat) -> Report:
    with tenant_context(hostile.account.id):
        period = db.session.scalars(
            sa.select(BillingPeriod).where(BillingPeriod.status == PeriodStatus.OPEN)
        ).one()
        report = Report(account_id=hostile.account.id, period_id=period.id, format=report_format)
        db.session.add(report)
        db.session.commit()
    return report


def report_bytes(report: Report) -> bytes:
    with unscoped():
        query = sa.select(Report).where(Report.id == report.id)
        done = db.session.scalars(query.execution_options(populate_existing=True)).one()
    assert done.status is ReportStatus.READY, done.error
    assert done.file_path is not None
    path = files_root() / done.file_path
    data = path.read_bytes()
    path.unlink()
    return data


def pdf_text(data: bytes) -> str:
    result = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    )
    return result.stdout.decode()


def squeezed(text: str) -> str:
    """The text without its white space (a PDF's lines wrap and its columns are spaced)."""
    return "".join(text.split())


def test_the_report_pdf_shows_markup_as_text_and_fetches_nothing(
    hostile: Hostile, probe: Probe
) -> None:
    report = make_report(hostile, ReportFormat.PDF)
    render_report(report.id)
    text = squeezed(pdf_text(report_bytes(report)))
    assert probe.hits == []
    assert "Acme<script>alert('sw')</script><imgsrc=" in text
    assert "Lead<script>" in text


def test_the_invoice_pdf_shows_markup_as_text_and_fetches_nothing(
    client: FlaskClient, hostile: Hostile, probe: Probe
) -> None:
    with tenant_context(hostile.account.id):
        invoice = db.session.scalars(sa.select(Invoice).order_by(Invoice.id)).first()
        assert invoice is not None
    response = client.get(f"/a/{hostile.account.slug}/billing/invoices/{invoice.id}.pdf")
    assert response.status_code == 200
    data = response.get_data()
    response.close()
    assert probe.hits == []
    text = squeezed(pdf_text(data))
    assert "Acme<script>alert('sw')</" in text
    assert '<imgsrc="http://127.0.0.1' in text


def test_the_renderer_fetches_nothing_even_from_live_markup(app: Flask, probe: Probe) -> None:
    """Were markup ever to reach a document unescaped, the renderer still refuses every URL
    but the app's own static files."""
    html = (
        f"<html><head><style>@import url({probe.url}/import); "
        f"body {{ background: url({probe.url}/bg) }}"
        f"@font-face {{ font-family: X; src: url({probe.url}/font) }}</style>"
        f'<link rel="stylesheet" href="{probe.url}/link"></head><body>'
        f'<img src="{probe.url}/img"><img src="file:///etc/passwd">'
        f'<object data="{probe.url}/object"></object><iframe src="{probe.url}/frame"></iframe>'
        f'<p style="font-family: X">text</p></body></html>'
    )
    with app.test_request_context():
        data = render_pdf(html)
    assert data.startswith(b"%PDF")
    assert probe.hits == []
    assert "root:" not in pdf_text(data)


# --- mail -------------------------------------------------------------------------------------


def outbox(to_address: str) -> OutboxEmail:
    with unscoped():
        email: OutboxEmail = db.session.scalars(
            sa.select(OutboxEmail)
            .where(OutboxEmail.to_address == to_address)
            .order_by(OutboxEmail.id.desc())
        ).first()
    assert email is not None, f"no mail to {to_address}"
    return email


def test_markup_in_names_is_text_in_the_mail(client: FlaskClient, hostile: Hostile) -> None:
    response = client.post(
        f"/a/{hostile.account.slug}/members/invite",
        data={"email": "new@member.example", "name": f"New {SCRIPT}", "role": "viewer"},
    )
    assert response.status_code < 400, response.status_code
    email = outbox("new@member.example")
    assert_escaped("the invitation", email.body_html)
    assert "Hello New &lt;script&gt;alert(&#39;sw&#39;)&lt;/script&gt;" in email.body_html
    assert "Owner &#34;&gt;&lt;img src=x onerror=alert(1)&gt; invited you" in email.body_html
    assert "<strong>Acme &lt;script&gt;" in email.body_html
    # The plain text part and the subject are text: the names as written.
    assert f"Owner {BREAKOUT} invited you to Acme {SCRIPT}" in email.subject


def test_a_line_break_in_a_name_cannot_add_mail_headers(client: FlaskClient) -> None:
    plan = factories.make_plan()
    db.session.commit()
    form = signup_form(plan, "agency", company="Acme\r\nBcc: victim@evil.example")
    assert client.post("/signup", data=form).status_code == 303
    email = outbox("morgan@brightpath.example")
    assert email.subject == "Your Seatwise portal for Acme Bcc: victim@evil.example"
    # What the mail job sends: a message with that one Subject and no other header from it.
    message = EmailMessage()
    message["Subject"] = email.subject
    assert message.keys() == ["Subject"]


def test_markup_in_names_is_text_in_the_team_notice(app: Flask, probe: Probe) -> None:
    set_setting("slack_webhook_url", f"{probe.url}/hooks/seatwise", None)
    with app.test_request_context():
        assert post_to_team("[Acme <!channel>] New seat for <https://evil.example|Pay> & co") == (
            "sent"
        )
    assert probe.posted == [
        {"text": "[Acme &lt;!channel&gt;] New seat for &lt;https://evil.example|Pay&gt; &amp; co"}
    ]


# --- oversized and malformed bodies -------------------------------------------------------------


def test_an_oversized_api_body_is_413_json_naming_the_limit(
    app: Flask, client: FlaskClient
) -> None:
    key = create_api_key("big").secret
    db.session.commit()
    limit = app.config["API_MAX_BODY_BYTES"]
    body = json.dumps({"attempts": [], "padding": "x" * limit}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    response = client.post("/api/v1/call-attempts", data=body, headers=headers)
    assert response.status_code == 413
    assert response.get_json() == {
        "error": f"the request body is larger than the limit of {limit:,} bytes: "
        "send fewer items per request",
        "limit_bytes": limit,
    }
    # Sent without a Content-Length (chunked, decoded by the server), the limit holds while
    # the body is read.
    response = client.post(
        "/api/v1/call-attempts",
        input_stream=io.BytesIO(body),
        headers={**headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413, response.get_json()
    assert response.get_json()["limit_bytes"] == limit


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b'{"attempts": [', "application/json", 400, "not valid JSON"),
        (b"\xff\xfe{}", "application/json", 400, "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "nested too deeply"),
        (b'{"attempts": {}}', "application/json", 422, '"attempts" list'),
        (b'"attempts"', "application/json", 422, '"attempts" list'),
        (b"attempts=1", "application/x-www-form-urlencoded", 415, "Content-Type"),
        (b"<attempts/>", "text/xml", 415, "Content-Type"),
    ],
)
def test_a_malformed_api_body_is_a_4xx_json_naming_the_problem(
    client: FlaskClient, body: bytes, content_type: str, status: int, says: str
) -> None:
    key = create_api_key("malformed").secret
    db.session.commit()
    response = client.post(
        "/api/v1/call-attempts",
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
    )
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert says in response.get_json()["error"]


def test_hostile_items_are_refused_one_by_one_naming_the_field(
    client: FlaskClient, hostile: Hostile
) -> None:
    items: list[Any] = [
        "not an object",
        {**attempt(hostile.seat, 90, "x"), "attempted_at": SCRIPT},
        {**attempt(hostile.seat, 91, "x"), "duration_seconds": "1e400"},
        {**attempt(hostile.seat, 92, "\x00null")},
        {**attempt(hostile.seat, 93, "x"), "seat": BREAKOUT},
    ]
    response = client.post(
        "/api/v1/call-attempts",
        json={"attempts": items},
        headers={"Authorization": f"Bearer {hostile.api_key}"},
    )
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["errors"] == len(items), answer
    for result in answer["results"]:
        assert result["status"] == "error"
        assert result["errors"], result


def test_refused_items_with_unstorable_text_are_kept_for_the_operators(
    client: FlaskClient, hostile: Hostile
) -> None:
    """A NUL or an unpaired surrogate in a refused item's id is refused by the API; the copy
    kept for the console's recent errors must still be storable (PostgreSQL takes neither)."""
    items = [
        {**attempt(hostile.seat, 80, "x"), "event_id": "nul\x00id"},
        {**attempt(hostile.seat, 81, "x"), "event_id": "lone\ud800id"},
    ]
    response = client.post(
        "/api/v1/call-attempts",
        data=json.dumps({"attempts": items}),
        headers={"Authorization": f"Bearer {hostile.api_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert response.get_json()["errors"] == 2
    kept = db.session.scalars(
        sa.select(IngestionError.item_id).order_by(IngestionError.id.desc()).limit(2)
    ).all()
    assert sorted(kept) == ["lone\ufffdid", "nul\ufffdid"]


def test_an_oversized_form_post_is_413(client: FlaskClient, owner: User) -> None:
    big = "x" * (MAX_FORM_BYTES + 1)
    response = client.post("/login", data={"email": owner.email, "password": big})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
    assert client.post("/login", data={"email": owner.email, "password": "x"}).status_code == 200


def test_an_upload_may_be_larger_than_a_form_but_not_unbounded(app: Flask) -> None:
    probe_app = app_on_the_test_connection(TEST_CONFIG)
    sizes: list[int] = []

    @probe_app.post("/upload-probe")
    def upload_probe() -> str:
        sizes.append(len(request.files["file"].read()))
        return "ok"

    client = probe_app.test_client()
    assert upload(client, "/upload-probe", b"x" * (MAX_FORM_BYTES * 3)).status_code == 200
    assert sizes == [MAX_FORM_BYTES * 3]
    assert upload(client, "/upload-probe", b"x" * (MAX_UPLOAD_BYTES + 1)).status_code == 413
    assert sizes == [MAX_FORM_BYTES * 3]


def upload(
    client: FlaskClient, url: str, content: bytes, fields: dict[str, str] | None = None
) -> TestResponse:
    """Post `content` as the file of a multipart form, with `fields`, as a browser would."""
    parts = [
        f'--sw\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (fields or {}).items()
    ]
    parts.append(
        b"--sw\r\n"
        b'Content-Disposition: form-data; name="file"; filename="calls.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + content + b"\r\n--sw--\r\n"
    )
    return client.post(url, data=b"".join(parts), content_type="multipart/form-data; boundary=sw")


# --- the operators' upload of a dialer export ----------------------------------------------------


def export(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMN_NAMES)
    writer.writerows(rows)
    return out.getvalue().encode()


def export_row(reference: str, n: int, **cells: str) -> list[str]:
    at = datetime.now(UTC) - timedelta(hours=1)
    row = {
        "event_id": f"upload-{n}",
        "seat_reference": reference,
        "lead_external_id": f"upload-lead-{n}",
        "lead_name": f"Uploaded {n}",
        "lead_phone": "(917) 555-0101",
        "lead_email": "",
        "lead_source": "Zillow",
        "lead_received_at": (at - timedelta(minutes=5)).isoformat(),
        "attempted_at": at.isoformat(),
        "disposition": "Live Transfer",
        "duration_seconds": "95",
        "isa_agent": "Maya Chen",
        "notes": "",
        **cells,
    }
    return [row[name] for name in COLUMN_NAMES]


def test_markup_in_an_uploaded_export_is_text_on_the_result_page(
    client: FlaskClient, operator: User, account: Account
) -> None:
    reference = factories.first_seat(account).reference
    db.session.commit()  # a dry run rolls back what the request did not commit
    Auth(client).login(operator)
    content = export(
        [
            export_row(reference, 1, lead_name=f"Name {SCRIPT}", isa_agent=BREAKOUT),
            export_row(reference, 2, lead_phone=SCRIPT),
            export_row(reference, 3, disposition=BREAKOUT),
            export_row("<b>bold</b>", 4),
            export_row(reference, 5, notes="before\x00after"),
        ]
    )
    for action in ("dry_run", "import"):
        response = upload(client, "/ops/call-data/import", content, {"action": action})
        assert response.status_code == 200, response.status_code
        page = response.get_data(as_text=True)
        assert_escaped(action, page)
        assert "&lt;script&gt;" in page
        assert "notes contains a NUL character" in page
    with tenant_context(account.id):
        names = db.session.scalars(sa.select(Lead.name).where(Lead.external_id.like("upload-%")))
        assert list(names) == [f"Name {SCRIPT}"]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\xff\xfe\x00e\x00v\x00", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n", "not UTF-8"),
        (b"", "the file is empty"),
        (b"event_id,seat_reference\nA,B\n", "missing columns"),
        (b"x" * (20 * 1024 * 1024 + 1), "larger than 20 MB"),
    ],
)
def test_a_malformed_upload_is_422_naming_the_problem(
    client: FlaskClient, operator: User, content: bytes, says: str
) -> None:
    Auth(client).login(operator)
    response = upload(client, "/ops/call-data/import", content, {"action": "dry_run"})
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert says in page, re.findall(r'class="[^"]*error[^"]*"[^>]*>([^<]*)', page)


def test_an_upload_beyond_any_limit_is_413(client: FlaskClient, operator: User) -> None:
    Auth(client).login(operator)
    content = b"x" * (MAX_UPLOAD_BYTES + 1)
    response = upload(client, "/ops/call-data/import", content, {"action": "dry_run"})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
