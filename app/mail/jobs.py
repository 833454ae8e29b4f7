"""Mail jobs on the `mail` queue."""

from __future__ import annotations

import smtplib
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.models import EmailStatus, OutboxEmail, utcnow
from app.queue import get_queue
from app.settings import get_setting


def _send_smtp(mail_url: str, sender: str, email: OutboxEmail) -> None:
    parts = urlsplit(mail_url)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, email.to_address, email.subject
    message.set_content(email.body_text)
    if email.body_html:
        message.add_alternative(email.body_html, subtype="html")
    smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with smtp_class(parts.hostname or "localhost", parts.port or 0, timeout=30) as smtp:
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(message)


def mail_sender() -> str:
    """The From of outgoing mail: the operators' setting, else the server's MAIL_SENDER."""
    return str(get_setting("sender_address") or current_app.config["MAIL_SENDER"])


def deliver_email(email_id: int) -> str:
    """Send one outbox mail by SMTP, or keep it in the outbox when no MAIL_URL is set.

    Safe to run twice: the row is locked and a delivered mail is left alone.
    """
    email = db.session.scalar(
        sa.select(OutboxEmail).where(OutboxEmail.id == email_id).with_for_update()
    )
    if email is None or email.status in (EmailStatus.SENT, EmailStatus.KEPT):
        db.session.rollback()
        return "nothing to do"
    email.attempts += 1
    mail_url = current_app.config["MAIL_URL"]
    if mail_url is None:
        email.status = EmailStatus.KEPT
    else:
        try:
            _send_smtp(mail_url, mail_sender(), email)
        except (OSError, smtplib.SMTPException) as exc:
            email.status, email.last_error = EmailStatus.FAILED, str(exc)
            db.session.commit()
            raise
        email.status = EmailStatus.SENT
    email.sent_at = utcnow()
    db.session.commit()
    return email.status.value


def sweep_pending_mail() -> int:
    """Re-enqueue mail left pending (Redis was down when it was written). Cron job."""
    cutoff = utcnow() - timedelta(minutes=2)
    ids = db.session.scalars(
        sa.select(OutboxEmail.id).where(
            OutboxEmail.status == EmailStatus.PENDING, OutboxEmail.created_at < cutoff
        )
    ).all()
    queue = get_queue("mail")
    for email_id in ids:
        queue.enqueue(deliver_email, email_id, job_id=f"mail-{email_id}")
    return len(ids)
