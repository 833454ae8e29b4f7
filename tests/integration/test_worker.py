"""A real RQ worker process runs our jobs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.mail.operations import queue_email
from app.models import EmailStatus, OutboxEmail, User
from tests.live import empty_queues, live_app, run_worker_burst

pytestmark = [pytest.mark.live, pytest.mark.worker]


def test_worker_process_delivers_mail_from_the_outbox() -> None:
    with live_app("worker_mail") as app:
        empty_queues(app)
        with app.app_context(), app.test_request_context():
            user = User(email="new.owner@brightpath.example", name="New Owner")
            db.session.add(user)
            db.session.flush()
            queue_email(user.email, "password_reset", user=user, token="t0ken")
            db.session.commit()
        result = run_worker_burst(app)
        assert "Job OK" in result.stderr + result.stdout
        with app.app_context():
            email = db.session.scalar(sa.select(OutboxEmail))
            assert email is not None
            assert email.status is EmailStatus.KEPT  # no MAIL_URL: readable in the outbox
            assert email.attempts == 1
            assert "Reset your Seatwise password" in email.subject
