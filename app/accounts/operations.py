"""Member writes: invite, change a role, remove. Flush and audit, never commit.

An account always keeps at least one owner: the owners' rows are locked before the last one
could be demoted or removed, so two owners demoting each other at once cannot both succeed.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.audit import record
from app.auth.operations import find_user_by_email
from app.auth.passwords import make_token
from app.extensions import db
from app.mail.operations import queue_email
from app.models import Account, Membership, Role, Seat, User


class MemberRuleError(Exception):
    """A membership rule refused the change; `field` names the form field it belongs beside."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _seat_for(role: Role, seat_id: int | None) -> Seat | None:
    """The seat a seat member is tied to (of this account); None for the other roles."""
    if role is not Role.SEAT_MEMBER:
        return None
    if seat_id is None:
        raise MemberRuleError("Choose the seat this member may see.", field="seat")
    seat = db.session.scalar(sa.select(Seat).where(Seat.id == seat_id))
    if seat is None:
        raise MemberRuleError("That seat is not one of this account's.", field="seat")
    return seat


def _refuse_losing_the_last_owner(membership: Membership, message: str, field: str) -> None:
    if membership.role is not Role.OWNER:
        return
    # Lock every owner row (not only the others): a concurrent change then waits, and re-reads.
    owners = db.session.scalars(
        sa.select(Membership.id)
        .where(Membership.role == Role.OWNER)
        .order_by(Membership.id)
        .with_for_update()
    ).all()
    if not set(owners) - {membership.id}:
        raise MemberRuleError(message, field=field)


def invite_member(
    account: Account, email: str, name: str, role: Role, seat_id: int | None, actor: User
) -> Membership:
    """Give `email` a role in the account and tell them by email: a link to set a password
    for someone new, a note for someone who already signs in to Seatwise.

    Raises MemberRuleError when they are already a member or the seat is missing.
    """
    email = email.strip().lower()
    seat = _seat_for(role, seat_id)
    user = find_user_by_email(email)
    if user is None:
        user = User(email=email, name=name.strip() or email.split("@")[0])
        db.session.add(user)
        db.session.flush()
    elif db.session.scalar(sa.select(Membership.id).where(Membership.user_id == user.id)):
        raise MemberRuleError(f"{email} is already a member of this account.", field="email")
    membership = Membership(
        account_id=account.id, user_id=user.id, role=role, seat_id=seat.id if seat else None
    )
    db.session.add(membership)
    db.session.flush()
    record(
        "member.invited",
        account_id=account.id,
        target=membership,
        actor=actor,
        details={"email": email, "role": role.value, "seat": seat.reference if seat else None},
    )
    context = {
        "user": user,
        "account_name": account.name,
        "account_slug": account.slug,
        "role_label": role.label,
        "seat": seat,
        "inviter": actor.name or actor.email,
    }
    if user.password_hash is None:
        queue_email(
            email,
            "member_invitation",
            account_id=account.id,
            token=make_token(user, "invite"),
            **context,
        )
    else:
        queue_email(email, "account_access", account_id=account.id, **context)
    return membership


def change_role(
    account: Account,
    membership: Membership,
    role: Role,
    seat_id: int | None,
    actor: User | None = None,
) -> bool:
    """Change a member's role (and a seat member's seat); False when nothing changed.

    Raises MemberRuleError for the last owner's demotion or a missing seat.
    """
    seat = _seat_for(role, seat_id)
    new_seat_id = seat.id if seat else None
    if (membership.role, membership.seat_id) == (role, new_seat_id):
        return False
    if role is not Role.OWNER:
        _refuse_losing_the_last_owner(
            membership,
            "An account needs an owner: make someone else an owner before changing this role.",
            "role",
        )
    old_role = membership.role
    membership.role, membership.seat_id = role, new_seat_id
    db.session.flush()
    record(
        "member.role_changed",
        account_id=account.id,
        target=membership,
        actor=actor,
        details={
            "email": membership.user.email,
            "from": old_role.value,
            "to": role.value,
            "seat": seat.reference if seat else None,
        },
    )
    return True


def remove_member(account: Account, membership: Membership, actor: User | None = None) -> None:
    """Take a member out of the account (their login stays, for their other accounts).

    Raises MemberRuleError for the last owner.
    """
    _refuse_losing_the_last_owner(
        membership,
        "An account needs an owner: make someone else an owner before removing this one.",
        "",
    )
    email, role = membership.user.email, membership.role
    record(
        "member.removed",
        account_id=account.id,
        target=membership,
        actor=actor,
        details={"email": email, "role": role.value},
    )
    db.session.delete(membership)
    db.session.flush()
