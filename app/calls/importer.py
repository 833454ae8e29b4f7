"""Importing a dialer's call-report export (CSV): check every row, then record the good ones.

One row is one call attempt, with the details of its lead (the dialer repeats them on every
attempt). `import_call_report` takes a text stream, so the `flask calls import` command and,
later, the operator console's upload page share it; a dry run goes through exactly the same
recording code inside a savepoint that is rolled back, so what it announces is what the import
would do. Each row is recorded in a savepoint of its own: a row the ingestion refuses leaves
nothing behind (not even its lead), and the other rows still count. Rows are idempotent by
`event_id`, so importing the same file twice creates nothing new.

Seats are named by their reference, which is unique across accounts: the look-up sees every
tenant (`unscoped`, on the approved list), then `record_lead` / `record_attempt` work inside the
seat's own account.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

import phonenumbers
import sqlalchemy as sa

from app.calls.operations import CallDataError, record_attempt, record_lead
from app.extensions import db
from app.models import Account, Disposition, Person, Seat, utcnow
from app.tenancy import unscoped

if TYPE_CHECKING:
    from _csv import Reader


@dataclass(frozen=True)
class Column:
    """One column of the dialer's export."""

    name: str
    required: bool
    max_length: int | None
    help: str


COLUMNS: tuple[Column, ...] = (
    Column("event_id", True, 100, "the dialer's unique id of the call attempt"),
    Column("seat_reference", True, 16, "the seat the lead came in for, e.g. ST-7KQ2MX"),
    Column("lead_external_id", True, 100, "the lead's id in the dialer (one lead, many rows)"),
    Column("lead_name", False, 200, "the lead's name"),
    Column("lead_phone", True, 32, "the lead's phone, stored in E.164 (+19175550123)"),
    Column("lead_email", False, 254, "the lead's email"),
    Column("lead_source", False, 64, "where the lead came from: Zillow, Realtor.com, ..."),
    Column("lead_received_at", True, None, "when the lead arrived, ISO-8601 with an offset"),
    Column("attempted_at", True, None, "when the ISA agent dialled, ISO-8601 with an offset"),
    Column("disposition", True, None, 'as the dialer writes it ("Live Transfer") or its code'),
    Column("duration_seconds", True, None, "call length: seconds, or M:SS / H:MM:SS"),
    Column("isa_agent", True, 100, "the ISA agent who dialled"),
    Column("notes", False, None, "the agent's notes"),
)
COLUMN_NAMES = tuple(column.name for column in COLUMNS)
DEFAULT_REGION = "US"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DURATION = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})$")
# "Voicemail / No Answer", "voicemail_no_answer" and "VOICEMAIL-NO-ANSWER" are the same.
_DISPOSITIONS = {
    re.sub(r"[^a-z0-9]", "", text.lower()): disposition
    for disposition in Disposition
    for text in (disposition.value, disposition.label)
}


def columns_help() -> str:
    """The column list for a command's help text, one line per column."""
    width = max(len(name) for name in COLUMN_NAMES)
    return "\n".join(
        f"{column.name.ljust(width)}  {'required' if column.required else 'optional'}; "
        f"{column.help}"
        for column in COLUMNS
    )


def parse_disposition(text: str) -> Disposition | None:
    """The disposition a dialer's label or an enum value names, or None."""
    return _DISPOSITIONS.get(re.sub(r"[^a-z0-9]", "", text.lower()))


# A North American number already in E.164 (+1, then ten digits, the first not 0 or 1), as
# dialers send them. It parses to exactly its digits, and one valid for the US (the first region
# of +1, the one `is_valid_number` tries first) is valid: 6 µs instead of 18 µs a number.
_NANP_E164 = re.compile(r"\+1[2-9][0-9]{9}")


def normalise_phone(text: str, default_region: str = DEFAULT_REGION) -> str | None:
    """`text` as an E.164 number (+19175550123), or None when it is not a valid number.

    A number without a country code is read as one of `default_region`.
    """
    if _NANP_E164.fullmatch(text) and phonenumbers.is_valid_number_for_region(
        phonenumbers.PhoneNumber(country_code=1, national_number=int(text[2:])), "US"
    ):
        return text
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class CallReportRow:
    """One good row of the export: a call attempt and its lead's details."""

    line: int
    event_id: str
    seat_reference: str
    lead_external_id: str
    lead_name: str
    lead_phone: str
    lead_email: str
    lead_source: str
    lead_received_at: datetime
    attempted_at: datetime
    disposition: Disposition
    duration_seconds: int
    isa_agent: str
    notes: str


@dataclass(frozen=True)
class BadRow:
    """A row that was not imported, with its line in the file and every reason."""

    line: int
    reasons: tuple[str, ...]
    # As the row wrote it (upper case), so the import can say too when the seat is unknown.
    seat_reference: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {'; '.join(self.reasons)}"


@dataclass
class ParsedReport:
    """The rows of an export that passed every check of their own, and those that did not."""

    rows: list[CallReportRow] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    # Problems with the file as a whole (no header, missing columns): no row is read then.
    file_errors: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    rows_read: int = 0


@dataclass
class SeatImport:
    """What an import did (or, in a dry run, would do) for one seat."""

    reference: str
    account_name: str
    seat_name: str
    leads_created: int = 0
    attempts_created: int = 0
    duplicates: int = 0


@dataclass
class ImportResult:
    """The outcome of `import_call_report`, for the command's output or an upload page."""

    dry_run: bool
    rows_read: int = 0
    file_errors: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    seats: list[SeatImport] = field(default_factory=list)

    @property
    def leads_created(self) -> int:
        return sum(seat.leads_created for seat in self.seats)

    @property
    def attempts_created(self) -> int:
        return sum(seat.attempts_created for seat in self.seats)

    @property
    def duplicates(self) -> int:
        return sum(seat.duplicates for seat in self.seats)

    @property
    def clean(self) -> bool:
        """True when the whole file was readable and every row was good."""
        return not self.file_errors and not self.bad_rows


def parse_call_report(
    stream: TextIO, now: datetime | None = None, default_region: str = DEFAULT_REGION
) -> ParsedReport:
    """Read a dialer's call-report export and check each row on its own (no database).

    The first row names the columns (any order, any case; unknown columns are ignored). A bad
    row gets every reason that applies: a missing field, a NUL character, a time that is not
    ISO-8601 with an offset or is after `now`, an attempt before its lead arrived, an unknown
    disposition, a malformed phone or email, a bad duration, a value too long. Raises nothing
    for bad input: a file without the required columns comes back with `file_errors`. Line
    numbers count the header as line 1 and follow quoted line breaks.
    """
    now = now or utcnow()
    parsed = ParsedReport()
    reader = csv.reader(stream)
    header = _header(reader)
    if header is None:
        parsed.file_errors.append("the file is empty: expected a header row naming the columns")
        return parsed
    names = [_column_key(name) for name in header]
    missing = [c.name for c in COLUMNS if c.required and c.name not in names]
    if missing:
        parsed.file_errors.append(
            f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)} "
            f"(the header row must name {', '.join(COLUMN_NAMES)})"
        )
        return parsed
    parsed.ignored_columns = [
        raw for raw, name in zip(header, names, strict=True) if name not in COLUMN_NAMES and raw
    ]
    try:
        _read_rows(reader, names, parsed, now, default_region)
    except csv.Error as exc:
        # The rows before the damage were read; the file's end cannot be trusted.
        parsed.file_errors.append(f"line {reader.line_num}: the file is not valid CSV ({exc})")
    return parsed


def _read_rows(
    reader: Reader, names: list[str], parsed: ParsedReport, now: datetime, default_region: str
) -> None:
    for line, cells in _records(reader):
        parsed.rows_read += 1
        values = {
            name: cell.strip().replace("\r\n", "\n")
            for name, cell in zip(names, cells, strict=False)
            if name in COLUMN_NAMES
        }
        row, reasons = _check_row(line, values, now, default_region)
        if row is None:
            reference = values.get("seat_reference", "").upper()
            parsed.bad_rows.append(BadRow(line, tuple(reasons), reference))
        else:
            parsed.rows.append(row)


def import_call_report(
    stream: TextIO,
    *,
    dry_run: bool,
    now: datetime | None = None,
    default_region: str = DEFAULT_REGION,
) -> ImportResult:
    """Check a dialer's call-report export and record its good rows; flush, never commit.

    Every good row becomes (at most) one lead and one call attempt through `record_lead` and
    `record_attempt`, which count the usage. A repeated `event_id` is a duplicate and changes
    nothing. Rows are recorded in (seat, lead, time) order, the ingestion's lock order. With
    `dry_run` the same work happens in a savepoint that is rolled back: the result says what
    would be created and which rows would be refused, and nothing is stored. Raises nothing for
    bad data (see `ImportResult.bad_rows` and `file_errors`).
    """
    parsed = parse_call_report(stream, now, default_region)
    result = ImportResult(
        dry_run=dry_run,
        rows_read=parsed.rows_read,
        file_errors=parsed.file_errors,
        ignored_columns=parsed.ignored_columns,
    )
    if parsed.file_errors:
        return result
    references = {row.seat_reference for row in parsed.rows}
    references |= {bad.seat_reference for bad in parsed.bad_rows if bad.seat_reference}
    seats = _seats_by_reference(references)
    result.bad_rows = [
        BadRow(
            bad.line, (*bad.reasons, f"seat {bad.seat_reference} is unknown"), bad.seat_reference
        )
        if bad.seat_reference and bad.seat_reference not in seats
        else bad
        for bad in parsed.bad_rows
    ]
    summaries: dict[str, SeatImport] = {}
    known: list[tuple[_SeatInfo, CallReportRow]] = []
    for row in parsed.rows:
        info = seats.get(row.seat_reference)
        if info is None:
            result.bad_rows.append(
                BadRow(row.line, (f"seat {row.seat_reference} is unknown",), row.seat_reference)
            )
            continue
        known.append((info, row))
        if row.seat_reference not in summaries:
            summaries[row.seat_reference] = SeatImport(
                row.seat_reference, info.account_name, info.seat_name
            )
    known.sort(key=lambda pair: (pair[0].seat.id, pair[1].lead_external_id, pair[1].attempted_at))
    dry_run_savepoint = db.session.begin_nested() if dry_run else None
    try:
        for info, row in known:
            reason = _record(info.seat, row, summaries[row.seat_reference])
            if reason is not None:
                result.bad_rows.append(BadRow(row.line, (reason,), row.seat_reference))
    finally:
        if dry_run_savepoint is not None:
            dry_run_savepoint.rollback()
    result.bad_rows.sort(key=lambda bad: bad.line)
    result.seats = sorted(summaries.values(), key=lambda seat: seat.reference)
    return result


@dataclass(frozen=True)
class _SeatInfo:
    seat: Seat
    account_name: str
    seat_name: str


def _seats_by_reference(references: Iterable[str]) -> dict[str, _SeatInfo]:
    """The seats with these references, whichever account they belong to.

    An export mixes seats of many accounts and names them only by reference (unique across
    accounts), so this one look-up sees every tenant; recording then happens in each seat's.
    """
    wanted = sorted(set(references))
    found: dict[str, _SeatInfo] = {}
    with unscoped():
        for start in range(0, len(wanted), 500):
            rows = db.session.execute(
                sa.select(Seat, Account.name, Person.name)
                .join(Account, Account.id == Seat.account_id)
                .join(Person, Person.id == Seat.primary_person_id)
                .where(Seat.reference.in_(wanted[start : start + 500]))
            ).all()
            for seat, account_name, primary_name in rows:
                label = f"{seat.client_label} · {primary_name}" if seat.client_label else ""
                found[seat.reference] = _SeatInfo(seat, account_name, label or primary_name)
    return found


def _record(seat: Seat, row: CallReportRow, summary: SeatImport) -> str | None:
    """Record one row in a savepoint of its own; the reason it was refused, or None."""
    try:
        with db.session.begin_nested():
            lead, lead_created = record_lead(
                seat,
                row.lead_external_id,
                row.lead_name,
                row.lead_phone,
                row.lead_email,
                row.lead_source,
                row.lead_received_at,
            )
            _attempt, attempt_created = record_attempt(
                seat,
                lead,
                row.event_id,
                row.attempted_at,
                row.disposition,
                row.duration_seconds,
                row.isa_agent,
                row.notes,
            )
    except CallDataError as exc:
        return str(exc)
    summary.leads_created += lead_created
    if attempt_created:
        summary.attempts_created += 1
    else:
        summary.duplicates += 1
    return None


def _column_key(name: str) -> str:
    return re.sub(r"[\s-]+", "_", name.strip().lower())


def _header(reader: Reader) -> list[str] | None:
    for cells in reader:
        if any(cell.strip() for cell in cells):
            return cells
    return None


def _records(reader: Reader) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank record with the line it starts on."""
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        if any(cell.strip() for cell in cells):
            yield line, cells


def _check_row(
    line: int, values: dict[str, str], now: datetime, default_region: str
) -> tuple[CallReportRow | None, list[str]]:
    reasons = [
        f"{column.name} is missing"
        for column in COLUMNS
        if column.required and not values.get(column.name)
    ]
    # PostgreSQL cannot store a NUL character in text (the API refuses it too).
    reasons += [
        f"{name} contains a NUL character" for name, text in values.items() if "\x00" in text
    ]
    reasons += [
        f"{column.name} is longer than {column.max_length} characters"
        for column in COLUMNS
        if column.max_length is not None and len(values.get(column.name, "")) > column.max_length
    ]
    received_at = _time(values, "lead_received_at", now, reasons)
    attempted_at = _time(values, "attempted_at", now, reasons)
    if received_at and attempted_at and attempted_at < received_at:
        reasons.append("attempted_at is before lead_received_at")
    disposition = None
    if values.get("disposition"):
        disposition = parse_disposition(values["disposition"])
        if disposition is None:
            known = ", ".join(f'"{d.label}"' for d in Disposition)
            reasons.append(f'disposition "{values["disposition"]}" is unknown (use one of {known})')
    phone = ""
    if values.get("lead_phone"):
        phone = normalise_phone(values["lead_phone"], default_region) or ""
        if not phone:
            reasons.append(f'lead_phone "{values["lead_phone"]}" is not a valid phone number')
    email = values.get("lead_email", "")
    if email and not _EMAIL.match(email):
        reasons.append(f'lead_email "{email}" is not an email address')
    duration = _duration(values.get("duration_seconds", ""), reasons)
    if reasons or not (received_at and attempted_at and disposition) or duration is None:
        return None, reasons
    return CallReportRow(
        line=line,
        event_id=values["event_id"],
        seat_reference=values["seat_reference"].upper(),
        lead_external_id=values["lead_external_id"],
        lead_name=values.get("lead_name", ""),
        lead_phone=phone,
        lead_email=email.lower(),
        lead_source=values.get("lead_source", ""),
        lead_received_at=received_at,
        attempted_at=attempted_at,
        disposition=disposition,
        duration_seconds=duration,
        isa_agent=values["isa_agent"],
        notes=values.get("notes", ""),
    ), []


def _time(values: dict[str, str], name: str, now: datetime, reasons: list[str]) -> datetime | None:
    text = values.get(name, "")
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        reasons.append(f'{name} "{text}" is not an ISO-8601 time (2025-03-05T14:02:00-05:00)')
        return None
    if moment.tzinfo is None:
        reasons.append(f'{name} "{text}" has no UTC offset (add -05:00, +00:00 or Z)')
        return None
    if moment > now:
        reasons.append(f'{name} "{text}" is in the future')
        return None
    return moment


def _duration(text: str, reasons: list[str]) -> int | None:
    if not text:
        return None
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if match is None or int(match.group(3)) >= 60:
        reasons.append(f'duration_seconds "{text}" is not a number of seconds (or M:SS)')
        return None
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    if match.group(1) is not None and minutes >= 60:
        reasons.append(f'duration_seconds "{text}" is not a number of seconds (or M:SS)')
        return None
    return hours * 3600 + minutes * 60 + seconds
