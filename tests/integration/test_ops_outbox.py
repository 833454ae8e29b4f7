"""The outbox in the operator console: pending and sent mail, one mail, resend (audited)."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.mail.jobs import deliver_email
from app.mail.operations import queue_email
from app.models import Account, AuditEvent, EmailStatus, OutboxEmail, User
from app.queue import get_queue
from app.tenancy import tenant_context
from tests.conftest import Auth


def text(response: object) -> str:
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def mail_jobs_for(email_id: int) -> int:
    return sum(1 for job in get_queue("mail").jobs if job.args == (email_id,))


@pytest.fixture
def ops(client: FlaskClient, auth: Auth, operator: User) -> FlaskClient:
    auth.login(operator)
    return client


@pytest.fixture
def mail(app: Flask, account: Account, operator: User) -> dict[str, OutboxEmail]:
    """Three mails of `account`: one delivered (kept), one pending, one that failed."""
    with app.test_request_context():
        kept, pending, failed = (
            queue_email(
                f"{name}@harbor.example",
                "password_reset",
                account_id=account.id,
                user=operator,
                token=name,
            )
            for name in ("kept", "pending", "failed")
        )
    db.session.commit()
    assert deliver_email(kept.id) == "kept"
    failed.status, failed.attempts, failed.last_error = EmailStatus.FAILED, 1, "connection refused"
    db.session.commit()
    get_queue("mail").empty()  # the jobs of their first delivery; each test counts its own
    return {"kept": kept, "pending": pending, "failed": failed}


def test_the_outbox_lists_mail_with_its_status_and_filters_by_status(
    ops: FlaskClient, mail: dict[str, OutboxEmail], account: Account
) -> None:
    page = text(ops.get("/ops/outbox"))
    for name in ("kept", "pending", "failed"):
        assert f"to {name}@harbor.example" in page
    assert "Kept" in page
    assert "Pending" in page
    assert "Failed" in page
    assert account.name in page
    only_failed = ops.get("/ops/outbox?status=failed", headers={"HX-Request": "true"})
    body = only_failed.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="outbox-results">')
    assert "failed@harbor.example" in body
    assert "kept@harbor.example" not in body


def test_one_mail_shows_its_text_and_its_delivery(
    ops: FlaskClient, mail: dict[str, OutboxEmail]
) -> None:
    failed = mail["failed"]
    page = text(ops.get(f"/ops/outbox/{failed.id}"))
    assert failed.subject in page
    assert "To failed@harbor.example" in page
    assert "connection refused" in page
    assert "Send now" in page
    assert failed.body_text.split()[0] in page
    assert "Resend" in text(ops.get(f"/ops/outbox/{mail['kept'].id}"))
    assert ops.get("/ops/outbox/999999").status_code == 404


def test_resending_a_delivered_mail_queues_a_copy_and_is_audited(
    ops: FlaskClient, mail: dict[str, OutboxEmail], account: Account
) -> None:
    kept = mail["kept"]
    response = ops.post(f"/ops/outbox/{kept.id}/resend")
    assert response.status_code == 303
    copy = db.session.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id.desc())).first()
    assert copy is not None
    assert copy.id != kept.id
    assert response.headers["Location"].endswith(f"/ops/outbox/{copy.id}")
    assert (copy.to_address, copy.subject, copy.body_text, copy.status) == (
        kept.to_address,
        kept.subject,
        kept.body_text,
        EmailStatus.PENDING,
    )
    assert db.session.get_one(OutboxEmail, kept.id).status is EmailStatus.KEPT  # its history stays
    assert mail_jobs_for(copy.id) == 1
    with tenant_context(account.id):
        [event] = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "outbox.resent")
        ).all()
    assert event.details["email_id"] == kept.id
    assert "The Seatwise team resent" in text(ops.get(f"/ops/tenants/{account.id}/audit"))


def test_resending_a_failed_mail_puts_it_back_on_the_queue(
    ops: FlaskClient, mail: dict[str, OutboxEmail]
) -> None:
    failed = mail["failed"]
    before = db.session.scalar(sa.select(sa.func.count(OutboxEmail.id)))
    assert ops.post(f"/ops/outbox/{failed.id}/resend").status_code == 303
    db.session.expire_all()
    again = db.session.get_one(OutboxEmail, failed.id)
    assert (again.status, again.last_error) == (EmailStatus.PENDING, "")
    assert db.session.scalar(sa.select(sa.func.count(OutboxEmail.id))) == before
    assert mail_jobs_for(failed.id) == 1
    assert deliver_email(failed.id) == "kept"
