"""Creating an account: the account, its owner, the subscription and the invitation."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.audit import record
from app.auth.operations import find_user_by_email, send_invitation
from app.billing_portal.operations import Subscribed, subscribe
from app.extensions import db
from app.mail.operations import queue_email
from app.models import Account, AccountKind, Membership, Plan, Role, User, utcnow
from app.seats.operations import SeatDetails, create_seat
from app.tenancy import tenant_context


@dataclass(frozen=True)
class NewAccount:
    account: Account
    owner: User
    subscribed: Subscribed


def slug_for(name: str) -> str:
    """A unique URL slug from a company name: "Harbor Realty, LLC" → "harbor-realty-llc"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:48] or "account"
    taken = set(
        db.session.scalars(sa.select(Account.slug).where(Account.slug.like(f"{base}%"))).all()
    )
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def create_account(
    *,
    name: str,
    kind: AccountKind,
    plan: Plan,
    owner_email: str,
    owner_name: str = "",
    billing_email: str = "",
    timezone: str = "America/New_York",
    start: date | None = None,
    seats: tuple[SeatDetails, ...] = (),
    actor: User | None = None,
) -> NewAccount:
    """Create and subscribe an account; invite its owner by email to set a password (or, for
    someone who already signs in to Seatwise, tell them the account was added to their login).

    Seats given here are onboarded with the signup (their fees on the signup invoice). The
    subscription starts on `start`, by default today in the account's time zone. The audit
    log names `actor`, or the owner for a signup. Raises SeatRuleError (several seats on a
    solo account) and BillingRuleError (a retired plan); the caller rolls back.
    """
    start = start or utcnow().astimezone(ZoneInfo(timezone)).date()
    owner = find_user_by_email(owner_email)
    if owner is None:
        owner = User(email=owner_email.strip().lower(), name=owner_name.strip() or owner_email)
        db.session.add(owner)
    account = Account(
        slug=slug_for(name),
        name=name.strip(),
        kind=kind,
        timezone=timezone,
        billing_email=(billing_email or owner_email).strip().lower(),
    )
    db.session.add(account)
    db.session.flush()
    actor = actor or owner
    with tenant_context(account.id):
        db.session.add(Membership(account_id=account.id, user_id=owner.id, role=Role.OWNER))
        record(
            "account.created",
            account_id=account.id,
            target=account,
            actor=actor,
            details={"kind": kind.value, "plan": plan.code, "owner": owner.email},
        )
        for details in seats:
            create_seat(account, details, actor=actor, at_signup=True)
        subscribed = subscribe(account, plan, start, signup_seats=len(seats), actor=actor)
        if owner.password_hash is None:
            send_invitation(owner, account.name, account.id)
        else:
            queue_email(
                owner.email,
                "account_access",
                account_id=account.id,
                user=owner,
                account_name=account.name,
                account_slug=account.slug,
                role_label=Role.OWNER.label,
                seat=None,
                inviter=None,
            )
    return NewAccount(account, owner, subscribed)
