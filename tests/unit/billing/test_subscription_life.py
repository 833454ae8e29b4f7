"""Random walks through a subscription's life, checked against a small reference model.

Each run signs an account up, then mixes call attempts (some arriving late), upgrades, scheduled
downgrades and withdrawals, cancels and undos, new seats, the clock moving on, and period closes.
The reference follows leads one at a time (``ReferencePeriod``) and keeps the renewal intentions
as three plain fields, so it shares no formula with the code under test.
"""

from collections import Counter
from datetime import date, datetime, timedelta
from functools import partial
from itertools import pairwise

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from app.billing import (
    BillingRuleError,
    CallAttempt,
    CountedLead,
    InvoiceLine,
    LineKind,
    PeriodLedger,
    PlanTerms,
    Renewal,
    Subscription,
    cancel,
    closing_lines,
    count_new_leads,
    invoice_total,
    period_bounds,
    period_index_at,
    renew,
    renewal_plan_code,
    schedule_downgrade,
    seat_fee_applies,
    signup_lines,
    subscription_after_upgrade,
    undo_cancel,
    upgrade,
    withdraw_downgrade,
)

from .catalogue import CATALOGUE, PLANS_BY_CODE, time_zones
from .reference import ReferencePeriod, brute_force_period_index

# How long after a period's end the closing job may run; late call data keeps arriving meanwhile.
CLOSE_WINDOW = timedelta(hours=2)
SEAT_FEE_CENTS = 5_700


def _in_open_period(machine: "SubscriptionLife") -> bool:
    return not machine.ended and machine.now < machine.ledger.period.ends_at


def _due_for_close(machine: "SubscriptionLife") -> bool:
    return not machine.ended and machine.now >= machine.ledger.period.ends_at


class SubscriptionLife(RuleBasedStateMachine):
    """One account's subscription, driven through random sequences of billing events."""

    # Set by sign_up, which Hypothesis always runs first.
    anchor: date
    tz: str
    grace: int
    account_kind: str
    now: datetime
    subscription: Subscription
    ledger: PeriodLedger
    reference: ReferencePeriod
    plans_this_period: list[PlanTerms]

    def __init__(self) -> None:
        super().__init__()
        self.expected_plan_code = ""
        self.expected_downgrade: str | None = None
        self.expected_cancel = False
        self.ended = False
        self.next_lead_id = 0
        self.counted: dict[int, int] = {}
        self.used: Counter[int] = Counter()
        self.seats_added = 0
        self.invoices: list[tuple[InvoiceLine, ...]] = []
        self.invoice_snapshots: list[str] = []

    @initialize(
        anchor=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
        tz=time_zones,
        plan=st.sampled_from(CATALOGUE),
        grace=st.sampled_from([0, 5]),
        account_kind=st.sampled_from(["solo", "brokerage", "agency"]),
        seats=st.integers(1, 4),
    )
    def sign_up(
        self, anchor: date, tz: str, plan: PlanTerms, grace: int, account_kind: str, seats: int
    ) -> None:
        self.anchor, self.tz, self.grace, self.account_kind = anchor, tz, grace, account_kind
        first = period_bounds(anchor, 1, tz)
        self.now = first.starts_at
        self.subscription = Subscription(plan_code=plan.code)
        self.expected_plan_code = plan.code
        self._open(PeriodLedger(first, plan, grace))
        seat_count = 1 if account_kind == "solo" else seats

        lines = signup_lines(
            plan,
            first,
            seat_count=seat_count,
            seat_fee_cents=SEAT_FEE_CENTS,
            account_kind=account_kind,
        )

        expected = [(LineKind.PLAN_ADVANCE, plan.price_cents)]
        if account_kind != "solo":
            expected.append((LineKind.SEAT_FEE, seat_count * SEAT_FEE_CENTS))
        assert [(line.kind, line.amount_cents) for line in lines] == expected
        self._issue(lines)

    @rule(hours=st.integers(1, 24 * 12))
    def advance_clock(self, hours: int) -> None:
        # The closing job runs within its window, so the clock never runs past an unclosed period.
        self.now = min(self.now + timedelta(hours=hours), self.ledger.period.ends_at + CLOSE_WINDOW)

    @precondition(_in_open_period)
    @rule(minutes=st.integers(0, CLOSE_WINDOW // timedelta(minutes=1)))
    def reach_period_end(self, minutes: int) -> None:
        self.now = self.ledger.period.ends_at + timedelta(minutes=minutes)

    @precondition(lambda self: not self.ended)
    @rule(
        count=st.integers(1, 250), hours_ago=st.integers(0, 24 * 45), called_again=st.integers(0, 5)
    )
    def call_new_leads(self, count: int, hours_ago: int, called_again: int) -> None:
        first_start = period_bounds(self.anchor, 1, self.tz).starts_at
        at = max(first_start, self.now - timedelta(hours=hours_ago))
        lead_ids = range(self.next_lead_id, self.next_lead_id + count)
        self.next_lead_id += count
        # Later attempts listed first: the earliest attempt must decide whatever the order.
        attempts = [CallAttempt(lead_id, self.now) for lead_id in lead_ids[:called_again]]
        attempts += [CallAttempt(lead_id, at) for lead_id in lead_ids]

        counted = self._count(attempts)

        attempt_index = brute_force_period_index(self.anchor, self.tz, at)
        open_from = self.ledger.period.index
        where = CountedLead(max(attempt_index, open_from), late=attempt_index < open_from)
        assert counted == dict.fromkeys(lead_ids, where)
        for lead_id in lead_ids:
            self.counted[lead_id] = where.period_index
            self.used[where.period_index] += 1
            if where.period_index == open_from:
                self.reference.call_lead()

    @precondition(lambda self: not self.ended and self.counted)
    @rule(pick=st.integers(0, 10**6), hours_ago=st.integers(0, 24 * 45))
    def call_a_lead_again(self, pick: int, hours_ago: int) -> None:
        lead_id = sorted(self.counted)[pick % len(self.counted)]
        first_start = period_bounds(self.anchor, 1, self.tz).starts_at
        at = max(first_start, self.now - timedelta(hours=hours_ago))

        assert self._count([CallAttempt(lead_id, at)]) == {}

    @precondition(_in_open_period)
    @rule(plan=st.sampled_from(CATALOGUE))
    def try_upgrade(self, plan: PlanTerms) -> None:
        used = self.used[self.ledger.period.index]
        if plan.allowance <= self.ledger.terms.allowance:
            with pytest.raises(BillingRuleError):
                upgrade(self.ledger, plan, used)
            return

        self.ledger, done = upgrade(self.ledger, plan, used)
        self.subscription = subscription_after_upgrade(self.subscription, done)

        self.reference.upgrade(plan)
        self.plans_this_period.append(plan)
        self.expected_plan_code, self.expected_downgrade = plan.code, None
        assert done.frozen_leads == self.reference.settled[-1][0]
        assert done.frozen_rate_cents == self.reference.settled[-1][1]

    @precondition(_in_open_period)
    @rule(plan=st.sampled_from(CATALOGUE))
    def try_schedule_downgrade(self, plan: PlanTerms) -> None:
        legal = (
            not self.expected_cancel
            and plan.allowance < self.ledger.terms.allowance
            and plan.code != self.expected_downgrade
        )
        if not legal:
            with pytest.raises(BillingRuleError):
                schedule_downgrade(self.subscription, self.ledger.terms, plan)
            return
        self.subscription = schedule_downgrade(self.subscription, self.ledger.terms, plan)
        self.expected_downgrade = plan.code

    @precondition(_in_open_period)
    @rule()
    def try_withdraw_downgrade(self) -> None:
        if self.expected_cancel or self.expected_downgrade is None:
            with pytest.raises(BillingRuleError):
                withdraw_downgrade(self.subscription)
            return
        self.subscription = withdraw_downgrade(self.subscription)
        self.expected_downgrade = None

    @precondition(_in_open_period)
    @rule()
    def try_cancel(self) -> None:
        if self.expected_cancel:
            with pytest.raises(BillingRuleError):
                cancel(self.subscription)
            return
        self.subscription = cancel(self.subscription)
        self.expected_cancel = True

    @precondition(_in_open_period)
    @rule()
    def try_undo_cancel(self) -> None:
        if not self.expected_cancel:
            with pytest.raises(BillingRuleError):
                undo_cancel(self.subscription)
            return
        self.subscription = undo_cancel(self.subscription)
        self.expected_cancel = False

    @precondition(_in_open_period)
    @rule(count=st.integers(1, 3))
    def add_seats(self, count: int) -> None:
        self.seats_added += count

    @precondition(_due_for_close)
    @rule()
    def close_period(self) -> None:
        period = self.ledger.period
        code = renewal_plan_code(self.subscription)
        assert code == (
            None if self.expected_cancel else self.expected_downgrade or self.expected_plan_code
        )
        renewal = None
        if code is not None:
            renewal = Renewal(
                PLANS_BY_CODE[code], period_bounds(self.anchor, period.index + 1, self.tz)
            )

        lines = closing_lines(
            self.ledger,
            self.used[period.index],
            seats_added=self.seats_added,
            seat_fee_cents=SEAT_FEE_CENTS,
            account_kind=self.account_kind,
            renewal=renewal,
        )

        self._check_closing_lines(lines, renewal)
        self._issue(lines)
        if renewal is None:
            self.ended = True
            return
        self.subscription = renew(self.subscription)
        self.expected_plan_code, self.expected_downgrade = renewal.terms.code, None
        self._open(PeriodLedger(renewal.period, renewal.terms, self.grace))

    @invariant()
    def issued_invoices_never_change(self) -> None:
        assert [repr(lines) for lines in self.invoices] == self.invoice_snapshots

    @invariant()
    def invoice_lines_are_positive_and_sum_to_the_total(self) -> None:
        for lines in self.invoices:
            assert all(line.amount_cents == line.quantity * line.unit_cents > 0 for line in lines)
            assert invoice_total(lines) == sum(line.amount_cents for line in lines)

    @invariant()
    def every_called_lead_counts_once(self) -> None:
        assert sum(self.used.values()) == len(self.counted)

    @invariant()
    def ledger_agrees_with_the_lead_by_lead_reference(self) -> None:
        if self.ended:
            return
        used = self.used[self.ledger.period.index]
        frozen = self.ledger.frozen_leads
        assert self.ledger.terms == self.reference.terms
        assert frozen == sum(leads for leads, _ in self.reference.settled)
        assert self.ledger.overage_leads(used) == self.reference.unsettled_overage
        assert self.reference.free_places_taken + frozen + self.ledger.overage_leads(used) == used

    def _open(self, ledger: PeriodLedger) -> None:
        self.ledger = ledger
        self.reference = ReferencePeriod(terms=ledger.terms, grace=self.grace)
        # Leads that arrived in this period while the previous one waited for its close.
        for _ in range(self.used[ledger.period.index]):
            self.reference.call_lead()
        self.plans_this_period = [ledger.terms]
        self.seats_added = 0

    def _count(self, attempts: list[CallAttempt]) -> dict[int, CountedLead]:
        period_of = partial(period_index_at, self.anchor, self.tz)
        return count_new_leads(attempts, period_of, self.counted, self.ledger.period.index)

    def _issue(self, lines: tuple[InvoiceLine, ...]) -> None:
        assert isinstance(lines, tuple)
        self.invoices.append(lines)
        self.invoice_snapshots.append(repr(lines))

    def _check_closing_lines(self, lines: tuple[InvoiceLine, ...], renewal: Renewal | None) -> None:
        def of_kind(kind: LineKind) -> list[InvoiceLine]:
            return [line for line in lines if line.kind is kind]

        overage = [(line.quantity, line.unit_cents) for line in of_kind(LineKind.OVERAGE)]
        assert overage == self.reference.billed_overage()
        differences = [line.amount_cents for line in of_kind(LineKind.UPGRADE_DIFFERENCE)]
        assert differences == [
            bigger.price_cents - smaller.price_cents
            for smaller, bigger in pairwise(self.plans_this_period)
        ]
        seat_fees = [line.quantity for line in of_kind(LineKind.SEAT_FEE)]
        seat_fee_due = seat_fee_applies(self.account_kind) and self.seats_added > 0
        assert seat_fees == ([self.seats_added] if seat_fee_due else [])
        advance = [(line.amount_cents, line.description) for line in of_kind(LineKind.PLAN_ADVANCE)]
        assert advance == (
            []
            if renewal is None
            else [
                (
                    renewal.terms.price_cents,
                    f"Lead package {renewal.terms.name}, {renewal.period.label}",
                )
            ]
        )
        invoice_order = [
            LineKind.OVERAGE,
            LineKind.UPGRADE_DIFFERENCE,
            LineKind.SEAT_FEE,
            LineKind.PLAN_ADVANCE,
        ]
        kinds = [line.kind for line in lines]
        assert kinds == sorted(kinds, key=invoice_order.index)


TestSubscriptionLife = SubscriptionLife.TestCase
TestSubscriptionLife.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    database=None,
)
