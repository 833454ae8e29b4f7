"""Seats: one fixed Primary person and an optional Backup."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Base
from app.models.base import TenantScoped, UTCDateTime, created_at_column, str_enum

# A seat is "active" when it sent a lead this recently, "idle" otherwise (DESIGN §1).
ACTIVE_WINDOW = timedelta(days=14)


class Profession(enum.StrEnum):
    AGENT = "agent"
    LOAN_OFFICER = "loan_officer"

    @property
    def label(self) -> str:
        return "Real-estate agent" if self is Profession.AGENT else "Loan officer"


class SeatStatus(enum.StrEnum):
    # "active"/"idle" (sending leads recently or not) is derived from activity; this is
    # whether the seat is still valid on the plan.
    VALID = "valid"
    EXPIRED = "expired"


class Person(TenantScoped, Base):
    """A Primary or Backup on a seat. A Primary's identity is fixed (database trigger)."""

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(254))
    mobile: Mapped[str] = mapped_column(sa.String(32), default="")
    profession: Mapped[Profession] = mapped_column(
        str_enum(Profession, "person_profession"), default=Profession.AGENT
    )
    licence: Mapped[str] = mapped_column(sa.String(64), default="")
    created_at: Mapped[datetime] = created_at_column()


class Seat(TenantScoped, Base):
    """One onboarding form's result. `primary_person_id` can never change (trigger)."""

    __tablename__ = "seats"
    __table_args__ = (
        sa.CheckConstraint(
            "backup_person_id IS NULL OR backup_person_id <> primary_person_id",
            name="backup_is_not_primary",
        ),
        sa.CheckConstraint("fee_cents >= 0", name="fee_not_negative"),
        # An account's newest seat in one probe (the dashboard's version reads it).
        sa.Index("ix_seats_account_id_id", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(16), unique=True)
    client_label: Mapped[str] = mapped_column(sa.String(200), default="")
    primary_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("persons.id", ondelete="RESTRICT"), unique=True
    )
    backup_person_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("persons.id", ondelete="SET NULL"), unique=True
    )
    status: Mapped[SeatStatus] = mapped_column(
        str_enum(SeatStatus, "seat_status"), default=SeatStatus.VALID
    )
    onboarding: Mapped[dict[str, object]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = created_at_column()
    # The one-time seat fee as it was when the seat was created (0: none), and the billing
    # period whose closing invoice carries it (None: it went on the signup invoice).
    fee_cents: Mapped[int] = mapped_column(default=0)
    fee_period_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("billing_periods.id", ondelete="SET NULL"), index=True
    )
    last_lead_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set while the account has the seat deactivated: it stays on the plan, but the ISA team
    # stops calling its leads (attempts made after it are refused). Not "active" (DESIGN's
    # active/idle is about recent leads).
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    primary: Mapped[Person] = relationship(foreign_keys=[primary_person_id])
    backup: Mapped[Person | None] = relationship(foreign_keys=[backup_person_id])

    @property
    def is_worked(self) -> bool:
        """Whether the ISA team calls this seat's leads: valid on the plan, not deactivated."""
        return self.status is SeatStatus.VALID and self.deactivated_at is None

    @property
    def display_name(self) -> str:
        return (
            f"{self.client_label} · {self.primary.name}" if self.client_label else self.primary.name
        )
