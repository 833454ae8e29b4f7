"""Random sequences against the real database code: call data, upgrades, scheduled
downgrades and withdrawals, cancels and undos, seats added, and period closes, checked
against a deliberately simple reference that follows every lead one at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from app.billing import BillingRuleError
from app.billing_portal import operations
from app.billing_portal.closing import close_periods
from app.calls.operations import NoOpenPeriod, record_attempt, record_lead
from app.extensions import db
from app.models import (
    Account,
    AccountKind,
    BillingPeriod,
    Disposition,
    Invoice,
    InvoiceKind,
    Lead,
    PeriodStatus,
    Plan,
    Seat,
)
from app.onboarding.operations import create_account
from app.seats.operations import PersonDetails, SeatDetails, create_seat
from app.tenancy import tenant_context
from tests.factories import make_plan

PLANS = {  # code: (allowance, cpl)
    "M50": (50, 1100),
    "S100": (100, 1000),
    "G200": (200, 900),
    "L400": (400, 800),
}
SEAT_FEE = 5700
_ids = count(1)


@dataclass
class RefPeriod:
    """The reference: one plan at a time, each lead followed individually."""

    plan: str
    leads: set[str] = field(default_factory=set)
    frozen: list[tuple[int, int]] = field(default_factory=list)  # (leads, cpl)
    differences: list[int] = field(default_factory=list)
    seats_added: int = 0

    def over(self) -> int:
        allowance = PLANS[self.plan][0]
        already = sum(leads for leads, _ in self.frozen)
        return max(0, len(self.leads) - already - allowance)


class BillingOnTheDatabase(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.plans: dict[str, Plan] = {
            code: make_plan(allowance, cpl, code=code, name=f"Plan {code}")
            for code, (allowance, cpl) in PLANS.items()
        }
        n = next(_ids)
        new = create_account(
            name=f"Machine {n}",
            kind=AccountKind.BROKERAGE,
            plan=self.plans["S100"],
            owner_email=f"owner{n}@machine.example",
            start=datetime.now(UTC).date(),
            seats=(SeatDetails(PersonDetails(f"Agent {n}", f"agent{n}@machine.example")),),
        )
        db.session.commit()
        self.account: Account = new.account
        self.period = RefPeriod("S100")
        self.scheduled: str | None = None
        self.cancelled = False
        self.ended = False
        self.all_leads: list[str] = []
        self.issued: dict[str, tuple[int, tuple[tuple[str, int, int], ...]]] = {}
        self.expected: dict[int, list[tuple[str, int, int]]] = {}

    def _open(self) -> BillingPeriod:
        with tenant_context(self.account.id):
            period = db.session.scalar(
                sa.select(BillingPeriod).where(BillingPeriod.status == PeriodStatus.OPEN)
            )
        assert period is not None
        return period

    def _seat(self) -> Seat:
        with tenant_context(self.account.id):
            seat = db.session.scalars(sa.select(Seat).order_by(Seat.id)).first()
        assert seat is not None
        return seat

    def _at(self) -> datetime:
        period = self._open()
        return max(period.starts_at, min(datetime.now(UTC), period.ends_at - timedelta(hours=1)))

    @precondition(lambda self: self.ended)
    @rule()
    def call_after_the_end(self) -> None:
        seat = self._seat()
        with tenant_context(self.account.id):
            lead = db.session.scalars(sa.select(Lead)).first()
        if lead is None:
            lead, _ = record_lead(seat, "after", "Lead", "", "", "Zillow", datetime.now(UTC))
        with pytest.raises(NoOpenPeriod):
            record_attempt(
                seat,
                lead,
                f"E{next(_ids)}",
                datetime.now(UTC),
                Disposition.LIVE_TRANSFER,
                9,
                "Isa",
                "",
            )
        db.session.rollback()

    @precondition(lambda self: not self.ended)
    @rule(new=st.integers(1, 25), again=st.integers(0, 5))
    def call_leads(self, new: int, again: int) -> None:
        seat, at = self._seat(), self._at()
        for _ in range(new):
            external = f"L{next(_ids)}"
            lead, _ = record_lead(seat, external, "Lead", "+15555550100", "", "Zillow", at)
            record_attempt(
                seat, lead, f"E{next(_ids)}", at, Disposition.CALLBACK_LATER, 30, "Isa", ""
            )
            self.period.leads.add(external)
            self.all_leads.append(external)
        with tenant_context(self.account.id):
            for external in self.all_leads[-again - new : -new] if again else []:
                lead = db.session.scalar(sa.select(Lead).where(Lead.external_id == external))
                assert lead is not None
                record_attempt(
                    seat, lead, f"E{next(_ids)}", at, Disposition.LIVE_TRANSFER, 9, "Isa", ""
                )
        db.session.commit()

    @precondition(lambda self: not self.ended)
    @rule(code=st.sampled_from(sorted(PLANS)))
    def change_plan(self, code: str) -> None:
        current = self.period.plan
        with tenant_context(self.account.id):
            try:
                operations.change_plan(self.account, self.plans[code])
            except BillingRuleError:
                db.session.rollback()
                refused = code == current or (
                    PLANS[code][0] < PLANS[current][0]
                    and (self.cancelled or self.scheduled == code)
                )
                assert refused, f"{current} → {code} refused unexpectedly"
                return
            db.session.commit()
        assert code != current
        if PLANS[code][0] > PLANS[current][0]:
            self.period.frozen.append((self.period.over(), PLANS[current][1]))
            self.period.differences.append(
                PLANS[code][0] * PLANS[code][1] - PLANS[current][0] * PLANS[current][1]
            )
            self.period.plan, self.scheduled = code, None
        else:
            assert not self.cancelled
            self.scheduled = code

    @precondition(lambda self: not self.ended)
    @rule()
    def withdraw(self) -> None:
        with tenant_context(self.account.id):
            try:
                operations.withdraw_downgrade(self.account)
            except BillingRuleError:
                db.session.rollback()
                assert self.scheduled is None or self.cancelled
                return
            db.session.commit()
        self.scheduled = None

    @precondition(lambda self: not self.ended)
    @rule(undo=st.booleans())
    def cancel_or_undo(self, undo: bool) -> None:
        with tenant_context(self.account.id):
            try:
                if undo:
                    operations.undo_cancel(self.account)
                else:
                    operations.cancel(self.account, "testing")
            except BillingRuleError:
                db.session.rollback()
                assert self.cancelled != undo
                return
            db.session.commit()
        self.cancelled = not undo

    @precondition(lambda self: not self.ended)
    @rule()
    def add_seat(self) -> None:
        n = next(_ids)
        with tenant_context(self.account.id):
            create_seat(self.account, SeatDetails(PersonDetails(f"New {n}", f"new{n}@m.example")))
            db.session.commit()
        self.period.seats_added += 1

    @precondition(lambda self: not self.ended)
    @rule()
    def close(self) -> None:
        period = self._open()
        result = close_periods([period.id], period.ends_at + timedelta(hours=3), trigger="test")
        assert result.closed == 1
        ref = self.period
        expected = [("overage", leads, cpl) for leads, cpl in ref.frozen if leads]
        if ref.over():
            expected.append(("overage", ref.over(), PLANS[ref.plan][1]))
        expected += [("upgrade_difference", 1, diff) for diff in ref.differences if diff]
        if ref.seats_added:
            expected.append(("seat_fee", ref.seats_added, SEAT_FEE))
        next_plan = None if self.cancelled else (self.scheduled or ref.plan)
        if next_plan:
            allowance, cpl = PLANS[next_plan]
            expected.append(("plan_advance", 1, allowance * cpl))
        self.expected[period.id] = expected
        # Every called lead is paid once: inside the final allowance or as overage.
        billed_over = sum(qty for kind, qty, _ in expected if kind == "overage")
        assert len(ref.leads) - billed_over <= PLANS[ref.plan][0]
        assert billed_over <= len(ref.leads)
        self.ended = next_plan is None
        self.period, self.scheduled, self.cancelled = RefPeriod(next_plan or ref.plan), None, False

    @invariant()
    def invoices_match_and_never_change(self) -> None:
        with tenant_context(self.account.id):
            invoices = db.session.scalars(sa.select(Invoice).order_by(Invoice.id)).all()
            for invoice in invoices:
                lines = tuple((line.kind, line.quantity, line.unit_cents) for line in invoice.lines)
                assert invoice.total_cents == sum(line.amount_cents for line in invoice.lines)
                assert all(line.amount_cents >= 0 for line in invoice.lines)
                if invoice.number in self.issued:
                    assert self.issued[invoice.number] == (invoice.total_cents, lines)
                self.issued[invoice.number] = (invoice.total_cents, lines)
                if invoice.kind is InvoiceKind.CLOSING:
                    assert invoice.closes_period_id is not None
                    assert list(lines) == self.expected[invoice.closes_period_id]


def test_random_billing_histories_on_the_database() -> None:
    BillingOnTheDatabase.TestCase.settings = settings(
        max_examples=10,
        stateful_step_count=10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    BillingOnTheDatabase.TestCase().runTest()
