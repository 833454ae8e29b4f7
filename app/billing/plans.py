"""The plan catalogue: plan terms, catalogue rules and the "which plan" recommender."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import pairwise

from app.billing.errors import BillingRuleError
from app.billing.money import format_cents
from app.billing.usage import overage_leads


@dataclass(frozen=True)
class PlanTerms:
    """A plan's terms: monthly lead allowance, price and cost per lead (CPL), all exact.

    A billing period snapshots these, so a catalogue edit never reaches an open period. Raises
    ``BillingRuleError`` unless allowance and CPL are positive and price == allowance x CPL.
    """

    code: str
    name: str
    allowance: int
    price_cents: int
    cpl_cents: int

    def __post_init__(self) -> None:
        problems = []
        if not self.code.strip() or not self.name.strip():
            problems.append("a plan needs a code and a name")
        if self.allowance <= 0:
            problems.append(f"{self.name}: the allowance must be at least 1 lead")
        if self.cpl_cents <= 0:
            problems.append(f"{self.name}: the cost per lead must be more than $0.00")
        if self.price_cents != self.allowance * self.cpl_cents:
            problems.append(
                f"{self.name}: the price {format_cents(self.price_cents)} is not "
                f"{self.allowance} leads x {format_cents(self.cpl_cents)}"
            )
        if problems:
            raise BillingRuleError("; ".join(problems))


@dataclass(frozen=True)
class PlanCost:
    """What one plan would cost for a month's usage, as the recommender shows it."""

    plan: PlanTerms
    overage_leads: int
    overage_cents: int
    total_cents: int
    recommended: bool


def validate_catalogue(plans: Iterable[PlanTerms]) -> list[str]:
    """Return the catalogue's rule violations, empty when it may be saved.

    Each plan is consistent by construction (see ``PlanTerms``). Across plans: codes are unique,
    no two plans share an allowance, and a plan with a bigger allowance has a strictly lower CPL
    and a strictly higher price (a bigger plan that costs no more would make the smaller one
    pointless and turn an upgrade into a refund).
    """
    plans = list(plans)
    errors = [
        f"The plan code {code!r} is used by {count} plans."
        for code, count in Counter(plan.code for plan in plans).items()
        if count > 1
    ]
    by_allowance = sorted(plans, key=lambda plan: (plan.allowance, plan.code))
    for smaller, bigger in pairwise(by_allowance):
        if smaller.allowance == bigger.allowance:
            errors.append(
                f"{smaller.name} and {bigger.name} both have {smaller.allowance} leads; "
                "each plan needs its own allowance."
            )
            continue
        if bigger.cpl_cents >= smaller.cpl_cents:
            errors.append(
                f"{bigger.name} has more leads than {smaller.name} but its cost per lead "
                f"{format_cents(bigger.cpl_cents)} is not lower than "
                f"{format_cents(smaller.cpl_cents)}."
            )
        if bigger.price_cents <= smaller.price_cents:
            errors.append(
                f"{bigger.name} has more leads than {smaller.name} but its price "
                f"{format_cents(bigger.price_cents)} is not higher than "
                f"{format_cents(smaller.price_cents)}."
            )
    return errors


def plan_costs(plans: Iterable[PlanTerms], leads_used: int, grace: int = 0) -> list[PlanCost]:
    """Cost of every plan for ``leads_used`` called leads in a month, cheapest first.

    Each cost is ``price + max(0, leads_used - allowance - grace) x CPL``. Ties go to the smaller
    plan, which commits less money in advance for the same cost. Only the first is
    ``recommended``.
    Raises ``ValueError`` for negative usage or grace.
    """
    costs = []
    for plan in plans:
        over = overage_leads(leads_used, 0, plan.allowance, grace)
        costs.append(
            PlanCost(
                plan=plan,
                overage_leads=over,
                overage_cents=over * plan.cpl_cents,
                total_cents=plan.price_cents + over * plan.cpl_cents,
                recommended=False,
            )
        )
    costs.sort(key=lambda cost: (cost.total_cents, cost.plan.allowance, cost.plan.code))
    if costs:
        costs[0] = replace(costs[0], recommended=True)
    return costs
