"""Reads for the team page and the audit log, always within the current tenant."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.billing import format_cents, format_day
from app.extensions import db
from app.models import AccountKind, AuditEvent, Membership, Person, Role, Seat, User

AUDIT_PER_PAGE = 50
_ROLE_ORDER = {Role.OWNER: 0, Role.ADMIN: 1, Role.VIEWER: 2, Role.SEAT_MEMBER: 3}


# --- members --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    membership: Membership
    user: User
    seat_label: str

    @property
    def invited(self) -> bool:
        """Invited, and not signed in yet (no password set)."""
        return self.user.password_hash is None


def member_rows() -> list[MemberRow]:
    """The account's members: owners first, then admins, viewers and seat members, by name."""
    rows = db.session.execute(
        sa.select(Membership, User, Seat.reference, Seat.client_label, Person.name)
        .join(User, User.id == Membership.user_id)
        .outerjoin(Seat, Seat.id == Membership.seat_id)
        .outerjoin(Person, Person.id == Seat.primary_person_id)
    ).all()
    members = [
        MemberRow(membership, user, _seat_label(reference, label, name))
        for membership, user, reference, label, name in rows
    ]
    return sorted(
        members,
        key=lambda row: (
            _ROLE_ORDER[row.membership.role],
            (row.user.name or row.user.email).lower(),
        ),
    )


def _seat_label(reference: str | None, client: str | None, primary: str | None) -> str:
    if reference is None:
        return ""
    return f"{client + ' · ' if client else ''}{primary} ({reference})"


# --- the audit log --------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditKind:
    key: str
    label: str
    prefixes: tuple[str, ...]


AUDIT_KINDS = (
    AuditKind("seats", "Seats and Backups", ("seat.",)),
    AuditKind("plan", "Plan and subscription", ("plan.", "subscription.")),
    AuditKind("invoices", "Invoices", ("invoice.",)),
    AuditKind("members", "Team", ("member.",)),
    AuditKind("account", "Account", ("account.",)),
)
_KINDS = {kind.key: kind for kind in AUDIT_KINDS}


@dataclass(frozen=True)
class AuditFilters:
    kind: str = ""
    seat_id: int | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> AuditFilters:
        """Read filters from request args; anything unknown falls back to its default."""
        seat, page = args.get("seat", ""), args.get("page", "1")
        return cls(
            kind=args.get("kind", "") if args.get("kind", "") in _KINDS else "",
            seat_id=int(seat) if seat.isdigit() else None,
            page=max(1, int(page)) if page.isdigit() else 1,
        )

    def query_args(self, **changes: Any) -> dict[str, Any]:
        chosen = replace(self, **changes)
        args = {"kind": chosen.kind, "seat": chosen.seat_id, "page": chosen.page}
        return {key: value for key, value in args.items() if value and value != 1}


@dataclass(frozen=True)
class AuditEntry:
    day: str
    time: str
    who: str
    who_email: str
    action: str
    summary: str
    seat_id: int | None
    seat_reference: str


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    total: int
    page: int
    pages: int


def _events(where: list[sa.ColumnElement[bool]]) -> sa.Select[AuditEvent, str, int, str]:
    return (
        sa.select(AuditEvent, User.name, Seat.id, Seat.reference)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .outerjoin(Seat, sa.and_(AuditEvent.target_type == "seat", Seat.id == AuditEvent.target_id))
        .where(*where)
    )


def _entries(statement: sa.Select[AuditEvent, str, int, str], zone: ZoneInfo) -> list[AuditEntry]:
    entries = []
    for event, actor_name, seat_id, reference in db.session.execute(statement).all():
        local = event.created_at.astimezone(zone)
        system = event.actor_id is None
        entries.append(
            AuditEntry(
                day=format_day(local.date()),
                time=f"{local:%H:%M} {local.tzname()}",
                who="Seatwise" if system else actor_name or event.actor_label,
                who_email="" if system else event.actor_label,
                action=event.action,
                summary=describe(event),
                seat_id=seat_id,
                seat_reference=reference or "",
            )
        )
    return entries


def audit_page(filters: AuditFilters, zone: ZoneInfo, per_page: int = AUDIT_PER_PAGE) -> AuditPage:
    """One page of the account's audit log, newest first, in the account's time zone."""
    where: list[sa.ColumnElement[bool]] = []
    if filters.kind:
        where.append(
            sa.or_(*(AuditEvent.action.startswith(p) for p in _KINDS[filters.kind].prefixes))
        )
    if filters.seat_id is not None:
        where += [AuditEvent.target_type == "seat", AuditEvent.target_id == filters.seat_id]
    total = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(*where)) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(filters.page, pages)
    statement = (
        _events(where)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return AuditPage(entries=_entries(statement, zone), total=total, page=page, pages=pages)


def seat_history(seat_id: int, zone: ZoneInfo, limit: int = 5) -> list[AuditEntry]:
    """The seat's latest audit entries, newest first."""
    statement = (
        _events([AuditEvent.target_type == "seat", AuditEvent.target_id == seat_id])
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    return _entries(statement, zone)


def _day(value: Any) -> str:
    """An ISO date or moment from an event's details as "26 Nov 2026" (as stored if not)."""
    try:
        return format_day(date.fromisoformat(str(value)[:10]))
    except ValueError:
        return str(value)


def _role_label(value: Any) -> str:
    try:
        return Role(value).label.lower()
    except ValueError:
        return str(value)


def describe(event: AuditEvent) -> str:
    """One plain sentence for an audit event."""
    d = event.details or {}
    action = event.action
    if action == "seat.created":
        client = f" ({d['client']})" if d.get("client") else ""
        started = f", started from {d['started_from']}" if d.get("started_from") else ""
        return f"Added seat {d.get('reference', '')} for {d.get('primary', '')}{client}{started}"
    if action == "seat.backup_changed":
        change = d.get("change")
        if change == "added" or (change is None and d.get("from") is None):
            return f"Added Backup {d.get('to')}"
        if change == "removed" or (change is None and d.get("to") is None):
            return f"Removed Backup {d.get('from')}"
        return f"Replaced Backup {d.get('from')} with {d.get('to')}"
    if action == "seat.fee_added":
        fee = format_cents(int(d.get("fee_cents", 0)))
        return f"Seat fee {fee} put on the {d.get('period', '')} closing invoice"
    if action == "seat.deactivated":
        return f"Deactivated seat {d.get('reference', '')}"
    if action == "seat.reactivated":
        return f"Reactivated seat {d.get('reference', '')}"
    if action == "account.created":
        kind = d.get("kind", "")
        label = AccountKind(kind).label if kind in set(AccountKind) else kind
        return f"Created the account ({label}) on plan {d.get('plan', '')}"
    if action == "subscription.created":
        return f"Subscribed to plan {d.get('plan', '')} from {_day(d.get('start'))}"
    if action == "invoice.issued":
        return (
            f"Invoice {d.get('number', '')} issued for {format_cents(int(d.get('total_cents', 0)))}"
        )
    if action == "period.renewed":
        closed = d.get("closed", "the period")
        return f"Closed {closed}; the next period runs on plan {d.get('plan')}"
    if action == "subscription.ended":
        return "The plan ended with the period (it was cancelled)"
    if action == "billing.close_enqueued":
        return f"The Seatwise team re-ran the close of {d.get('period', 'the period')}"
    if action == "plan.upgraded":
        return f"Upgraded from {d.get('from')} to {d.get('to')}"
    if action == "plan.downgrade_scheduled":
        return f"Scheduled a downgrade from {d.get('from')} to {d.get('to')} on {_day(d.get('on'))}"
    if action == "plan.downgrade_withdrawn":
        return "Withdrew the scheduled downgrade"
    if action == "subscription.cancelled":
        return f"Cancelled the plan at the end of the period ({_day(d.get('ends_at'))})"
    if action == "subscription.cancel_undone":
        return "Undid the cancellation"
    if action == "member.invited":
        seat = f" of seat {d['seat']}" if d.get("seat") else ""
        return f"Invited {d.get('email')} as {_role_label(d.get('role'))}{seat}"
    if action == "member.role_changed":
        seat = f" of seat {d['seat']}" if d.get("seat") else ""
        return (
            f"Changed {d.get('email')} from {_role_label(d.get('from'))} "
            f"to {_role_label(d.get('to'))}{seat}"
        )
    if action == "member.removed":
        return f"Removed {d.get('email')} ({_role_label(d.get('role'))})"
    if action == "operator.viewed":
        return f"The Seatwise team viewed the {d.get('page', 'account')} page"
    if action == "outbox.resent":
        return f"The Seatwise team resent “{d.get('subject', '')}” to {d.get('to', '')}"
    return action
