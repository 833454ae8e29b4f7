"""Deliberately simple reference models the billing rules are checked against.

They follow leads one at a time instead of using the overage formula, so agreement between the two
means the formula really bills every called lead exactly once.
"""

from dataclasses import dataclass, field
from datetime import date, datetime

from app.billing import PlanTerms, period_bounds


@dataclass
class ReferencePeriod:
    """One period, lead by lead.

    Each called lead takes a free place (allowance plus grace) if one is left, otherwise it is
    overage at the rate in force. An upgrade settles the overage so far at the old rate and adds
    the new plan's extra places for the rest of the period.
    """

    terms: PlanTerms
    grace: int
    free_places_taken: int = 0
    unsettled_overage: int = 0
    settled: list[tuple[int, int]] = field(default_factory=list)

    def call_lead(self) -> None:
        if self.free_places_taken < self.terms.allowance + self.grace:
            self.free_places_taken += 1
        else:
            self.unsettled_overage += 1

    def upgrade(self, terms: PlanTerms) -> None:
        self.settled.append((self.unsettled_overage, self.terms.cpl_cents))
        self.unsettled_overage = 0
        self.terms = terms

    def billed_overage(self) -> list[tuple[int, int]]:
        """Overage as (leads, rate) in billing order, without empty entries."""
        entries = [*self.settled, (self.unsettled_overage, self.terms.cpl_cents)]
        return [(leads, rate) for leads, rate in entries if leads > 0]


def brute_force_period_index(anchor: date, tz: str, moment: datetime) -> int:
    """The index of the period containing ``moment``, found by walking from M1."""
    index = 1
    while not period_bounds(anchor, index, tz).contains(moment):
        index += 1
    return index
