"""Rules the database holds itself (triggers, checks, unique constraints), so no code path —
a script, a console session, a bug — can break them. Each write goes straight through the ORM
to the real database inside a savepoint, so the test's own transaction survives the refusal.

Both drivers report these as `sqlalchemy.exc.IntegrityError`: SQLite's trigger RAISE(ABORT)
and constraint failures are sqlite3.IntegrityError, and the PostgreSQL triggers raise
SQLSTATE 23000 (psycopg.errors.IntegrityConstraintViolation, an IntegrityError).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    CallAttempt,
    Disposition,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    Lead,
    Person,
    Plan,
    Seat,
)
from app.tenancy import tenant_context
from tests import factories


def refused(write: Callable[[], object], match: str) -> None:
    """`write` (then a flush) is refused by the database with a message matching `match`;
    the savepoint it ran in is rolled back and the test goes on."""
    savepoint = db.session.begin_nested()
    write()
    with pytest.raises(IntegrityError, match=match) as refusal:
        db.session.flush()
    assert type(refusal.value) is IntegrityError
    savepoint.rollback()


def accepted(write: Callable[[], object]) -> None:
    savepoint = db.session.begin_nested()
    write()
    db.session.flush()
    savepoint.commit()


def stored(column: sa.ColumnElement[object], where: sa.ColumnElement[bool]) -> object:
    """The value in the database now, not the session's copy."""
    return db.session.execute(sa.select(column).where(where)).scalar_one()


@pytest.fixture
def tenant(account: Account) -> Iterator[Account]:
    with tenant_context(account.id):
        yield account


# --- seats and their people -----------------------------------------------------------------


def test_a_seats_primary_never_changes(tenant: Account) -> None:
    seat = factories.make_seat(tenant)
    primary_id = seat.primary_person_id
    newcomer = Person(name="Newcomer", email="newcomer@ex.example")
    db.session.add(newcomer)
    db.session.flush()

    def swap() -> None:
        seat.primary_person_id = newcomer.id

    refused(swap, "the Primary of a seat never changes")
    assert stored(Seat.primary_person_id, Seat.id == seat.id) == primary_id


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "Someone Else"), ("email", "someone.else@ex.example"), ("mobile", "+15550100")],
)
def test_a_primary_persons_identity_cannot_be_edited(
    tenant: Account, field: str, value: str
) -> None:
    seat = factories.make_seat(tenant)
    primary = db.session.get_one(Person, seat.primary_person_id)
    before = getattr(primary, field)

    def edit() -> None:
        setattr(primary, field, value)

    refused(edit, "the Primary of a seat cannot be edited")
    assert stored(getattr(Person, field), Person.id == seat.primary_person_id) == before


def test_a_backup_person_can_be_edited(tenant: Account) -> None:
    seat = factories.make_seat(tenant, backup=True)
    assert seat.backup_person_id is not None
    backup = db.session.get_one(Person, seat.backup_person_id)

    def edit() -> None:
        backup.name = "Renamed Backup"
        backup.email = "renamed.backup@ex.example"

    accepted(edit)
    assert stored(Person.name, Person.id == backup.id) == "Renamed Backup"


def test_a_person_on_no_seat_can_be_edited(tenant: Account) -> None:
    person = Person(name="Free", email="free@ex.example")
    db.session.add(person)
    db.session.flush()

    def edit() -> None:
        person.name = "Still Free"

    accepted(edit)
    assert stored(Person.name, Person.id == person.id) == "Still Free"


def test_the_backup_cannot_be_the_primary(tenant: Account) -> None:
    seat = factories.make_seat(tenant)

    def same_person() -> None:
        seat.backup_person_id = seat.primary_person_id

    refused(same_person, "backup_is_not_primary")
    assert stored(Seat.backup_person_id, Seat.id == seat.id) is None


# --- invoices -------------------------------------------------------------------------------


def _signup_invoice() -> Invoice:
    return db.session.scalars(sa.select(Invoice).where(Invoice.kind == InvoiceKind.SIGNUP)).one()


def test_invoice_lines_cannot_be_updated(tenant: Account) -> None:
    line = _signup_invoice().lines[0]
    before = line.description

    def edit() -> None:
        line.description = "Something cheaper"

    refused(edit, "issued invoice lines never change")
    assert stored(InvoiceLine.description, InvoiceLine.id == line.id) == before


def test_invoice_lines_cannot_be_deleted(tenant: Account) -> None:
    line = _signup_invoice().lines[0]

    def remove() -> None:
        db.session.delete(line)

    refused(remove, "issued invoice lines never change")
    assert stored(sa.func.count(InvoiceLine.id), InvoiceLine.id == line.id) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("total_cents", 1),
        ("number", "INV-FORGED"),
        ("issued_at", datetime(2020, 1, 1, tzinfo=UTC)),
    ],
)
def test_an_issued_invoice_never_changes(tenant: Account, field: str, value: object) -> None:
    invoice = _signup_invoice()
    before = getattr(invoice, field)

    def edit() -> None:
        setattr(invoice, field, value)

    refused(edit, "an issued invoice never changes")
    assert stored(getattr(Invoice, field), Invoice.id == invoice.id) == before


def test_an_invoice_can_be_marked_paid(tenant: Account) -> None:
    invoice = _signup_invoice()

    def pay() -> None:
        invoice.status = InvoiceStatus.PAID

    accepted(pay)
    assert stored(Invoice.status, Invoice.id == invoice.id) == InvoiceStatus.PAID


def test_a_period_has_at_most_one_closing_invoice(tenant: Account) -> None:
    period = db.session.scalars(sa.select(BillingPeriod)).one()

    def closing_invoice(number: str) -> Invoice:
        return Invoice(
            number=number,
            kind=InvoiceKind.CLOSING,
            period_id=period.id,
            closes_period_id=period.id,
            issued_at=datetime.now(UTC),
            total_cents=0,
        )

    accepted(lambda: db.session.add(closing_invoice("T-CLOSE-1")))
    refused(lambda: db.session.add(closing_invoice("T-CLOSE-2")), "closes_period_id")


# --- the plan catalogue ---------------------------------------------------------------------


def test_a_plan_price_is_allowance_times_cpl(account: Account) -> None:
    def mispriced() -> None:
        db.session.add(
            Plan(code="BAD", name="Bad", allowance=100, cpl_cents=1000, price_cents=99_999)
        )

    refused(mispriced, "price_is_allowance_x_cpl")
    accepted(
        lambda: db.session.add(
            Plan(code="GOOD", name="Good", allowance=100, cpl_cents=999, price_cents=99_900)
        )
    )


# --- call data ------------------------------------------------------------------------------


def test_a_call_attempt_event_id_is_stored_once(tenant: Account) -> None:
    seat = factories.first_seat(tenant)
    period = db.session.scalars(sa.select(BillingPeriod)).one()
    lead = Lead(seat_id=seat.id, external_id="guard-1", received_at=datetime.now(UTC))
    db.session.add(lead)
    db.session.flush()

    def attempt() -> CallAttempt:
        return CallAttempt(
            event_id="dialer-event-42",
            seat_id=seat.id,
            lead_id=lead.id,
            attempted_at=datetime.now(UTC),
            disposition=Disposition.VOICEMAIL_NO_ANSWER,
            period_id=period.id,
        )

    accepted(lambda: db.session.add(attempt()))
    refused(lambda: db.session.add(attempt()), "event_id")
