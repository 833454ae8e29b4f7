"""Seatwise billing rules as pure functions: plain values in, plain values out.

Money is integer cents, moments are tz-aware (stored as UTC) and period boundaries are local
midnights in the account's time zone. Nothing here imports Flask or SQLAlchemy, so every rule can
be tested exhaustively on its own.
"""

from app.billing.changes import PeriodLedger, UpgradePreview, UpgradeStep, preview_upgrade, upgrade
from app.billing.errors import BillingRuleError
from app.billing.invoices import (
    InvoiceLine,
    LineKind,
    Renewal,
    closing_lines,
    invoice_total,
    seat_fee_applies,
    signup_lines,
)
from app.billing.money import format_cents
from app.billing.periods import (
    Period,
    as_utc,
    month_index,
    month_key,
    period_bounds,
    period_index_at,
)
from app.billing.plans import PlanCost, PlanTerms, plan_costs, validate_catalogue
from app.billing.subscription import (
    DowngradePreview,
    Subscription,
    cancel,
    preview_downgrade,
    renew,
    renewal_plan_code,
    schedule_downgrade,
    subscription_after_upgrade,
    undo_cancel,
    withdraw_downgrade,
)
from app.billing.usage import (
    CallAttempt,
    CountedLead,
    count_new_leads,
    first_attempt_periods,
    overage_leads,
)
from app.billing.wording import format_count, format_day

__all__ = [
    "BillingRuleError",
    "CallAttempt",
    "CountedLead",
    "DowngradePreview",
    "InvoiceLine",
    "LineKind",
    "Period",
    "PeriodLedger",
    "PlanCost",
    "PlanTerms",
    "Renewal",
    "Subscription",
    "UpgradePreview",
    "UpgradeStep",
    "as_utc",
    "cancel",
    "closing_lines",
    "count_new_leads",
    "first_attempt_periods",
    "format_cents",
    "format_count",
    "format_day",
    "invoice_total",
    "month_index",
    "month_key",
    "overage_leads",
    "period_bounds",
    "period_index_at",
    "plan_costs",
    "preview_downgrade",
    "preview_upgrade",
    "renew",
    "renewal_plan_code",
    "schedule_downgrade",
    "seat_fee_applies",
    "signup_lines",
    "subscription_after_upgrade",
    "undo_cancel",
    "upgrade",
    "validate_catalogue",
    "withdraw_downgrade",
]
