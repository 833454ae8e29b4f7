"""Queueing mail. The outbox row is the source of truth; the job only delivers it."""

from __future__ import annotations

from typing import Any

from flask import current_app, has_request_context, render_template

from app.extensions import db
from app.models import OutboxEmail
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
    email = OutboxEmail(
        account_id=account_id,
        to_address=to_address,
        subject=_render(f"email/{template}.subject.txt", context).strip(),
        body_text=_render(f"email/{template}.txt", context),
        body_html=_render(f"email/{template}.html", context),
    )
    db.session.add(email)
    db.session.flush()
    from app.mail.jobs import deliver_email  # the job module imports the app's runtime pieces

    enqueue_after_commit("mail", deliver_email, email.id)
    return email
