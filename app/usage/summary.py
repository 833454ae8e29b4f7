"""Where a period stands: usage against the plan, overage so far, and the projection.

Plain values in, plain values out (no Flask, no database), built on `app.billing` so
the dashboard's money is the invoice's money.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app import billing


@dataclass(frozen=True)
class UsageSummary:
    used: int
    allowance: int
    grace: int
    overage_leads: int
    overage_cents: int
    projected_used: int
    projected_overage_leads: int
    projected_overage_cents: int
    days_left: int
    day_count: int
    elapsed_fraction: float
    cheaper_plan: billing.PlanCost | None
    current_cost_at_projection: int

    @property
    def percent_used(self) -> int:
        return round(100 * self.used / self.allowance)

    @property
    def remaining(self) -> int:
        return max(0, self.allowance - self.used)

    @property
    def saving_cents(self) -> int:
        if self.cheaper_plan is None:
            return 0
        return self.current_cost_at_projection - self.cheaper_plan.total_cents


def _overage(ledger: billing.PeriodLedger, used: int) -> tuple[int, int]:
    """(leads, cents) of overage for `used` leads: frozen segments plus the current one."""
    current = ledger.overage_leads(used)
    leads = ledger.frozen_leads + current
    cents = sum(step.frozen_cents for step in ledger.upgrades) + current * ledger.terms.cpl_cents
    return leads, cents


def summarise(
    ledger: billing.PeriodLedger,
    used: int,
    now: datetime,
    catalogue: list[billing.PlanTerms],
    is_open: bool,
) -> UsageSummary:
    """Usage of the ledger's period at `now`, projected to the period's end at the pace
    so far (a closed period projects to what it used)."""
    period = ledger.period
    total = (period.ends_at - period.starts_at).total_seconds()
    elapsed = min(total, max(0.0, (billing.as_utc(now) - period.starts_at).total_seconds()))
    fraction = elapsed / total if is_open else 1.0
    # Less than an hour in, the pace says nothing yet: project what has been used.
    projected = round(used / fraction) if is_open and elapsed >= 3600 else used
    projected = max(projected, used)
    overage_leads, overage_cents = _overage(ledger, used)
    projected_leads, projected_cents = _overage(ledger, projected)
    cheaper, current_cost = None, 0
    if is_open and catalogue:
        # The recommender's own figures, so the hint and the billing page agree.
        costs = billing.plan_costs(catalogue, projected, ledger.grace)
        mine = next((cost for cost in costs if cost.plan.code == ledger.terms.code), None)
        best = costs[0]
        if mine is not None:
            current_cost = mine.total_cents
            bigger = best.plan.allowance > mine.plan.allowance
            if bigger and best.total_cents < mine.total_cents:
                cheaper = best
    return UsageSummary(
        used=used,
        allowance=ledger.terms.allowance,
        grace=ledger.grace,
        overage_leads=overage_leads,
        overage_cents=overage_cents,
        projected_used=projected,
        projected_overage_leads=projected_leads,
        projected_overage_cents=projected_cents,
        days_left=period.days_left(now) if is_open else 0,
        day_count=period.day_count,
        elapsed_fraction=fraction,
        cheaper_plan=cheaper,
        current_cost_at_projection=current_cost,
    )
