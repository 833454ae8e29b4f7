"""Telling the ISA team (Slack incoming webhook) and the owners (email) about billing changes."""

from __future__ import annotations

import json
import urllib.request

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.mail.operations import queue_email
from app.models import Account, Membership, Role, User
from app.queue import enqueue_after_commit
from app.settings import get_setting


class WebhookFailed(RuntimeError):
    """The webhook did not answer 2xx; the job fails and RQ retries it."""


def slack_text(text: str) -> str:
    """`text` as Slack shows it literally: its control characters escaped, so a name holding
    `<!channel>` or `<https://...|label>` notifies no one and links nowhere."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def post_to_team(text: str) -> str:
    """Job (mail queue): POST one notice (plain text) to the Slack incoming webhook, if one is
    set."""
    url = str(get_setting("slack_webhook_url") or "")
    if not url:
        return "no webhook set"
    if not url.startswith(("https://", "http://")):
        raise WebhookFailed(f"the webhook URL {url!r} is not http(s)")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked just above
        url,
        data=json.dumps({"text": slack_text(text)}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http(s) only
            status = int(response.status)
    except OSError as exc:
        raise WebhookFailed(f"the webhook did not answer: {exc}") from exc
    if not 200 <= status < 300:
        raise WebhookFailed(f"the webhook answered {status}")
    return "sent"


def notify(account: Account, event: str, summary: str, actor: User | None = None) -> None:
    """After the transaction commits: a notice to the team and a confirmation email to
    each owner. `summary` is one plain sentence of what changed."""
    who = actor.email if actor else "the service"
    enqueue_after_commit(
        "mail",
        post_to_team,
        f"[{account.name}] {summary} (by {who})",
        retry_intervals=current_app.config.get("NOTIFY_RETRY_INTERVALS", (10, 60, 300, 900, 3600)),
    )
    owners = db.session.scalars(
        sa.select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.role == Role.OWNER)
    ).all()
    for address in owners:
        queue_email(
            address,
            "billing_change",
            account_id=account.id,
            account=account,
            event=event,
            summary=summary,
            who=who,
        )
