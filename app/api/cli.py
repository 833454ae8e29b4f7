"""Operator commands for the dialer API and its counters: `flask apikeys ...`, `flask usage
reconcile`."""

from __future__ import annotations

import click
import sqlalchemy as sa

from app.api.auth import VERIFIED_FOR, ApiKeyNotFound, create_api_key, revoke_api_key
from app.calls.operations import Drift, recompute_counters
from app.extensions import db
from app.models import Account, ApiKey, Seat, utcnow
from app.tenancy import tenant_context

apikeys_cli = click.Group("apikeys", help="API keys of the dialer (the HTTP API under /api/v1).")
usage_cli = click.Group("usage", help="The usage counters kept with the call data.")


@apikeys_cli.command("create")
@click.argument("name")
def create_key_command(name: str) -> None:
    """Create an API key named NAME and print it. It is shown this once: only its hash is
    kept (an HMAC keyed with SECRET_KEY, so rotating SECRET_KEY invalidates every key)."""
    if not name.strip() or len(name) > 100:
        raise click.BadParameter("must be 1 to 100 characters", param_hint="NAME")
    new = create_api_key(name.strip())
    db.session.commit()
    click.echo(f"Created API key {new.key.name!r} (prefix {new.key.prefix}).")
    click.echo("Copy it now, it is not shown again. Send it as: Authorization: Bearer <key>")
    click.echo(new.secret)


@apikeys_cli.command("revoke")
@click.argument("name_or_prefix", metavar="NAME-OR-PREFIX")
def revoke_key_command(name_or_prefix: str) -> None:
    """Revoke an API key, named by its prefix or by its name; the web processes refuse it
    within `VERIFIED_FOR` seconds."""
    try:
        key = revoke_api_key(name_or_prefix, utcnow())
    except ApiKeyNotFound as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(
        f"Revoked API key {key.name!r} (prefix {key.prefix}): requests with it are refused "
        f"within {VERIFIED_FOR:.0f} seconds."
    )


@apikeys_cli.command("list")
def list_keys_command() -> None:
    """List the API keys: prefix, name, created, last used (to the minute), revoked."""
    keys = list(db.session.scalars(sa.select(ApiKey).order_by(ApiKey.id)))
    if not keys:
        click.echo("No API keys; create one with: flask apikeys create NAME")
        return
    click.echo(f"{'PREFIX':<10} {'CREATED':<17} {'LAST USED':<17} {'REVOKED':<17} NAME")
    for key in keys:
        click.echo(
            f"{key.prefix:<10} {_minute(key.created_at):<17} {_minute(key.last_used_at):<17} "
            f"{_minute(key.revoked_at):<17} {key.name}"
        )


def _minute(moment: object) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else "-"


@usage_cli.command("reconcile")
@click.argument("account_slug", metavar="[ACCOUNT]", required=False)
def reconcile_command(account_slug: str | None) -> None:
    """Recount the usage counters of ACCOUNT (default: every account) from the raw leads and
    attempts, print each difference found, and repair it.

    Each account is recounted in a transaction of its own, which holds up that account's
    incoming call data meanwhile.
    """
    query = sa.select(Account.id, Account.slug).order_by(Account.id)
    if account_slug is not None:
        query = query.where(Account.slug == account_slug)
    accounts = db.session.execute(query).all()
    if account_slug is not None and not accounts:
        raise click.BadParameter(f"no account {account_slug!r}", param_hint="ACCOUNT")
    for account_id, slug in accounts:
        with tenant_context(account_id):
            drifts = recompute_counters(account_id)
            references = dict(db.session.execute(sa.select(Seat.id, Seat.reference)).all())
        db.session.commit()
        if not drifts:
            click.echo(f"{slug}: no drift")
        for drift in drifts:
            click.echo(f"{slug}: {_describe(drift, references)}")


def _describe(drift: Drift, references: dict[int, str]) -> str:
    where = f"{drift.period_key} {references.get(drift.seat_id, f'seat {drift.seat_id}')}"
    if drift.day is not None:
        where += f" {drift.day.isoformat()}"
    return f"{where} {drift.field}: {drift.stored} → {drift.computed}"


COMMANDS = (apikeys_cli, usage_cli)
