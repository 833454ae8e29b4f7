"""Accounts (the tenants), users and their memberships."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Base
from app.models.base import TenantScoped, UTCDateTime, created_at_column, str_enum

if TYPE_CHECKING:
    from app.models.seats import Seat


class AccountKind(enum.StrEnum):
    SOLO = "solo"
    BROKERAGE = "brokerage"
    AGENCY = "agency"

    @property
    def label(self) -> str:
        return {
            "solo": "Solo agent / loan officer",
            "brokerage": "Brokerage or branch",
            "agency": "Marketing agency",
        }[self.value]


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    VIEWER = "viewer"
    SEAT_MEMBER = "seat_member"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class Account(Base):
    """A client of the service: one billing plan, any number of seats."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[AccountKind] = mapped_column(str_enum(AccountKind, "account_kind"))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="America/New_York")
    billing_email: Mapped[str] = mapped_column(sa.String(254))
    status: Mapped[AccountStatus] = mapped_column(
        str_enum(AccountStatus, "account_status"), default=AccountStatus.ACTIVE
    )
    created_at: Mapped[datetime] = created_at_column()

    def __repr__(self) -> str:
        return f"<Account {self.slug}>"


class User(Base):
    """A person who logs in. Belongs to accounts through memberships; operators are staff."""

    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    is_operator: Mapped[bool] = mapped_column(default=False)
    is_active_user: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at_column()
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Flask-Login's user protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.is_active_user

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class Membership(TenantScoped, Base):
    """A user's role in one account; a seat member is tied to exactly one seat."""

    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "user_id"),
        sa.CheckConstraint(
            "(role = 'seat_member') = (seat_id IS NOT NULL)", name="seat_member_has_seat"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, "membership_role"))
    seat_id: Mapped[int | None] = mapped_column(sa.ForeignKey("seats.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = created_at_column()

    account: Mapped[Account] = relationship()
    user: Mapped[User] = relationship()
    seat: Mapped[Seat | None] = relationship()
