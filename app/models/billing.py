"""The plan catalogue, subscriptions, billing periods, plan changes and invoices."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Base
from app.models.base import TenantScoped, UTCDateTime, created_at_column, str_enum


class Plan(Base):
    """A lead package of the catalogue. `price = allowance × CPL` is held by the database."""

    __tablename__ = "plans"
    __table_args__ = (
        sa.CheckConstraint("allowance > 0", name="allowance_positive"),
        sa.CheckConstraint("cpl_cents > 0", name="cpl_positive"),
        sa.CheckConstraint("price_cents = allowance * cpl_cents", name="price_is_allowance_x_cpl"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    allowance: Mapped[int]
    price_cents: Mapped[int]
    cpl_cents: Mapped[int]
    retired: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = created_at_column()


class SubscriptionStatus(enum.StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class Subscription(TenantScoped, Base):
    """An account's monthly, auto-renewing subscription, anchored on its start date."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id"))
    anchor_date: Mapped[date]
    status: Mapped[SubscriptionStatus] = mapped_column(
        str_enum(SubscriptionStatus, "subscription_status"), default=SubscriptionStatus.ACTIVE
    )
    scheduled_plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("plans.id"))
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    cancel_reason: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = created_at_column()
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    plan: Mapped[Plan] = relationship(foreign_keys=[plan_id])
    scheduled_plan: Mapped[Plan | None] = relationship(foreign_keys=[scheduled_plan_id])


class PeriodStatus(enum.StrEnum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class BillingPeriod(TenantScoped, Base):
    """One month of a subscription, with the plan terms it runs on (a snapshot)."""

    __tablename__ = "billing_periods"
    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "month_index"),
        sa.CheckConstraint("month_index >= 1", name="month_index_positive"),
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        sa.CheckConstraint("allowance > 0 AND cpl_cents > 0", name="terms_positive"),
        sa.CheckConstraint("price_cents = allowance * cpl_cents", name="price_is_allowance_x_cpl"),
        sa.Index("ix_billing_periods_status_ends_at", "status", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    month_index: Mapped[int]
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id"))
    plan_code: Mapped[str] = mapped_column(sa.String(32))
    plan_name: Mapped[str] = mapped_column(sa.String(100))
    allowance: Mapped[int]
    price_cents: Mapped[int]
    cpl_cents: Mapped[int]
    grace_leads: Mapped[int] = mapped_column(default=0)
    # The seat fee of seats added in this period, snapshotted like the plan terms.
    seat_fee_cents: Mapped[int] = mapped_column(default=0)
    status: Mapped[PeriodStatus] = mapped_column(
        str_enum(PeriodStatus, "period_status"), default=PeriodStatus.OPEN
    )
    closing_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why the last attempt to close failed (shown to operators); cleared by a good close.
    close_error: Mapped[str] = mapped_column(sa.Text, default="")

    subscription: Mapped[Subscription] = relationship()
    plan_changes: Mapped[list[PlanChange]] = relationship(
        back_populates="period", order_by="PlanChange.id"
    )

    @property
    def key(self) -> str:
        return f"M{self.month_index}"


class PlanChange(TenantScoped, Base):
    """An upgrade inside a period: the overage frozen at the old CPL and the price difference."""

    __tablename__ = "plan_changes"
    __table_args__ = (
        sa.CheckConstraint("frozen_leads >= 0", name="frozen_leads_not_negative"),
        sa.CheckConstraint("price_difference_cents >= 0", name="difference_not_negative"),
        sa.CheckConstraint("to_allowance > from_allowance", name="upgrade_is_bigger"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(
        sa.ForeignKey("billing_periods.id", ondelete="CASCADE"), index=True
    )
    # Both sides' terms as they were, so the ledger can be rebuilt exactly.
    from_plan_code: Mapped[str] = mapped_column(sa.String(32))
    from_plan_name: Mapped[str] = mapped_column(sa.String(100))
    from_allowance: Mapped[int]
    from_price_cents: Mapped[int]
    to_plan_code: Mapped[str] = mapped_column(sa.String(32))
    to_plan_name: Mapped[str] = mapped_column(sa.String(100))
    to_allowance: Mapped[int]
    to_price_cents: Mapped[int]
    to_cpl_cents: Mapped[int]
    used_at_change: Mapped[int]
    frozen_leads: Mapped[int]
    frozen_cpl_cents: Mapped[int]
    price_difference_cents: Mapped[int]
    changed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = created_at_column()

    period: Mapped[BillingPeriod] = relationship(back_populates="plan_changes")


class InvoiceKind(enum.StrEnum):
    SIGNUP = "signup"
    CLOSING = "closing"


class InvoiceStatus(enum.StrEnum):
    ISSUED = "issued"
    PAID = "paid"


class Invoice(TenantScoped, Base):
    """An issued invoice. Lines and totals are immutable (database triggers)."""

    __tablename__ = "invoices"
    __table_args__ = (
        sa.CheckConstraint("total_cents >= 0", name="total_not_negative"),
        sa.CheckConstraint(
            "(kind = 'closing') = (closes_period_id IS NOT NULL)", name="closing_names_period"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(32), unique=True)
    kind: Mapped[InvoiceKind] = mapped_column(str_enum(InvoiceKind, "invoice_kind"))
    period_id: Mapped[int] = mapped_column(sa.ForeignKey("billing_periods.id"), index=True)
    # Unique: one closing invoice per period, whatever races to close it.
    closes_period_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("billing_periods.id"), unique=True
    )
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    total_cents: Mapped[int]
    status: Mapped[InvoiceStatus] = mapped_column(
        str_enum(InvoiceStatus, "invoice_status"), default=InvoiceStatus.ISSUED
    )
    pdf_path: Mapped[str | None] = mapped_column(sa.String(500))
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    period: Mapped[BillingPeriod] = relationship(foreign_keys=[period_id])
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.position"
    )


class InvoiceLine(TenantScoped, Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (
        sa.UniqueConstraint("invoice_id", "position"),
        sa.CheckConstraint("amount_cents = quantity * unit_cents", name="amount_is_qty_x_unit"),
        sa.CheckConstraint("quantity >= 0 AND unit_cents >= 0", name="not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id", ondelete="CASCADE"))
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(sa.String(32))
    description: Mapped[str] = mapped_column(sa.String(300))
    quantity: Mapped[int]
    unit_cents: Mapped[int]
    amount_cents: Mapped[int]

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class Counter(Base):
    """Named gap-free counters (invoice numbers), advanced with UPDATE ... RETURNING."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class BillingRun(Base):
    """One run of the period close over a batch of due periods, for the operators' view."""

    __tablename__ = "billing_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(sa.String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_count: Mapped[int] = mapped_column(default=0)
    closed_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)
    failed_count: Mapped[int] = mapped_column(default=0)
    failures: Mapped[list[dict[str, object]]] = mapped_column(sa.JSON, default=list)
