"""What counts: called leads, each counted once, and the overage formula."""

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from datetime import datetime

from app.billing.periods import as_utc


@dataclass(frozen=True)
class CallAttempt:
    """One call attempt the ISA team made to a lead (only its lead and time matter here)."""

    lead_id: int
    attempted_at: datetime

    def __post_init__(self) -> None:
        # Refuse naive times here, so comparing attempts can never mix naive and aware moments.
        as_utc(self.attempted_at)


@dataclass(frozen=True)
class CountedLead:
    """Where a called lead counts: its period index, and whether it arrived after that closed."""

    period_index: int
    late: bool


def overage_leads(used: int, already_frozen: int, allowance: int, grace: int) -> int:
    """Leads over the plan: ``max(0, used - already_frozen - allowance - grace)``.

    ``already_frozen`` are the leads an upgrade earlier in the period already billed at the old
    plan's rate; subtracting them is what makes every lead paid for exactly once. Raises
    ``ValueError`` for a negative count or a non-positive allowance.
    """
    if min(used, already_frozen, grace) < 0 or allowance <= 0:
        raise ValueError(
            f"invalid usage figures: used={used}, already_frozen={already_frozen}, "
            f"allowance={allowance}, grace={grace}"
        )
    return max(0, used - already_frozen - allowance - grace)


def first_attempt_periods(
    attempts: Iterable[CallAttempt], period_of: Callable[[datetime], int]
) -> dict[int, int]:
    """Map each attempted lead to the index of the period of its earliest attempt.

    ``period_of`` is typically ``functools.partial(period_index_at, anchor, tz)``; it is called
    once per lead. Leads never attempted are absent: they do not count.
    """
    earliest: dict[int, datetime] = {}
    for attempt in attempts:
        known = earliest.get(attempt.lead_id)
        if known is None or attempt.attempted_at < known:
            earliest[attempt.lead_id] = attempt.attempted_at
    return {lead_id: period_of(moment) for lead_id, moment in earliest.items()}


def count_new_leads(
    attempts: Iterable[CallAttempt],
    period_of: Callable[[datetime], int],
    already_counted: Container[int],
    open_from: int,
) -> dict[int, CountedLead]:
    """Decide where the leads first attempted in a batch of newly recorded attempts count.

    ``already_counted`` holds the leads counted by earlier batches; they never count again and
    never move, even when this batch holds an earlier attempt for them (that can only be data
    arriving out of order, and moving the lead would change a month key users have seen, or a
    closed period). ``open_from`` is the earliest period not yet closed: a lead whose first
    attempt falls in a closed period counts in ``open_from`` instead and is flagged late, because
    issued invoices never change.
    """
    fresh = (attempt for attempt in attempts if attempt.lead_id not in already_counted)
    return {
        lead_id: CountedLead(period_index=max(index, open_from), late=index < open_from)
        for lead_id, index in first_attempt_periods(fresh, period_of).items()
    }
