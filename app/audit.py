"""The audit log of billing-relevant changes: who did what, and when."""

from __future__ import annotations

from typing import Any

from flask import has_request_context
from flask_login import current_user

from app.extensions import db
from app.models import AuditEvent, User
from app.tenancy import tenant_context, unscoped


def record(
    action: str,
    *,
    account_id: int | None,
    target: Any = None,
    actor: User | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event in the current transaction (flushed, never committed here).

    The actor defaults to the logged-in user; jobs and commands name themselves via
    `actor=None` outside a request, recorded as "system".
    """
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    event = AuditEvent(
        account_id=account_id,
        actor_id=actor.id if actor else None,
        actor_label=actor.email if actor else "system",
        action=action,
        target_type=type(target).__name__.lower() if target is not None else "",
        target_id=getattr(target, "id", None),
        details=details or {},
    )
    db.session.add(event)
    db.session.flush()
    return event


def record_operator_action(
    action: str,
    *,
    account_id: int | None = None,
    target: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Audit an operator's action (flushed, never committed here).

    An action on one tenant is written inside that tenant, where its audit log shows it; a
    console-wide one (the catalogue, settings) carries no account and is read by operators only.
    """
    if account_id is not None:
        with tenant_context(account_id):
            return record(action, account_id=account_id, target=target, details=details)
    with unscoped():
        return record(action, account_id=None, target=target, details=details)
