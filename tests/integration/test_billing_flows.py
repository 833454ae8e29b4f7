"""The billing rules end to end: operator commands, real call data, the real close,
and the invoices as `flask billing invoices --json` prints them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from app.calls.operations import record_attempt, record_lead
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    Disposition,
    Lead,
    PeriodStatus,
    Plan,
    Seat,
    SeatStatus,
    Subscription,
    SubscriptionStatus,
)
from app.settings import set_setting
from app.tenancy import tenant_context
from tests.factories import make_plan

_numbers = count(1)


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def plans() -> dict[str, Plan]:
    return {
        "S100": make_plan(100, 1000, code="S100", name="Starter 100"),
        "G200": make_plan(200, 900, code="G200", name="Growth 200"),
        "M50": make_plan(50, 1100, code="M50", name="Mini 50"),
    }


def run(runner: FlaskCliRunner, *args: str) -> str:
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output.strip()


def new_account(runner: FlaskCliRunner, plan: str, start: datetime, kind: str = "solo") -> Account:
    slug = run(
        runner,
        "accounts",
        "create",
        "--name",
        f"Flow {next(_numbers)}",
        "--kind",
        kind,
        "--plan",
        plan,
        "--owner-email",
        f"owner{next(_numbers)}@flow.example",
        "--start",
        start.date().isoformat(),
        "--tz",
        "UTC",
    )
    account = db.session.scalar(sa.select(Account).where(Account.slug == slug))
    assert account is not None
    return account


def add_seat(runner: FlaskCliRunner, account: Account) -> Seat:
    n = next(_numbers)
    reference = run(
        runner,
        "seats",
        "add",
        account.slug,
        "--primary-name",
        f"Agent {n}",
        "--primary-email",
        f"agent{n}@flow.example",
    )
    with tenant_context(account.id):
        seat = db.session.scalar(sa.select(Seat).where(Seat.reference == reference))
    assert seat is not None
    return seat


def call_leads(seat: Seat, leads: int, at: datetime, attempts_each: int = 1) -> None:
    """`leads` new leads on the seat, each called `attempts_each` times from `at`."""
    for _ in range(leads):
        n = next(_numbers)
        lead, _ = record_lead(seat, f"L{n}", f"Lead {n}", "+15555550100", "", "Zillow", at)
        for attempt in range(attempts_each):
            record_attempt(
                seat,
                lead,
                f"E{n}-{attempt}",
                at + timedelta(minutes=attempt),
                Disposition.VOICEMAIL_NO_ANSWER,
                30,
                "Isa",
                "",
            )
    db.session.commit()


def invoices(runner: FlaskCliRunner, account: Account) -> list[dict[str, Any]]:
    return json.loads(run(runner, "billing", "invoices", account.slug, "--json"))


def lines(invoice: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(line["kind"], line["quantity"], line["unit_cents"]) for line in invoice["lines"]]


def close_after(runner: FlaskCliRunner, account: Account, month_index: int = 1) -> None:
    with tenant_context(account.id):
        ends_at = db.session.scalar(
            sa.select(BillingPeriod.ends_at).where(BillingPeriod.month_index == month_index)
        )
    assert ends_at is not None
    run(runner, "billing", "close-due", "--now", (ends_at + timedelta(hours=3)).isoformat())


def started_days_ago(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def test_overage_is_billed_at_the_plan_cpl_with_the_next_period_in_advance(
    runner: FlaskCliRunner, plans: dict[str, Plan]
) -> None:
    start = started_days_ago(40)
    account = new_account(runner, "S100", start)
    seat = add_seat(runner, account)
    call_leads(seat, 130, start + timedelta(days=2))
    close_after(runner, account)
    signup, closing = invoices(runner, account)
    assert lines(signup) == [("plan_advance", 1, 100_000)]
    assert closing["month_key"] == "M1"
    assert lines(closing) == [("overage", 30, 1000), ("plan_advance", 1, 100_000)]
    assert closing["total_cents"] == 30 * 1000 + 100_000


def test_upgrade_freezes_overage_at_the_old_rate_and_charges_the_difference(
    runner: FlaskCliRunner, plans: dict[str, Plan]
) -> None:
    account = new_account(runner, "S100", started_days_ago(1))
    seat = add_seat(runner, account)
    call_leads(seat, 120, datetime.now(UTC) - timedelta(hours=2))
    preview = run(runner, "billing", "change-plan", account.slug, "G200", "--preview")
    assert "20 leads at $10.00" in preview
    run(runner, "billing", "change-plan", account.slug, "G200")
    call_leads(seat, 140, datetime.now(UTC) - timedelta(hours=1))
    close_after(runner, account)
    closing = invoices(runner, account)[-1]
    assert lines(closing) == [
        ("overage", 20, 1000),
        ("overage", 40, 900),
        ("upgrade_difference", 1, 80_000),
        ("plan_advance", 1, 180_000),
    ]


def test_a_downgrade_waits_for_the_renewal_and_bills_the_new_price(
    runner: FlaskCliRunner, plans: dict[str, Plan]
) -> None:
    account = new_account(runner, "S100", started_days_ago(1))
    seat = add_seat(runner, account)
    run(runner, "billing", "change-plan", account.slug, "M50")
    with tenant_context(account.id):
        period = db.session.scalar(sa.select(BillingPeriod))
        assert period is not None
        assert period.allowance == 100  # nothing changes yet
    call_leads(seat, 105, datetime.now(UTC) - timedelta(hours=1))
    close_after(runner, account)
    closing = invoices(runner, account)[-1]
    assert lines(closing) == [("overage", 5, 1000), ("plan_advance", 1, 55_000)]
    with tenant_context(account.id):
        m2 = db.session.scalar(sa.select(BillingPeriod).where(BillingPeriod.month_index == 2))
        assert m2 is not None
        assert (m2.plan_code, m2.allowance, m2.cpl_cents) == ("M50", 50, 1100)


def test_cancel_ends_the_plan_at_the_period_end_and_seats_expire(
    runner: FlaskCliRunner, plans: dict[str, Plan]
) -> None:
    account = new_account(runner, "S100", started_days_ago(1), kind="brokerage")
    seat = add_seat(runner, account)
    run(runner, "billing", "cancel", account.slug)
    run(runner, "billing", "cancel", account.slug, "--undo")
    assert "ends with M1" in run(runner, "billing", "cancel", account.slug)
    call_leads(seat, 3, datetime.now(UTC) - timedelta(hours=1))
    close_after(runner, account)
    closing = invoices(runner, account)[-1]
    assert lines(closing) == [("seat_fee", 1, 5700)]  # no next period in advance
    with tenant_context(account.id):
        subscription = db.session.scalar(sa.select(Subscription))
        assert subscription is not None
        assert subscription.status is SubscriptionStatus.ENDED
        assert db.session.get_one(Seat, seat.id).status is SeatStatus.EXPIRED
        open_periods = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(BillingPeriod)
            .where(BillingPeriod.status == PeriodStatus.OPEN)
        )
        assert open_periods == 0


def test_grace_leads_are_not_billed(runner: FlaskCliRunner, plans: dict[str, Plan]) -> None:
    set_setting("overage_grace_leads", 5, None)
    start = started_days_ago(40)
    under, over = new_account(runner, "S100", start), new_account(runner, "S100", start)
    call_leads(add_seat(runner, under), 105, start + timedelta(days=1))
    call_leads(add_seat(runner, over), 108, start + timedelta(days=1))
    close_after(runner, under)
    assert lines(invoices(runner, under)[-1]) == [("plan_advance", 1, 100_000)]
    assert lines(invoices(runner, over)[-1]) == [("overage", 3, 1000), ("plan_advance", 1, 100_000)]


def test_a_lead_counts_once_in_the_period_of_its_first_attempt(
    runner: FlaskCliRunner, plans: dict[str, Plan]
) -> None:
    start = started_days_ago(40)
    account = new_account(runner, "S100", start)
    seat = add_seat(runner, account)
    with tenant_context(account.id):
        m1 = db.session.scalar(sa.select(BillingPeriod))
        assert m1 is not None
        last_minute = m1.ends_at - timedelta(minutes=1)
    call_leads(seat, 101, last_minute)
    close_after(runner, account)
    with tenant_context(account.id):
        first = db.session.scalars(sa.select(Lead).order_by(Lead.id)).first()
        assert first is not None
        record_attempt(
            seat,
            first,
            "again-in-m2",
            datetime.now(UTC) - timedelta(minutes=5),
            Disposition.LIVE_TRANSFER,
            60,
            "Isa",
            "",
        )
        db.session.commit()
    m1_invoice = invoices(runner, account)[-1]
    assert lines(m1_invoice) == [("overage", 1, 1000), ("plan_advance", 1, 100_000)]
    close_after(runner, account, month_index=2)
    m2_invoice = invoices(runner, account)[-1]
    assert m2_invoice["month_key"] == "M2"
    assert lines(m2_invoice) == [("plan_advance", 1, 100_000)]  # the lead is not billed again


def test_a_catalogue_edit_never_reaches_an_open_period(
    runner: FlaskCliRunner, plans: dict[str, Plan]
) -> None:
    start = started_days_ago(40)
    account = new_account(runner, "S100", start)
    plan = plans["S100"]
    plan.cpl_cents, plan.price_cents = 1200, 120_000
    db.session.commit()
    call_leads(add_seat(runner, account), 110, start + timedelta(days=1))
    close_after(runner, account)
    closing = invoices(runner, account)[-1]
    # M1 keeps the terms it opened with; M2 is bought at the new price.
    assert lines(closing) == [("overage", 10, 1000), ("plan_advance", 1, 120_000)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("billing", "change-plan", "no-such-account", "S100"), "no account 'no-such-account'"),
        (
            (
                "accounts",
                "create",
                "--name",
                "X",
                "--kind",
                "solo",
                "--plan",
                "NOPE",
                "--owner-email",
                "a@b.example",
            ),
            "no plan 'NOPE'",
        ),
        (
            (
                "accounts",
                "create",
                "--name",
                "X",
                "--kind",
                "solo",
                "--plan",
                "S100",
                "--owner-email",
                "not-an-email",
            ),
            "--owner-email",
        ),
        (
            (
                "accounts",
                "create",
                "--name",
                "X",
                "--kind",
                "solo",
                "--plan",
                "S100",
                "--owner-email",
                "a@b.example",
                "--tz",
                "Mars/Base",
            ),
            "unknown time zone",
        ),
        (("billing", "close-due", "--now", "yesterday"), "ISO time"),
    ],
)
def test_commands_refuse_bad_input_with_a_clear_error(
    runner: FlaskCliRunner, plans: dict[str, Plan], args: tuple[str, ...], message: str
) -> None:
    result = runner.invoke(args=list(args))
    assert result.exit_code != 0
    assert message in result.output


def test_refused_plan_changes_explain_why(runner: FlaskCliRunner, plans: dict[str, Plan]) -> None:
    account = new_account(runner, "S100", started_days_ago(1))
    result = runner.invoke(args=["billing", "change-plan", account.slug, "S100"])
    assert result.exit_code == 1
    assert "already your plan" in result.output
    run(runner, "billing", "cancel", account.slug)
    result = runner.invoke(args=["billing", "change-plan", account.slug, "M50"])
    assert result.exit_code == 1
    assert "undo the cancellation" in result.output
