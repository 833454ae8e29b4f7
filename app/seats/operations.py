"""Seat writes: create a seat from an onboarding form, change its Backup, deactivate and
reactivate it. Flush and audit, never commit; a refused change raises `SeatRuleError`.

Nothing here changes a seat's Primary: a different Primary is a new seat
(`start_seat_for_new_primary`), and the database refuses the change anyway.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from app.audit import record
from app.billing import format_cents
from app.extensions import db
from app.models import Account, AccountKind, Person, Profession, Seat, SeatStatus, User, utcnow
from app.seats.queries import seat_count

# No 0/O or 1/I/L: references are read out on the phone.
_REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

SOLO_ONE_SEAT = (
    "A solo account has one seat, with no seat fee. For more seats, the account needs to be a "
    "brokerage or agency account: ask the Seatwise team."
)


class SeatRuleError(Exception):
    """A seat rule refused the change. The message is for the user; `field` names the form
    field it belongs beside, when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PersonDetails:
    name: str
    email: str
    mobile: str = ""
    profession: Profession = Profession.AGENT
    licence: str = ""


@dataclass(frozen=True)
class SeatDetails:
    primary: PersonDetails
    backup: PersonDetails | None = None
    client_label: str = ""
    onboarding: dict[str, Any] = field(default_factory=dict)


def new_seat_reference() -> str:
    while True:
        reference = "ST-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(6))
        with_same = db.session.scalar(
            sa.select(sa.func.count()).select_from(Seat).where(Seat.reference == reference)
        )
        if not with_same:
            return reference


def _person(account: Account, details: PersonDetails) -> Person:
    person = Person(
        account_id=account.id,
        name=details.name.strip(),
        email=details.email.strip().lower(),
        mobile=details.mobile.strip(),
        profession=details.profession,
        licence=details.licence.strip(),
    )
    db.session.add(person)
    db.session.flush()
    return person


def create_seat(
    account: Account, details: SeatDetails, actor: User | None = None, at_signup: bool = False
) -> Seat:
    """Create a seat from an onboarding form. Its Primary is fixed from now on.

    A seat added after signup has its one-time fee put on the open period's closing
    invoice (brokerage and agency accounts); signup seats are billed by the signup invoice.
    Raises SeatRuleError for a second seat on a solo account, and BillingRuleError when a
    seat added after signup finds no open billing period.
    """
    from app.billing_portal.notify import notify
    from app.billing_portal.operations import charge_seat_fee

    if account.kind is AccountKind.SOLO and seat_count() > 0:
        raise SeatRuleError(SOLO_ONE_SEAT)
    primary = _person(account, details.primary)
    backup = _person(account, details.backup) if details.backup else None
    seat = Seat(
        account_id=account.id,
        reference=new_seat_reference(),
        client_label=details.client_label.strip(),
        primary_person_id=primary.id,
        backup_person_id=backup.id if backup else None,
        onboarding=details.onboarding,
    )
    db.session.add(seat)
    db.session.flush()
    record(
        "seat.created",
        account_id=account.id,
        target=seat,
        actor=actor,
        details={
            "reference": seat.reference,
            "primary": primary.email,
            "backup": backup.email if backup else None,
            "client": seat.client_label,
            **_started_from(details),
        },
    )
    if not at_signup:
        fee = charge_seat_fee(account, seat)
        client = f" ({seat.client_label})" if seat.client_label else ""
        charge = f"; one-time fee {format_cents(fee)} on this period's invoice" if fee else ""
        notify(
            account,
            "seat added",
            f"New seat {seat.reference} for {primary.name}{client}{charge}.",
            actor=actor,
        )
    return seat


def _started_from(details: SeatDetails) -> dict[str, Any]:
    started_from = details.onboarding.get("started_from")
    return {"started_from": started_from} if started_from else {}


def _refuse_if_expired(seat: Seat) -> None:
    if seat.status is SeatStatus.EXPIRED:
        raise SeatRuleError("This seat expired with the account's plan; it can no longer change.")


def set_backup(
    account: Account, seat: Seat, details: PersonDetails | None, actor: User | None = None
) -> None:
    """Add, replace (a new Person) or remove (None) the seat's Backup; audited.

    Raises SeatRuleError when the seat has expired, when there is no Backup to remove, or
    when the Backup would be the Primary.
    """
    _refuse_if_expired(seat)
    old = seat.backup
    if details is None and old is None:
        raise SeatRuleError("This seat has no Backup to remove.")
    if details is not None and details.email.strip().lower() == seat.primary.email:
        raise SeatRuleError("The Backup must be someone other than the Primary.", field="email")
    change = "removed" if details is None else "replaced" if old else "added"
    seat.backup_person_id = _person(account, details).id if details else None
    db.session.flush()
    db.session.expire(seat, ["backup"])
    record(
        "seat.backup_changed",
        account_id=account.id,
        target=seat,
        actor=actor,
        details={
            "change": change,
            "from": old.email if old else None,
            "to": details.email.strip().lower() if details else None,
        },
    )


def deactivate_seat(account: Account, seat: Seat, actor: User | None = None) -> None:
    """Stop the ISA team working the seat's new leads; it stays on the plan. Audited.

    Raises SeatRuleError when the seat has expired or is already deactivated.
    """
    _refuse_if_expired(seat)
    if seat.deactivated_at is not None:
        raise SeatRuleError("This seat is already deactivated.")
    seat.deactivated_at = utcnow()
    db.session.flush()
    record(
        "seat.deactivated",
        account_id=account.id,
        target=seat,
        actor=actor,
        details={"reference": seat.reference},
    )


def reactivate_seat(account: Account, seat: Seat, actor: User | None = None) -> None:
    """Have the ISA team work the seat's new leads again. No new fee: it never left the plan.

    Raises SeatRuleError when the seat has expired or is not deactivated.
    """
    _refuse_if_expired(seat)
    if seat.deactivated_at is None:
        raise SeatRuleError("This seat is already being worked.")
    seat.deactivated_at = None
    db.session.flush()
    record(
        "seat.reactivated",
        account_id=account.id,
        target=seat,
        actor=actor,
        details={"reference": seat.reference},
    )


def start_seat_for_new_primary(
    account: Account,
    old_seat: Seat,
    details: SeatDetails,
    deactivate_old: bool,
    actor: User | None = None,
) -> Seat:
    """A new seat (and a new seat fee) for a different Primary, started from `old_seat`'s
    details; `old_seat` keeps its Primary and is deactivated if asked (and still worked).

    Raises what `create_seat` raises.
    """
    started = replace(
        details, onboarding={**details.onboarding, "started_from": old_seat.reference}
    )
    seat = create_seat(account, started, actor=actor)
    if deactivate_old and old_seat.is_worked:
        deactivate_seat(account, old_seat, actor)
    return seat
