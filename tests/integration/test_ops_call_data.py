"""The operator console's call data: API keys shown once and revoked, the CSV import with a dry
run and per-row errors, and the recent ingestion errors."""

from __future__ import annotations

import html
import io
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app.calls.rejections import KEPT, PER_BATCH_KEPT, Refusal, record_refusals
from app.extensions import db
from app.models import (
    Account,
    ApiKey,
    AuditEvent,
    CallAttempt,
    IngestionError,
    Lead,
    Seat,
    User,
    utcnow,
)
from app.tenancy import tenant_context, unscoped
from tests import factories
from tests.conftest import Auth

HEADER = (
    "event_id,seat_reference,lead_external_id,lead_name,lead_phone,lead_email,lead_source,"
    "lead_received_at,attempted_at,disposition,duration_seconds,isa_agent,notes\n"
)
SECRET = re.compile(r'value="(sw_[0-9a-f]+_[\w-]+)"')


@pytest.fixture
def seat() -> Seat:
    zone = ZoneInfo("America/New_York")
    start = (utcnow() - timedelta(days=10)).astimezone(zone).date()
    account = factories.subscribed_account(kind="brokerage", seats=1, start=start)
    seat = factories.first_seat(account)
    db.session.commit()  # a dry run rolls back what the request did not commit
    return seat


@pytest.fixture
def ops(client: FlaskClient, auth: Auth, operator: User) -> FlaskClient:
    auth.login(operator)
    return client


def csv_file(seat: Seat) -> bytes:
    at = (utcnow() - timedelta(hours=1)).isoformat()
    received = (utcnow() - timedelta(hours=2)).isoformat()
    return (
        HEADER + f"EV-1,{seat.reference},L-1,Olivia Smith,(917) 555-0101,,Zillow,{received},{at},"
        "Live Transfer,95,Maya Chen,\n"
        + f"EV-2,{seat.reference},L-2,Ben Ode,12345,,Zillow,{received},{at},"
        "Left message,30,Maya Chen,\n"
    ).encode()


def upload(ops: FlaskClient, content: bytes, action: str, name: str = "export.csv") -> str:
    response = ops.post(
        "/ops/call-data/import",
        data={"action": action, "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.text
    return html.unescape(response.text)


def attempts(seat: Seat) -> int:
    with tenant_context(seat.account_id):
        return db.session.scalar(sa.select(sa.func.count()).select_from(CallAttempt)) or 0


def audit_actions() -> list[str]:
    with unscoped():
        return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def create_key(ops: FlaskClient, name: str = "Five9 production") -> str:
    response = ops.post("/ops/call-data/keys", data={"name": name})
    assert response.status_code == 200
    match = SECRET.search(response.text)
    assert match is not None, "the new key is not on the page"
    return match.group(1)


def post_attempt(client: FlaskClient, key: str, seat: Seat, **overrides: object) -> int:
    item = {
        "event_id": "api-1",
        "seat": seat.reference,
        "lead_external_id": "A-1",
        "lead": {"name": "Lead", "phone": "(415) 555-2671", "received_at": utcnow().isoformat()},
        "attempted_at": utcnow().isoformat(),
        "disposition": "callback_later",
        "duration_seconds": 10,
        "isa_agent": "Maya Chen",
        **overrides,
    }
    response = client.post(
        "/api/v1/call-attempts",
        json={"attempts": [item]},
        headers={"Authorization": f"Bearer {key}"},
    )
    return response.status_code


def test_a_new_key_is_shown_once_and_works(ops: FlaskClient, seat: Seat) -> None:
    key = create_key(ops)
    assert "Copy it now" in ops.post("/ops/call-data/keys", data={"name": "Other"}).text
    page = ops.get("/ops/call-data").text
    assert key not in page
    assert "Five9 production" in page
    assert "Never" in page
    assert post_attempt(ops, key, seat) == 200
    assert attempts(seat) == 1
    stored = db.session.scalar(sa.select(ApiKey).where(ApiKey.name == "Five9 production"))
    assert stored is not None
    assert stored.last_used_at is not None
    assert stored.key_hash != key
    assert key not in stored.key_hash
    assert f"{stored.last_used_at:%-d %b %Y, %H:%M} UTC" in ops.get("/ops/call-data").text
    assert audit_actions().count("api_key.created") == 2


def test_a_key_needs_a_name(ops: FlaskClient) -> None:
    response = ops.post("/ops/call-data/keys", data={"name": "  "})
    assert response.status_code == 422
    assert "Name the key" in response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0


def test_a_revoked_key_is_refused(ops: FlaskClient, seat: Seat) -> None:
    key = create_key(ops)
    stored = db.session.scalars(sa.select(ApiKey)).one()
    response = ops.post(f"/ops/call-data/keys/{stored.id}/revoke")
    assert response.status_code == 303
    assert "Revoked" in ops.get("/ops/call-data").text
    assert post_attempt(ops, key, seat) == 401
    assert attempts(seat) == 0
    assert "api_key.revoked" in audit_actions()
    assert ops.post("/ops/call-data/keys/999999/revoke").status_code == 404


def test_dry_run_then_import_then_import_again(ops: FlaskClient, seat: Seat) -> None:
    content = csv_file(seat)
    dry = upload(ops, content, "dry_run")
    assert "Dry run of export.csv" in dry
    assert "Line 3" in dry
    assert 'lead_phone "12345" is not a valid phone number' in dry
    assert 'disposition "Left message" is unknown' in dry
    assert attempts(seat) == 0
    digest = re.search(r'name="upload" value="([0-9a-f]{64})"', dry)
    assert digest is not None

    # The button under the dry run imports the very file it checked.
    done = ops.post(
        "/ops/call-data/import",
        data={"action": "import", "upload": digest.group(1), "filename": "export.csv"},
    )
    assert done.status_code == 200
    assert "Imported export.csv" in done.text
    assert attempts(seat) == 1
    with tenant_context(seat.account_id):
        assert db.session.scalars(sa.select(Lead.external_id)).all() == ["L-1"]

    again = upload(ops, content, "import")
    assert attempts(seat) == 1
    assert re.search(r"Duplicates skipped</dt><dd>1<", again)
    assert audit_actions().count("calls.imported") == 2
    # The bad row of each real import is among the recent ingestion errors.
    refusals = db.session.scalars(sa.select(IngestionError)).all()
    assert [(r.source, r.batch, r.position) for r in refusals] == [("import", "export.csv", 3)] * 2
    assert "line 3" in ops.get("/ops/call-data").text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose the CSV file to import."),
        ({"file": (io.BytesIO(b"name,phone\nx,y\n"), "x.csv")}, "missing columns: event_id"),
        ({"file": (io.BytesIO(b"\xff\xfe\x00bad"), "x.csv")}, "not UTF-8 text"),
        ({"upload": "0" * 64}, "That dry run is too old"),
        ({"upload": "../../etc/passwd"}, "Invalid input"),
    ],
)
def test_a_bad_upload_is_refused_by_the_field(
    ops: FlaskClient, data: dict[str, object], message: str
) -> None:
    response = ops.post(
        "/ops/call-data/import",
        data={"action": "dry_run", **data},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert message in html.unescape(response.text)


def test_api_refusals_are_listed_with_their_key(ops: FlaskClient, seat: Seat) -> None:
    key = create_key(ops)
    assert post_attempt(ops, key, seat, event_id="bad-1", disposition="left message") == 200
    page = html.unescape(ops.get("/ops/call-data").text)
    assert "API /attempts" in page
    assert "bad-1" in page
    assert key.split("_")[1] in page
    assert "disposition" in page


def test_the_recent_errors_are_bounded(ops: FlaskClient, seat: Seat) -> None:
    key = create_key(ops)
    items = [{"event_id": f"x-{n}"} for n in range(PER_BATCH_KEPT + 10)]
    response = ops.post(
        "/api/v1/call-attempts",
        json={"attempts": items},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.json is not None
    assert response.json["errors"] == PER_BATCH_KEPT + 10
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IngestionError)) == (
        PER_BATCH_KEPT
    )
    for _ in range(KEPT // PER_BATCH_KEPT + 1):
        record_refusals("api", "attempts", [Refusal(n, "", "bad") for n in range(PER_BATCH_KEPT)])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IngestionError)) == KEPT


def test_clients_cannot_see_call_data(
    client: FlaskClient, auth: Auth, owner: User, account: Account
) -> None:
    auth.login(owner)
    assert client.get("/ops/call-data").status_code == 404
    assert client.post("/ops/call-data/keys", data={"name": "mine"}).status_code == 404
