"""Operator commands for accounts, seats and billing (`flask accounts|seats|billing ...`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask.cli import AppGroup

from app import billing
from app.billing_portal import operations
from app.billing_portal.closing import close_periods, due_period_ids
from app.extensions import db
from app.models import Account, AccountKind, Invoice, Plan, utcnow
from app.onboarding.operations import create_account
from app.seats.operations import PersonDetails, SeatDetails, create_seat
from app.tenancy import tenant_context


def _email(value: str, option: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _plan(code: str) -> Plan:
    plan = db.session.scalar(sa.select(Plan).where(Plan.code == code))
    if plan is None:
        known = ", ".join(db.session.scalars(sa.select(Plan.code).order_by(Plan.allowance)))
        raise click.BadParameter(f"no plan {code!r}; known plans: {known}", param_hint="PLAN")
    return plan


@contextmanager
def _account(slug: str) -> Iterator[Account]:
    """The account named by its slug, with its tenant context; commits on success."""
    account = db.session.scalar(sa.select(Account).where(Account.slug == slug))
    if account is None:
        raise click.BadParameter(f"no account {slug!r}", param_hint="ACCOUNT")
    with tenant_context(account.id):
        try:
            yield account
        except billing.BillingRuleError as exc:
            db.session.rollback()
            raise click.ClickException(str(exc)) from None
        db.session.commit()


accounts_cli = AppGroup("accounts", help="Create client accounts.")
seats_cli = AppGroup("seats", help="Add seats to accounts.")
billing_cli = AppGroup("billing", help="Plans, cancellations, period closes and invoices.")


@accounts_cli.command("create")
@click.option("--name", required=True, help="Company or person name.")
@click.option("--kind", type=click.Choice([k.value for k in AccountKind]), required=True)
@click.option("--plan", "plan_code", required=True, help="Plan code from the catalogue.")
@click.option("--owner-email", required=True)
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="First day (default today).")
@click.option("--tz", "timezone", default="America/New_York", show_default=True)
def create_account_command(
    name: str, kind: str, plan_code: str, owner_email: str, start: datetime | None, timezone: str
) -> None:
    """Create and subscribe an account; prints its slug. The owner is emailed an invitation."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {timezone!r}", param_hint="--tz") from None
    if not name.strip():
        raise click.BadParameter("must not be empty", param_hint="--name")
    new = create_account(
        name=name,
        kind=AccountKind(kind),
        plan=_plan(plan_code),
        owner_email=_email(owner_email, "--owner-email"),
        timezone=timezone,
        start=start.date() if start else datetime.now(UTC).astimezone(ZoneInfo(timezone)).date(),
    )
    db.session.commit()
    click.echo(new.account.slug)


@seats_cli.command("add")
@click.argument("account_slug", metavar="ACCOUNT")
@click.option("--primary-name", required=True)
@click.option("--primary-email", required=True)
@click.option("--backup-name")
@click.option("--backup-email")
@click.option("--client", "client_label", default="", help="The agency's client on this seat.")
def add_seat_command(
    account_slug: str,
    primary_name: str,
    primary_email: str,
    backup_name: str | None,
    backup_email: str | None,
    client_label: str,
) -> None:
    """Add a seat (its fee goes on the period's closing invoice); prints its reference."""
    if bool(backup_name) != bool(backup_email):
        raise click.UsageError("give both --backup-name and --backup-email, or neither")
    primary = PersonDetails(primary_name, _email(primary_email, "--primary-email"))
    backup = (
        PersonDetails(backup_name, _email(backup_email, "--backup-email"))
        if backup_name and backup_email
        else None
    )
    with _account(account_slug) as account:
        seat = create_seat(account, SeatDetails(primary, backup, client_label))
        reference = seat.reference
    click.echo(reference)


@billing_cli.command("change-plan")
@click.argument("account_slug", metavar="ACCOUNT")
@click.argument("plan_code", metavar="PLAN")
@click.option("--preview", is_flag=True, help="Say what would happen; change nothing.")
def change_plan_command(account_slug: str, plan_code: str, preview: bool) -> None:
    """Upgrade now, or schedule a downgrade for the renewal."""
    with _account(account_slug) as account:
        plan = _plan(plan_code)
        if preview:
            result = operations.preview_plan_change(account, plan)
            db.session.rollback()
        else:
            result = operations.change_plan(account, plan)
    for statement in result.statements:
        click.echo(statement)


@billing_cli.command("cancel")
@click.argument("account_slug", metavar="ACCOUNT")
@click.option("--undo", is_flag=True, help="Withdraw a pending cancellation.")
@click.option("--reason", default="", help="Why, for the ISA team.")
def cancel_command(account_slug: str, undo: bool, reason: str) -> None:
    """Cancel at the end of the current period (or undo that)."""
    with _account(account_slug) as account:
        if undo:
            operations.undo_cancel(account)
            message = "Cancellation withdrawn: the plan renews as usual."
        else:
            period = operations.cancel(account, reason)
            message = f"Cancelled: the plan ends with {period.key} on {period.ends_at.isoformat()}."
    click.echo(message)


@billing_cli.command("close-due")
@click.option("--now", "now_text", help="ISO time to close as of (default: now).")
def close_due_command(now_text: str | None) -> None:
    """Close every period due at that time (exactly once each), in this process."""
    now = utcnow()
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError:
            raise click.BadParameter("use an ISO time, e.g. 2026-03-01T03:00:00+00:00") from None
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
    result = close_periods(due_period_ids(now), now, trigger="command")
    click.echo(
        f"due {result.due}, closed {result.closed}, already closed {result.skipped}, "
        f"failed {len(result.failures)}"
    )
    for failure in result.failures:
        click.echo(f"  period {failure['period_id']}: {failure['error']}", err=True)
    if result.failures:
        raise SystemExit(1)


@billing_cli.command("invoices")
@click.argument("account_slug", metavar="ACCOUNT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def invoices_command(account_slug: str, as_json: bool) -> None:
    """Print the account's invoices with their lines."""
    with _account(account_slug):
        invoices = list(
            db.session.scalars(sa.select(Invoice).order_by(Invoice.issued_at, Invoice.id))
        )
        if as_json:
            click.echo(json.dumps([_invoice_json(invoice) for invoice in invoices], indent=2))
            return
        for invoice in invoices:
            total = billing.format_cents(invoice.total_cents)
            click.echo(f"{invoice.number}  {invoice.period.key:<4} {invoice.kind.value:<8} {total}")
            for line in invoice.lines:
                click.echo(f"    {line.description}: {billing.format_cents(line.amount_cents)}")


def _invoice_json(invoice: Invoice) -> dict[str, object]:
    period = invoice.period
    return {
        "number": invoice.number,
        "kind": invoice.kind.value,
        "issued_at": invoice.issued_at.isoformat(),
        "period_start": period.starts_at.isoformat(),
        "period_end": period.ends_at.isoformat(),
        "month_key": period.key,
        "lines": [
            {
                "description": line.description,
                "kind": line.kind,
                "quantity": line.quantity,
                "unit_cents": line.unit_cents,
                "amount_cents": line.amount_cents,
            }
            for line in invoice.lines
        ],
        "total_cents": invoice.total_cents,
    }


COMMANDS = (accounts_cli, seats_cli, billing_cli)
