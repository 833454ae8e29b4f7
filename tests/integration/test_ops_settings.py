"""Operator settings in the console: current values with who changed them, validation by the
field, an audit entry per change, and the settings at work (the seat fee, the sender)."""

from __future__ import annotations

import html
import re
import socketserver
import threading
from collections.abc import Iterator
from email import message_from_bytes

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.billing_portal.ledger import SettingsSnapshot
from app.extensions import db
from app.mail.jobs import deliver_email
from app.mail.operations import queue_email
from app.models import AuditEvent, EmailStatus, OutboxEmail, User
from app.settings import get_setting
from app.tenancy import unscoped
from tests.conftest import Auth

DEFAULTS = {
    "seat_fee_cents": "57.00",
    "overage_grace_leads": "0",
    "close_grace_minutes": "120",
    "dashboard_refresh_seconds": "15",
    "slack_webhook_url": "",
    "sender_address": "",
}


def text(response: object) -> str:
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def setting_row(response: object, key: str) -> str:
    """The text of one setting's row in the table of current values."""
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    found = re.search(rf'<tr id="setting-{key}">(.*?)</tr>', page, re.S)
    assert found, key
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))).strip()


def field_error(response: object, field: str) -> str:
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    found = re.search(rf'<p class="field-error" id="{field}-error-1">([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else ""


def setting_events() -> list[AuditEvent]:
    with unscoped():
        return list(
            db.session.scalars(
                sa.select(AuditEvent)
                .where(AuditEvent.action == "setting.changed")
                .order_by(AuditEvent.id)
            )
        )


@pytest.fixture
def ops(client: FlaskClient, auth: Auth, operator: User) -> FlaskClient:
    auth.login(operator)
    return client


def test_the_page_shows_every_current_value_and_that_it_is_the_default(
    ops: FlaskClient, app: Flask
) -> None:
    response = ops.get("/ops/settings")
    assert "$57.00" in setting_row(response, "seat_fee_cents")
    assert "120" in setting_row(response, "close_grace_minutes")
    sender = setting_row(response, "sender_address")
    assert f"Not set: {app.config['MAIL_SENDER']}" in sender  # the server's, used meanwhile
    assert all(setting_row(response, key).endswith("Default") for key in DEFAULTS)


def test_a_change_is_saved_audited_and_shown_with_who_and_when(
    ops: FlaskClient, operator: User
) -> None:
    response = ops.post(
        "/ops/settings",
        data={**DEFAULTS, "seat_fee_cents": "$75", "sender_address": "Seatwise <hi@sw.example>"},
    )
    assert response.status_code == 303
    assert get_setting("seat_fee_cents") == 7500
    assert SettingsSnapshot.now().seat_fee_cents == 7500  # what new periods copy
    assert get_setting("sender_address") == "Seatwise <hi@sw.example>"
    events = setting_events()
    assert [(e.details["key"], e.details["from"], e.details["to"]) for e in events] == [
        ("seat_fee_cents", 5700, 7500),
        ("sender_address", "", "Seatwise <hi@sw.example>"),
    ]
    assert all(e.actor_id == operator.id and e.account_id is None for e in events)
    response = ops.get("/ops/settings")
    row = setting_row(response, "seat_fee_cents")
    assert "$75.00" in row
    assert operator.email in row
    assert " UTC" in row
    assert operator.email in setting_row(response, "sender_address")
    assert setting_row(response, "close_grace_minutes").endswith("Default")
    assert "Saved: Seat fee, Sender address." in text(response)


def test_saving_unchanged_values_records_nothing(ops: FlaskClient) -> None:
    assert ops.post("/ops/settings", data=DEFAULTS).status_code == 303
    assert setting_events() == []
    assert "Nothing changed." in text(ops.get("/ops/settings"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seat_fee_cents", "fifty", "Enter an amount in dollars"),
        ("seat_fee_cents", "20000", "Between $0 and $10,000."),
        ("seat_fee_cents", "", "Enter the seat fee (0 for none)."),
        ("overage_grace_leads", "-1", "Between 0 and 1,000 leads."),
        ("close_grace_minutes", "0", "Between 1 minute and 48 hours"),
        ("dashboard_refresh_seconds", "1", "Between 2 and 600 seconds."),
        ("dashboard_refresh_seconds", "soon", "Not a valid integer value."),
        ("slack_webhook_url", "http://hooks.example/x", "An https:// address"),
        ("sender_address", "billing at seatwise", "An email address"),
        ("sender_address", "a@b.example\r\nBcc: x@y.example", "An email address"),
    ],
)
def test_a_bad_value_comes_back_by_its_field_with_what_was_typed(
    ops: FlaskClient, field: str, value: str, message: str
) -> None:
    response = ops.post(
        "/ops/settings", data={**DEFAULTS, "close_grace_minutes": "90", field: value}
    )
    assert response.status_code == 422
    assert message in field_error(response, field)
    if "\r" not in value:
        assert f'value="{html.escape(value)}"' in response.get_data(as_text=True)
    assert get_setting("close_grace_minutes") == 120  # nothing saved, not even the good ones
    assert setting_events() == []


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib to hand over one message."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ready\r\n")
        while line := self.rfile.readline():
            verb = line.strip().split(b" ")[0].upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data += chunk
                self.server.messages.append(data)  # type: ignore[attr-defined]
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server(app: Flask) -> Iterator[list[bytes]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    original = app.config["MAIL_URL"]
    app.config["MAIL_URL"] = f"smtp://127.0.0.1:{server.server_address[1]}"
    try:
        yield server.messages  # type: ignore[attr-defined]
    finally:
        app.config["MAIL_URL"] = original
        server.shutdown()
        server.server_close()


def test_mail_is_sent_from_the_sender_address_of_the_settings(
    ops: FlaskClient, app: Flask, operator: User, smtp_server: list[bytes]
) -> None:
    ops.post("/ops/settings", data={**DEFAULTS, "sender_address": "Harbor Desk <desk@sw.example>"})
    with app.test_request_context():
        email = queue_email("owner@harbor.example", "password_reset", user=operator, token="t")
    db.session.commit()
    assert deliver_email(email.id) == "sent"
    [raw] = smtp_server
    message = message_from_bytes(raw)
    assert message["From"] == "Harbor Desk <desk@sw.example>"
    assert message["To"] == "owner@harbor.example"
    stored = db.session.get_one(OutboxEmail, email.id)
    assert stored.status is EmailStatus.SENT
