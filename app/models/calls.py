"""Call data from the dialer: leads, call attempts, and the usage counters they keep."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Base
from app.models.base import TenantScoped, UTCDateTime, created_at_column, str_enum
from app.models.seats import Seat


class Disposition(enum.StrEnum):
    """The six outcomes the ISA team records; see DESIGN §1."""

    LIVE_TRANSFER = "live_transfer"
    BOOKED_APPOINTMENT = "booked_appointment"
    CALLBACK_LATER = "callback_later"
    VOICEMAIL_NO_ANSWER = "voicemail_no_answer"
    NOT_INTERESTED_DNC = "not_interested_dnc"
    BAD_DATA_DNC = "bad_data_dnc"

    @property
    def label(self) -> str:
        return _DISPOSITION_LABELS[self]

    @property
    def contacted(self) -> bool:
        return self in _CONTACTED

    @property
    def closes_lead(self) -> bool:
        return self in _CLOSING


_DISPOSITION_LABELS = {
    Disposition.LIVE_TRANSFER: "Live Transfer",
    Disposition.BOOKED_APPOINTMENT: "Booked Appointment",
    Disposition.CALLBACK_LATER: "Callback Later",
    Disposition.VOICEMAIL_NO_ANSWER: "Voicemail / No Answer",
    Disposition.NOT_INTERESTED_DNC: "Not Interested (DNC)",
    Disposition.BAD_DATA_DNC: "Bad Data (DNC)",
}
_CONTACTED = frozenset(
    {
        Disposition.LIVE_TRANSFER,
        Disposition.BOOKED_APPOINTMENT,
        Disposition.CALLBACK_LATER,
        Disposition.NOT_INTERESTED_DNC,
    }
)
_CLOSING = frozenset(
    {
        Disposition.LIVE_TRANSFER,
        Disposition.BOOKED_APPOINTMENT,
        Disposition.NOT_INTERESTED_DNC,
        Disposition.BAD_DATA_DNC,
    }
)


class Lead(TenantScoped, Base):
    """A lead a seat sent in. It is billed once, in the period of its first call attempt."""

    __tablename__ = "leads"
    __table_args__ = (
        sa.UniqueConstraint("seat_id", "external_id"),
        sa.Index("ix_leads_seat_id_received_at", "seat_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seat_id: Mapped[int] = mapped_column(sa.ForeignKey("seats.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(sa.String(100))
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    phone: Mapped[str] = mapped_column(sa.String(32), default="")
    email: Mapped[str] = mapped_column(sa.String(254), default="")
    source: Mapped[str] = mapped_column(sa.String(64), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The period the lead counts in (its month key); set by its first call attempt.
    billed_period_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("billing_periods.id"), index=True
    )
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_disposition: Mapped[Disposition | None] = mapped_column(
        str_enum(Disposition, "lead_last_disposition")
    )
    attempts_count: Mapped[int] = mapped_column(default=0)
    contacted: Mapped[bool] = mapped_column(default=False)
    closed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = created_at_column()

    seat: Mapped[Seat] = relationship()


class CallAttempt(TenantScoped, Base):
    """One dial by an ISA agent. `event_id` makes every delivery idempotent."""

    __tablename__ = "call_attempts"
    __table_args__ = (
        sa.CheckConstraint("duration_seconds >= 0", name="duration_not_negative"),
        sa.Index("ix_call_attempts_lead_id_attempted_at", "lead_id", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(100), unique=True)
    # Not indexed, nor is `period_id`: no query reads attempts by seat or by period, and an
    # index costs every insert (migration 0006).
    seat_id: Mapped[int] = mapped_column(sa.ForeignKey("seats.id", ondelete="CASCADE"))
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disposition: Mapped[Disposition] = mapped_column(
        str_enum(Disposition, "call_attempt_disposition")
    )
    duration_seconds: Mapped[int] = mapped_column(default=0)
    isa_agent: Mapped[str] = mapped_column(sa.String(100), default="")
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    # The open period it was recorded in; `late` when its own period had already closed.
    period_id: Mapped[int] = mapped_column(sa.ForeignKey("billing_periods.id"))
    late: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = created_at_column()

    lead: Mapped[Lead] = relationship()


class SeatUsage(TenantScoped, Base):
    """Counters per (period, seat), kept in the transaction that stores the call data.

    Dashboards and reports read these, never the raw attempts. `version` starts at 1 and
    grows with every change, so the sum of a period's versions moves with every new row and
    every change, and a poll can answer 304 while it stays put.
    """

    __tablename__ = "seat_usage"
    __table_args__ = (sa.UniqueConstraint("period_id", "seat_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(sa.ForeignKey("billing_periods.id", ondelete="CASCADE"))
    seat_id: Mapped[int] = mapped_column(sa.ForeignKey("seats.id", ondelete="CASCADE"), index=True)
    leads_received: Mapped[int] = mapped_column(default=0)
    leads_called: Mapped[int] = mapped_column(default=0)
    leads_contacted: Mapped[int] = mapped_column(default=0)
    transfers: Mapped[int] = mapped_column(default=0)
    appointments: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    late_leads: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)


class UsageDay(TenantScoped, Base):
    """Leads called per seat and local calendar day, for the usage chart."""

    __tablename__ = "usage_days"
    __table_args__ = (sa.UniqueConstraint("period_id", "seat_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(sa.ForeignKey("billing_periods.id", ondelete="CASCADE"))
    seat_id: Mapped[int] = mapped_column(sa.ForeignKey("seats.id", ondelete="CASCADE"))
    day: Mapped[date]
    leads_called: Mapped[int] = mapped_column(default=0)
    leads_received: Mapped[int] = mapped_column(default=0)


class IngestionError(Base):
    """A call-data item the ingestion refused: an API item, or a row of a console import.

    Kept for the operators' view only, and bounded (`app.calls.rejections` keeps the latest
    rows); the dialer itself got the same reasons in its answer.
    """

    __tablename__ = "ingestion_errors"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = created_at_column()
    source: Mapped[str] = mapped_column(sa.String(16))  # "api" or "import"
    # The API list ("leads", "attempts") or the imported file's name.
    batch: Mapped[str] = mapped_column(sa.String(200))
    # The item's index in the request, or the row's line in the file.
    position: Mapped[int]
    item_id: Mapped[str] = mapped_column(sa.String(100), default="")
    api_key_prefix: Mapped[str] = mapped_column(sa.String(16), default="")
    message: Mapped[str] = mapped_column(sa.Text)
