"""Plan changes inside one billing period: the period ledger and upgrades.

An upgrade takes effect at once: the overage accumulated so far is frozen at the old plan's CPL,
the new allowance covers the whole period, the price difference is billed at close, and later
overage uses the new CPL. Downgrades and cancellations only affect the renewal; they live in
``app.billing.subscription``.
"""

from dataclasses import dataclass, replace

from app.billing.errors import BillingRuleError
from app.billing.money import format_cents
from app.billing.periods import Period
from app.billing.plans import PlanTerms
from app.billing.usage import overage_leads
from app.billing.wording import format_count


@dataclass(frozen=True)
class UpgradeStep:
    """One upgrade within a period, as recorded on its ledger.

    ``frozen_leads`` were over the old plan at the moment of the change; they are billed at the
    old plan's CPL. The price difference is floored at zero: with a valid catalogue a bigger plan
    always costs more, but the period's snapshot of the old plan may predate a catalogue edit, and
    nothing is ever refunded.
    """

    from_terms: PlanTerms
    to_terms: PlanTerms
    used_at_change: int
    frozen_leads: int

    @property
    def frozen_cents(self) -> int:
        """The frozen overage's amount, at the old plan's CPL."""
        return self.frozen_leads * self.from_terms.cpl_cents

    @property
    def price_difference_cents(self) -> int:
        """New price minus old price, billed on the period's closing invoice (never negative)."""
        return max(0, self.to_terms.price_cents - self.from_terms.price_cents)


@dataclass(frozen=True)
class PeriodLedger:
    """A billing period's terms as they stand now, and the upgrades that led there.

    ``terms`` and ``grace`` are snapshots taken when the period opened (``terms`` then moves with
    each upgrade), so later catalogue or setting edits never reach an open period.
    """

    period: Period
    terms: PlanTerms
    grace: int
    upgrades: tuple[UpgradeStep, ...] = ()

    def __post_init__(self) -> None:
        if self.grace < 0:
            raise ValueError(f"grace must not be negative, got {self.grace}")

    @property
    def frozen_leads(self) -> int:
        """Leads already billed as overage by this period's upgrades."""
        return sum(step.frozen_leads for step in self.upgrades)

    def overage_leads(self, used: int) -> int:
        """Leads over the current plan for ``used`` called leads, net of frozen overage.

        Raises ``ValueError`` when ``used`` is lower than at the last upgrade: usage of a period
        only grows, so a lower figure is a caller's bug that would bill a lead twice.
        """
        if self.upgrades and used < self.upgrades[-1].used_at_change:
            raise ValueError(
                f"{used} called leads is less than the {self.upgrades[-1].used_at_change} "
                "recorded at the last upgrade"
            )
        return overage_leads(used, self.frozen_leads, self.terms.allowance, self.grace)


@dataclass(frozen=True)
class UpgradePreview:
    """What an upgrade will do, stated exactly before the user confirms it."""

    from_terms: PlanTerms
    to_terms: PlanTerms
    frozen_leads: int
    frozen_rate_cents: int
    frozen_cents: int
    price_difference_cents: int
    new_allowance: int
    statements: tuple[str, ...]


def preview_upgrade(ledger: PeriodLedger, new_terms: PlanTerms, used_now: int) -> UpgradePreview:
    """Describe upgrading to ``new_terms`` with ``used_now`` called leads, without doing it.

    Raises ``BillingRuleError`` unless the new plan's allowance is strictly bigger.
    """
    return _preview(ledger, _upgrade_step(ledger, new_terms, used_now))


def upgrade(
    ledger: PeriodLedger, new_terms: PlanTerms, used_now: int
) -> tuple[PeriodLedger, UpgradePreview]:
    """Upgrade the period to ``new_terms`` now, with ``used_now`` called leads so far.

    Returns the new ledger and the preview of what was done (for the confirmation and audit log).
    Raises ``BillingRuleError`` unless the new plan's allowance is strictly bigger.
    """
    step = _upgrade_step(ledger, new_terms, used_now)
    new_ledger = replace(ledger, terms=new_terms, upgrades=(*ledger.upgrades, step))
    return new_ledger, _preview(ledger, step)


def _upgrade_step(ledger: PeriodLedger, new_terms: PlanTerms, used_now: int) -> UpgradeStep:
    current = ledger.terms
    if new_terms.code == current.code:
        raise BillingRuleError(f"{current.name} is already your plan.")
    if new_terms.allowance <= current.allowance:
        raise BillingRuleError(
            f"{new_terms.name} ({new_terms.allowance} leads) is not bigger than your plan "
            f"{current.name} ({current.allowance} leads); an upgrade needs more leads."
        )
    return UpgradeStep(
        from_terms=current,
        to_terms=new_terms,
        used_at_change=used_now,
        frozen_leads=ledger.overage_leads(used_now),
    )


def _preview(ledger: PeriodLedger, step: UpgradeStep) -> UpgradePreview:
    old, new = step.from_terms, step.to_terms
    statements = (
        f"Overage so far: {format_count(step.frozen_leads, 'lead')} at "
        f"{format_cents(old.cpl_cents)} ({old.name}) = {format_cents(step.frozen_cents)}, "
        "billed on this period's closing invoice.",
        f"Price difference: {format_cents(step.price_difference_cents)} ({new.name} at "
        f"{format_cents(new.price_cents)}, {old.name} at {format_cents(old.price_cents)}), "
        "billed on this period's closing invoice.",
        f"The new allowance of {new.allowance} leads applies now, to the whole of "
        f"{ledger.period.label}; later overage is billed at {format_cents(new.cpl_cents)} per "
        "lead.",
    )
    return UpgradePreview(
        from_terms=old,
        to_terms=new,
        frozen_leads=step.frozen_leads,
        frozen_rate_cents=old.cpl_cents,
        frozen_cents=step.frozen_cents,
        price_difference_cents=step.price_difference_cents,
        new_allowance=new.allowance,
        statements=statements,
    )
