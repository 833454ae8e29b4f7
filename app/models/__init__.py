"""Typed SQLAlchemy models, one module per aggregate."""

from app.models.accounts import Account, AccountKind, AccountStatus, Membership, Role, User
from app.models.base import TenantScoped, utcnow
from app.models.billing import (
    BillingPeriod,
    BillingRun,
    Counter,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    PeriodStatus,
    Plan,
    PlanChange,
    Subscription,
    SubscriptionStatus,
)
from app.models.calls import (
    CallAttempt,
    Disposition,
    IngestionError,
    Lead,
    SeatUsage,
    UsageDay,
)
from app.models.ops import ApiKey, AuditEvent, EmailStatus, OutboxEmail, Setting
from app.models.reports import Report, ReportFormat, ReportStatus
from app.models.seats import Person, Profession, Seat, SeatStatus

__all__ = [
    "Account",
    "AccountKind",
    "AccountStatus",
    "ApiKey",
    "AuditEvent",
    "BillingPeriod",
    "BillingRun",
    "CallAttempt",
    "Counter",
    "Disposition",
    "EmailStatus",
    "IngestionError",
    "Invoice",
    "InvoiceKind",
    "InvoiceLine",
    "InvoiceStatus",
    "Lead",
    "Membership",
    "OutboxEmail",
    "PeriodStatus",
    "Person",
    "Plan",
    "PlanChange",
    "Profession",
    "Report",
    "ReportFormat",
    "ReportStatus",
    "Role",
    "Seat",
    "SeatStatus",
    "SeatUsage",
    "Setting",
    "Subscription",
    "SubscriptionStatus",
    "TenantScoped",
    "UsageDay",
    "User",
    "utcnow",
]
