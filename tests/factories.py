"""factory_boy factories bound to the test session. Tenant rows are created with the
tenant filter switched off (`unscoped()`), the way an operator's command would."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

import factory
import sqlalchemy as sa
from factory.alchemy import SQLAlchemyModelFactory

from app.auth.passwords import hash_password
from app.extensions import db
from app.models import (
    Account,
    AccountKind,
    Membership,
    Person,
    Plan,
    Role,
    Seat,
    User,
)
from app.tenancy import tenant_context, unscoped

PASSWORD = "correct horse battery"
_PASSWORD_HASH = hash_password(PASSWORD)
_counter = itertools.count(1)


class BaseFactory(SQLAlchemyModelFactory):  # type: ignore[misc]
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> Any:
        with unscoped():
            return super()._create(model_class, *args, **kwargs)


class UserFactory(BaseFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.example")
    name = factory.Faker("name")
    password_hash = _PASSWORD_HASH


class PlanFactory(BaseFactory):
    class Meta:
        model = Plan

    code = factory.Sequence(lambda n: f"P{n}")
    name = factory.LazyAttribute(lambda o: f"Plan {o.allowance}")
    allowance = 100
    cpl_cents = 1000
    price_cents = factory.LazyAttribute(lambda o: o.allowance * o.cpl_cents)


class AccountFactory(BaseFactory):
    class Meta:
        model = Account

    slug = factory.Sequence(lambda n: f"account-{n}")
    name = factory.Sequence(lambda n: f"Account {n}")
    kind = AccountKind.AGENCY
    timezone = "America/New_York"
    billing_email = factory.Sequence(lambda n: f"billing{n}@example.example")


def make_plan(allowance: int = 100, cpl_cents: int = 1000, **kwargs: Any) -> Plan:
    existing = db.session.scalar(
        sa.select(Plan).where(Plan.allowance == allowance, Plan.cpl_cents == cpl_cents)
    )
    return existing or PlanFactory(allowance=allowance, cpl_cents=cpl_cents, **kwargs)


def make_seat(account: Account, client_label: str = "", backup: bool = False) -> Seat:
    n = next(_counter)
    with tenant_context(account.id):
        primary = Person(account_id=account.id, name=f"Primary {n}", email=f"primary{n}@ex.example")
        db.session.add(primary)
        db.session.flush()
        seat = Seat(
            account_id=account.id,
            reference=f"ST-T{n:05d}",
            client_label=client_label,
            primary_person_id=primary.id,
        )
        if backup:
            person = Person(
                account_id=account.id, name=f"Backup {n}", email=f"backup{n}@ex.example"
            )
            db.session.add(person)
            db.session.flush()
            seat.backup_person_id = person.id
        db.session.add(seat)
        db.session.flush()
    return seat


def subscribed_account(
    kind: str = "agency",
    seats: int = 1,
    plan: Plan | None = None,
    start: date | None = None,
    **kwargs: Any,
) -> Account:
    """An account subscribed through the real `subscribe` operation, with seats."""
    from app.billing_portal.operations import subscribe

    account = AccountFactory(kind=AccountKind(kind), **kwargs)
    plan = plan or make_plan()
    for i in range(seats):
        make_seat(account, client_label=f"Client {i % 3}" if kind == "agency" else "")
    with tenant_context(account.id):
        subscribe(account, plan, start or datetime.now(UTC).date(), signup_seats=seats)
    return account


def first_seat(account: Account) -> Seat:
    with tenant_context(account.id):
        seat = db.session.scalars(sa.select(Seat).order_by(Seat.id)).first()
    assert seat is not None
    return seat


def member(account: Account, role: Role, seat_id: int | None = None, **kwargs: Any) -> User:
    user = UserFactory(**kwargs)
    with tenant_context(account.id):
        db.session.add(
            Membership(account_id=account.id, user_id=user.id, role=role, seat_id=seat_id)
        )
        db.session.flush()
    return user
