"""Queueing mail. The outbox row is the source of truth; the job only delivers it."""

from __future__ import annotations

from typing import Any

from flask import current_app, has_request_context, render_template

from app.extensions import db
from app.models import EmailStatus, OutboxEmail
from app.queue import enqueue_after_commit


def _render(template: str, context: dict[str, Any]) -> str:
    """Render mail; outside a request (jobs, commands) links are built for SEATWISE_BASE_URL."""
    if has_request_context():
        return render_template(template, **context)
    with current_app.test_request_context(base_url=current_app.config["SEATWISE_BASE_URL"]):
        return render_template(template, **context)


def queue_email(
    to_address: str, template: str, *, account_id: int | None = None, **context: Any
) -> OutboxEmail:
    """Render `templates/email/<template>.{subject,txt,html}` into the outbox and
    deliver it once the transaction commits."""
    # One line, whatever the names in it hold: a line break from user data must not reach the
    # Subject header (the message could not be sent, or would carry a header of its own).
    subject = " ".join(_render(f"email/{template}.subject.txt", context).split())
    email = OutboxEmail(
        account_id=account_id,
        to_address=to_address,
        subject=subject,
        body_text=_render(f"email/{template}.txt", context),
        body_html=_render(f"email/{template}.html", context),
    )
    db.session.add(email)
    db.session.flush()
    from app.mail.jobs import deliver_email  # the job module imports the app's runtime pieces

    enqueue_after_commit("mail", deliver_email, email.id)
    return email


def resend_email(email: OutboxEmail) -> OutboxEmail:
    """Deliver a mail again (flushes; the caller commits and audits).

    Mail still waiting, or that failed, goes back on the queue as it is; mail already
    delivered (or kept) is copied into a new outbox row, so its history stays as it was.
    """
    from app.mail.jobs import deliver_email

    if email.status in (EmailStatus.PENDING, EmailStatus.FAILED):
        email.status, email.last_error = EmailStatus.PENDING, ""
        db.session.flush()
        enqueue_after_commit("mail", deliver_email, email.id)
        return email
    copy = OutboxEmail(
        account_id=email.account_id,
        to_address=email.to_address,
        subject=email.subject,
        body_text=email.body_text,
        body_html=email.body_html,
    )
    db.session.add(copy)
    db.session.flush()
    enqueue_after_commit("mail", deliver_email, copy.id)
    return copy
