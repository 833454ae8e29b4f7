"""The mail outbox in the operator console: pending and sent mail, one mail, resend."""

from __future__ import annotations

import math

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.audit import record_operator_action
from app.extensions import db
from app.mail.operations import resend_email
from app.models import Account, EmailStatus, OutboxEmail
from app.ops import bp
from app.web import render

OUTBOX_PER_PAGE = 50


def _email(email_id: int) -> OutboxEmail:
    email = db.session.get(OutboxEmail, email_id)
    if email is None:
        abort(404)
    return email


@bp.get("/outbox")
def outbox() -> Response:
    """Mail, newest first; filtered by status (pending, sent, kept, failed)."""
    status = request.args.get("status", "")
    chosen = EmailStatus(status) if status in set(EmailStatus) else None
    where = [OutboxEmail.status == chosen] if chosen else []
    total = db.session.scalar(sa.select(sa.func.count(OutboxEmail.id)).where(*where)) or 0
    pages = max(1, math.ceil(total / OUTBOX_PER_PAGE))
    page = min(max(1, request.args.get("page", 1, type=int) or 1), pages)
    rows = db.session.execute(
        sa.select(OutboxEmail, Account.name)
        .outerjoin(Account, Account.id == OutboxEmail.account_id)
        .where(*where)
        .order_by(OutboxEmail.id.desc())
        .limit(OUTBOX_PER_PAGE)
        .offset((page - 1) * OUTBOX_PER_PAGE)
    ).all()
    counts = dict(
        db.session.execute(
            sa.select(OutboxEmail.status, sa.func.count(OutboxEmail.id)).group_by(
                OutboxEmail.status
            )
        ).all()
    )
    return render(
        "ops/outbox.html",
        partial="ops/_outbox_results.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        status=chosen,
        statuses=list(EmailStatus),
        counts=counts,
        page_url=lambda number: url_for(
            "ops.outbox", status=chosen.value if chosen else None, page=number
        ),
    )


@bp.get("/outbox/<int:email_id>")
def outbox_email(email_id: int) -> Response:
    """One mail as it was written: addressee, subject, text, and its delivery."""
    email = _email(email_id)
    account = db.session.get(Account, email.account_id) if email.account_id else None
    return render("ops/outbox_email.html", email=email, account=account)


@bp.post("/outbox/<int:email_id>/resend")
def outbox_resend(email_id: int) -> BaseResponse:
    """Deliver a mail again (a delivered one as a new copy); audited."""
    email = _email(email_id)
    sent = resend_email(email)
    record_operator_action(
        "outbox.resent",
        account_id=email.account_id,
        target=sent,
        details={"email_id": email.id, "to": email.to_address, "subject": email.subject},
    )
    db.session.commit()
    flash(f"The mail to {email.to_address} is on its way again.", "success")
    return redirect(url_for("ops.outbox_email", email_id=sent.id), 303)
