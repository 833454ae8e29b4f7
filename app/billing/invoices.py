"""Invoice composition: the lines of the signup invoice and of each period's closing invoice.

Lines are immutable values and every line's amount is its quantity times its unit price, so an
invoice's total is simply the sum of its lines. Numbering and storage belong to the caller.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from app.billing.changes import PeriodLedger
from app.billing.money import format_cents
from app.billing.periods import Period
from app.billing.plans import PlanTerms
from app.billing.wording import format_count

_SEAT_FEE_BY_ACCOUNT_KIND = {"solo": False, "brokerage": True, "agency": True}


class LineKind(StrEnum):
    """What an invoice line charges for."""

    PLAN_ADVANCE = "plan_advance"
    OVERAGE = "overage"
    UPGRADE_DIFFERENCE = "upgrade_difference"
    SEAT_FEE = "seat_fee"


@dataclass(frozen=True)
class InvoiceLine:
    """One invoice line. Raises ``ValueError`` unless ``amount_cents == quantity x unit_cents``.

    Quantity and unit price are positive: a line that would charge nothing is left off instead.
    """

    description: str
    kind: LineKind
    quantity: int
    unit_cents: int
    amount_cents: int

    def __post_init__(self) -> None:
        if not self.description:
            raise ValueError("an invoice line needs a description")
        if self.quantity < 1 or self.unit_cents < 1:
            raise ValueError(f"{self.description}: quantity and unit price must be positive")
        if self.amount_cents != self.quantity * self.unit_cents:
            raise ValueError(
                f"{self.description}: amount {self.amount_cents} is not "
                f"{self.quantity} x {self.unit_cents}"
            )


@dataclass(frozen=True)
class Renewal:
    """The period a closing invoice bills in advance, and the plan it runs on."""

    terms: PlanTerms
    period: Period


def seat_fee_applies(account_kind: str) -> bool:
    """Whether new seats cost the one-time seat fee: brokerage and agency yes, solo no.

    Raises ``ValueError`` for an account kind other than ``"solo"``, ``"brokerage"``, ``"agency"``.
    """
    try:
        return _SEAT_FEE_BY_ACCOUNT_KIND[account_kind]
    except KeyError:
        raise ValueError(f"unknown account kind {account_kind!r}") from None


def signup_lines(
    terms: PlanTerms,
    period: Period,
    *,
    seat_count: int,
    seat_fee_cents: int,
    account_kind: str,
) -> tuple[InvoiceLine, ...]:
    """Lines of the signup invoice: the first period's price and the fees of the seats onboarded.

    Seats added later in the period are billed on its closing invoice instead.
    """
    return (
        _plan_advance_line(terms, period),
        *_seat_fee_lines(period, seat_count, seat_fee_cents, account_kind),
    )


def closing_lines(
    ledger: PeriodLedger,
    used: int,
    *,
    seats_added: int,
    seat_fee_cents: int,
    account_kind: str,
    renewal: Renewal | None,
) -> tuple[InvoiceLine, ...]:
    """Lines of a period's closing invoice, for ``used`` called leads in the period.

    In order: one overage line per upgrade that froze leads, at the old plan's rate; the final
    overage at the period's current CPL; one price-difference line per upgrade (none when the
    difference is zero); the fees of seats added during the period (not already billed at
    signup); and, unless the subscription ends (``renewal`` is ``None``), the next period's price
    in advance. Raises ``ValueError`` when ``renewal`` is not the period right after the
    ledger's, or when ``used`` is below the usage recorded at the period's last upgrade.
    """
    if renewal is not None and renewal.period.index != ledger.period.index + 1:
        raise ValueError(
            f"the renewal {renewal.period.key} does not follow the closing {ledger.period.key}"
        )
    lines = [
        _overage_line(step.frozen_leads, step.from_terms)
        for step in ledger.upgrades
        if step.frozen_leads > 0
    ]
    final_overage = ledger.overage_leads(used)
    if final_overage > 0:
        lines.append(_overage_line(final_overage, ledger.terms))
    lines.extend(
        InvoiceLine(
            description=(
                f"Upgrade {step.from_terms.name} → {step.to_terms.name}, "
                f"{ledger.period.key}: price difference"
            ),
            kind=LineKind.UPGRADE_DIFFERENCE,
            quantity=1,
            unit_cents=step.price_difference_cents,
            amount_cents=step.price_difference_cents,
        )
        for step in ledger.upgrades
        if step.price_difference_cents > 0
    )
    lines.extend(_seat_fee_lines(ledger.period, seats_added, seat_fee_cents, account_kind))
    if renewal is not None:
        lines.append(_plan_advance_line(renewal.terms, renewal.period))
    return tuple(lines)


def invoice_total(lines: Iterable[InvoiceLine]) -> int:
    """The invoice total in cents: the sum of its lines."""
    return sum(line.amount_cents for line in lines)


def _plan_advance_line(terms: PlanTerms, period: Period) -> InvoiceLine:
    return InvoiceLine(
        description=f"Lead package {terms.name}, {period.label}",
        kind=LineKind.PLAN_ADVANCE,
        quantity=1,
        unit_cents=terms.price_cents,
        amount_cents=terms.price_cents,
    )


def _overage_line(leads: int, terms: PlanTerms) -> InvoiceLine:
    return InvoiceLine(
        description=(
            f"Overage: {format_count(leads, 'lead')} at {format_cents(terms.cpl_cents)} "
            f"({terms.name})"
        ),
        kind=LineKind.OVERAGE,
        quantity=leads,
        unit_cents=terms.cpl_cents,
        amount_cents=leads * terms.cpl_cents,
    )


def _seat_fee_lines(
    period: Period, seat_count: int, seat_fee_cents: int, account_kind: str
) -> tuple[InvoiceLine, ...]:
    if seat_count < 0 or seat_fee_cents < 0:
        raise ValueError(f"invalid seat figures: count={seat_count}, fee={seat_fee_cents}")
    # A zero fee is a legitimate operator setting; it simply produces no line.
    if not seat_fee_applies(account_kind) or seat_count == 0 or seat_fee_cents == 0:
        return ()
    return (
        InvoiceLine(
            description=(
                f"Seat fee: {format_count(seat_count, 'new seat')} at "
                f"{format_cents(seat_fee_cents)}, {period.key}"
            ),
            kind=LineKind.SEAT_FEE,
            quantity=seat_count,
            unit_cents=seat_fee_cents,
            amount_cents=seat_count * seat_fee_cents,
        ),
    )
