"""Reads for the public pages: the plan catalogue, the chooser and a signup's first invoice."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app import billing
from app.billing_portal.ledger import plan_terms
from app.extensions import db
from app.models import AccountKind, Plan, utcnow
from app.settings import get_setting


def offered_plans() -> list[Plan]:
    """The plans on sale, smallest first."""
    return list(
        db.session.scalars(sa.select(Plan).where(Plan.retired.is_(False)).order_by(Plan.allowance))
    )


def plan_choice(plans: list[Plan], leads: int) -> list[billing.PlanCost]:
    """Every plan's monthly cost for `leads` called leads a month, cheapest first (the billing
    recommender, with the operators' overage grace)."""
    return billing.plan_costs(
        [plan_terms(plan) for plan in plans], leads, grace=int(get_setting("overage_grace_leads"))
    )


def seat_fee_cents() -> int:
    """The one-time fee a brokerage or agency pays per new seat, as set now."""
    return int(get_setting("seat_fee_cents"))


@dataclass(frozen=True)
class SignupCharges:
    """The signup invoice a form would produce, line by line."""

    lines: tuple[billing.InvoiceLine, ...]
    total_cents: int


def signup_charges(plan: Plan, kind: AccountKind, seats: int, timezone: str) -> SignupCharges:
    """The lines of the signup invoice for these choices, starting today: M1's price in
    advance, and the seat fees of a brokerage or agency (the same rules the invoice uses)."""
    start = utcnow().astimezone(ZoneInfo(timezone)).date()
    lines = billing.signup_lines(
        plan_terms(plan),
        billing.period_bounds(start, 1, timezone),
        seat_count=seats,
        seat_fee_cents=seat_fee_cents(),
        account_kind=kind.value,
    )
    return SignupCharges(lines=lines, total_cents=billing.invoice_total(lines))
