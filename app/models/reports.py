"""Requested call reports and their rendering status."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Base
from app.models.base import TenantScoped, UTCDateTime, created_at_column, str_enum


class ReportStatus(enum.StrEnum):
    QUEUED = "queued"
    RENDERING = "rendering"
    READY = "ready"
    FAILED = "failed"


class ReportFormat(enum.StrEnum):
    PDF = "pdf"
    CSV = "csv"


class Report(TenantScoped, Base):
    """A master (all seats) or seat call report; the status the user sees lives here."""

    __tablename__ = "reports"
    __table_args__ = (
        sa.CheckConstraint(
            "(period_id IS NOT NULL) OR (date_from IS NOT NULL AND date_to IS NOT NULL)",
            name="has_period_or_range",
        ),
        # One automatic master report per closed period, however often its delivery job runs.
        sa.Index(
            "uq_reports_automatic_period_id",
            "period_id",
            unique=True,
            sqlite_where=sa.text("automatic"),
            postgresql_where=sa.text("automatic"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    seat_id: Mapped[int | None] = mapped_column(sa.ForeignKey("seats.id", ondelete="CASCADE"))
    period_id: Mapped[int | None] = mapped_column(sa.ForeignKey("billing_periods.id"))
    date_from: Mapped[date | None]
    date_to: Mapped[date | None]
    format: Mapped[ReportFormat] = mapped_column(str_enum(ReportFormat, "report_format"))
    status: Mapped[ReportStatus] = mapped_column(
        str_enum(ReportStatus, "report_status"), default=ReportStatus.QUEUED
    )
    pages_done: Mapped[int] = mapped_column(default=0)
    pages_total: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(sa.Text, default="")
    job_id: Mapped[str | None] = mapped_column(sa.String(64))
    file_path: Mapped[str | None] = mapped_column(sa.String(500))
    size_bytes: Mapped[int | None]
    created_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Made by the period close (no one asked); its owners are emailed once it is ready.
    automatic: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # When the current rendering began: a "rendering" report that has not moved for long
    # belongs to a worker that died, and may be retried.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
