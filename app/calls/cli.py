"""Operator commands for call data (`flask calls ...`)."""

from __future__ import annotations

from pathlib import Path

import click

from app.calls.importer import DEFAULT_REGION, ImportResult, columns_help, import_call_report
from app.extensions import db

calls_cli = click.Group("calls", help="Call data from the ISA team's dialer.")

_IMPORT_HELP = f"""Import FILE, a dialer's call-report export (CSV, UTF-8): one row per call
attempt, with its lead's details.

\b
The header row names the columns (any order and case; other columns are ignored):
{columns_help()}

\b
Times are ISO-8601 with an offset (2025-03-05T14:02:00-05:00, or Z for UTC) and cannot be in
the future. Dispositions are the dialer's labels ("Live Transfer", "Booked Appointment",
"Callback Later", "Voicemail / No Answer", "Not Interested (DNC)", "Bad Data (DNC)") or their
codes (live_transfer, ...). Phones without a country code are read as --region numbers.

Rows are idempotent by event_id: importing the same file again creates nothing new. Good rows
are stored and each bad row is listed with its line number and reason; with --dry-run nothing
is stored. The exit status is 1 when any row (or the file) is bad, 0 otherwise.
"""


@calls_cli.command("import", help=_IMPORT_HELP)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be created; store nothing.")
@click.option(
    "--region",
    default=DEFAULT_REGION,
    show_default=True,
    help="Country (ISO 3166 code) of phone numbers written without a country code.",
)
def import_command(file: Path, dry_run: bool, region: str) -> None:
    try:
        with file.open(encoding="utf-8-sig", newline="") as stream:
            result = import_call_report(stream, dry_run=dry_run, default_region=region.upper())
    except UnicodeDecodeError:
        db.session.rollback()
        raise click.ClickException(
            f"{file} is not UTF-8 text; export the report as UTF-8 CSV"
        ) from None
    except Exception:
        db.session.rollback()
        raise
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    for line in import_summary(result, file.name):
        click.echo(line)
    if not result.clean:
        raise click.exceptions.Exit(1)


def import_summary(result: ImportResult, name: str) -> list[str]:
    """What an import did (or would do), as lines for the terminal."""
    if result.file_errors:
        return [f"{name}: nothing imported.", *(f"  {error}" for error in result.file_errors)]
    verb = "would create" if result.dry_run else "created"
    good = result.rows_read - len(result.bad_rows)
    lines = [
        f"{name}: {_count(result.rows_read, 'row')} read, {good} good, "
        f"{len(result.bad_rows)} bad" + (" (dry run: nothing was stored)" if result.dry_run else "")
    ]
    if result.ignored_columns:
        lines.append(f"Ignored columns: {', '.join(result.ignored_columns)}")
    for seat in result.seats:
        lines.append(
            f"  {seat.reference}  {seat.account_name} · {seat.seat_name}: {verb} "
            f"{_count(seat.leads_created, 'lead')}, {_count(seat.attempts_created, 'attempt')}"
            + (f"; {_count(seat.duplicates, 'duplicate')} skipped" if seat.duplicates else "")
        )
    if result.bad_rows:
        lines.append("Bad rows" + (" (would not be imported):" if result.dry_run else ":"))
        lines += [f"  {bad}" for bad in result.bad_rows]
    lines.append(
        f"Total: {verb} {_count(result.leads_created, 'lead')} and "
        f"{_count(result.attempts_created, 'call attempt')}; "
        f"{_count(result.duplicates, 'duplicate event')} skipped (imported before, or repeated "
        "in the file)."
    )
    if result.dry_run:
        lines.append("Run again without --dry-run to import.")
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


COMMANDS = (calls_cli,)
