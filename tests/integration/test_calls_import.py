"""Importing a dialer's call-report export: a dry run that stores nothing and names every bad row
by its line, an import that stores the good rows in their seats' accounts, and a second import
of the same file that creates nothing new."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import phonenumbers
import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from app.calls.importer import (
    BadRow,
    ImportResult,
    import_call_report,
    normalise_phone,
    parse_call_report,
    parse_disposition,
)
from app.calls.operations import record_attempt, record_lead
from app.extensions import db
from app.models import Account, CallAttempt, Disposition, Lead, Seat, SeatUsage
from app.tenancy import tenant_context, unscoped
from tests import factories

EXPORT = Path(__file__).resolve().parents[1] / "fixtures" / "dialer_export.csv"
HEADER = (
    "event_id,seat_reference,lead_external_id,lead_name,lead_phone,lead_email,lead_source,"
    "lead_received_at,attempted_at,disposition,duration_seconds,isa_agent,notes\n"
)
GOOD_ROW = (
    "EV-9,ST-IMPA01,Z-1,Olivia Smith,(917) 555-0101,,Zillow,2025-02-03T09:00:00-05:00,"
    "2025-02-03T09:04:00-05:00,Voicemail / No Answer,25,Maya Chen,\n"
)
# What the fixture file holds, line by line (line 1 is the header, line 11 is blank).
BAD_ROWS = [
    BadRow(8, ("seat ST-NOPE99 is unknown",), "ST-NOPE99"),
    BadRow(
        9,
        (
            'attempted_at "2999-01-01T00:00:00Z" is in the future',
            'disposition "Left message" is unknown (use one of "Live Transfer", '
            '"Booked Appointment", "Callback Later", "Voicemail / No Answer", '
            '"Not Interested (DNC)", "Bad Data (DNC)")',
            'lead_phone "12345" is not a valid phone number',
        ),
        "ST-IMPA01",
    ),
    BadRow(10, ("event_id is missing", "isa_agent is missing"), "ST-IMPA01"),
    BadRow(
        12,
        ('lead_received_at "2025-02-07T10:00:00" has no UTC offset (add -05:00, +00:00 or Z)',),
        "ST-IMPA01",
    ),
]
# seat reference -> (leads created, attempts created, duplicates)
PER_SEAT = {"ST-IMPA01": (1, 2, 1), "ST-IMPA02": (2, 2, 0), "ST-IMPB01": (1, 1, 0)}


@pytest.fixture
def agency() -> Account:
    account = factories.subscribed_account(kind="agency", seats=2, start=date(2025, 2, 1))
    _name_seats(account, ["ST-IMPA01", "ST-IMPA02"])
    return account


@pytest.fixture
def brokerage() -> Account:
    account = factories.subscribed_account(
        kind="brokerage", seats=1, start=date(2025, 2, 1), timezone="America/Los_Angeles"
    )
    _name_seats(account, ["ST-IMPB01"])
    return account


def _name_seats(account: Account, references: list[str]) -> None:
    with tenant_context(account.id):
        seats = db.session.scalars(sa.select(Seat).order_by(Seat.id)).all()
        for seat, reference in zip(seats, references, strict=True):
            seat.reference = reference
        db.session.flush()


def _stored() -> dict[str, int]:
    """How many leads, attempts and counter rows exist, in every account."""
    with unscoped():
        return {
            model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
            for model in (Lead, CallAttempt, SeatUsage)
        }


def _import(dry_run: bool, text: str | None = None) -> ImportResult:
    source = text if text is not None else EXPORT.read_text(encoding="utf-8")
    return import_call_report(io.StringIO(source, newline=""), dry_run=dry_run)


def _summary(result: ImportResult) -> dict[str, tuple[int, int, int]]:
    return {
        seat.reference: (seat.leads_created, seat.attempts_created, seat.duplicates)
        for seat in result.seats
    }


@pytest.mark.usefixtures("agency", "brokerage")
def test_a_dry_run_says_what_it_would_create_and_lists_bad_rows_but_stores_nothing() -> None:
    before = _stored()

    with EXPORT.open(encoding="utf-8", newline="") as stream:
        result = import_call_report(stream, dry_run=True)

    assert result.dry_run
    assert result.rows_read == 10
    assert result.bad_rows == BAD_ROWS
    assert _summary(result) == PER_SEAT
    assert (result.leads_created, result.attempts_created, result.duplicates) == (4, 5, 1)
    assert result.ignored_columns == ["campaign"]
    assert not result.clean
    assert _stored() == before


def test_the_import_stores_good_rows_in_each_seats_account_and_a_repeat_creates_nothing(
    agency: Account, brokerage: Account
) -> None:
    before = _stored()

    first = _import(dry_run=False)

    assert first.bad_rows == BAD_ROWS
    assert _summary(first) == PER_SEAT
    after = _stored()
    assert after["Lead"] == before["Lead"] + 4
    assert after["CallAttempt"] == before["CallAttempt"] + 5
    with tenant_context(agency.id):
        leads = {lead.external_id: lead for lead in db.session.scalars(sa.select(Lead))}
        attempts = {a.event_id: a for a in db.session.scalars(sa.select(CallAttempt))}
        usage = db.session.scalars(sa.select(SeatUsage)).all()
        versions = {row.id: row.version for row in usage}
    assert set(leads) == {"Z-1", "R-7", "R-8"}
    olivia = leads["Z-1"]
    assert (olivia.name, olivia.phone, olivia.email) == (
        "Olivia Smith",
        "+19175550101",
        "olivia@example.com",
    )
    assert (olivia.attempts_count, olivia.last_disposition, olivia.closed) == (
        2,
        Disposition.LIVE_TRANSFER,
        True,
    )
    assert leads["R-7"].phone == "+14155550142"
    assert leads["R-8"].phone == "+12125550199"
    assert attempts["EV-1002"].duration_seconds == 365
    assert attempts["EV-1003"].notes == 'Call back after 5pm, said "maybe"'
    assert attempts["EV-1003"].attempted_at == datetime(2025, 2, 4, 15, 30, tzinfo=UTC)
    assert attempts["EV-1004"].disposition is Disposition.BOOKED_APPOINTMENT
    assert attempts["EV-1004"].duration_seconds == 250
    assert attempts["EV-1004"].notes == "Spoke briefly.\nShowing booked for Saturday"
    assert sum(row.leads_called for row in usage) == 3
    assert sum(row.attempts for row in usage) == 4
    with tenant_context(brokerage.id):
        [noah] = db.session.scalars(sa.select(Lead)).all()
        assert noah.account_id == brokerage.id
        assert noah.last_disposition is Disposition.NOT_INTERESTED_DNC

    again = _import(dry_run=False)

    assert again.bad_rows == BAD_ROWS
    assert _summary(again) == {
        "ST-IMPA01": (0, 0, 3),
        "ST-IMPA02": (0, 0, 2),
        "ST-IMPB01": (0, 0, 1),
    }
    assert _stored() == after
    with tenant_context(agency.id):
        again_versions = {
            row.id: row.version
            for row in db.session.scalars(
                sa.select(SeatUsage).execution_options(populate_existing=True)
            )
        }
    assert again_versions == versions  # not even a counter was touched


@pytest.mark.usefixtures("agency", "brokerage")
def test_a_dry_run_after_the_import_would_create_nothing() -> None:
    _import(dry_run=False)
    result = _import(dry_run=True)
    assert (result.leads_created, result.attempts_created, result.duplicates) == (0, 0, 6)


def test_a_row_the_ingestion_refuses_is_reported_and_leaves_nothing_behind(
    agency: Account, brokerage: Account
) -> None:
    # Another account's attempt already holds the event id the file uses.
    [their_seat] = _seats(brokerage)
    with tenant_context(brokerage.id):
        lead, _ = record_lead(
            their_seat, "H-9", "Zoe King", "+14155550100", "", "", datetime(2025, 2, 3, tzinfo=UTC)
        )
    record_attempt(
        their_seat,
        lead,
        "EV-9",
        datetime(2025, 2, 3, 1, tzinfo=UTC),
        Disposition.CALLBACK_LATER,
        10,
        "Sam Okafor",
        "",
    )
    before = _stored()

    for dry_run in (True, False):
        result = _import(dry_run, HEADER + GOOD_ROW)
        assert result.bad_rows == [BadRow(2, ("event id EV-9 is already used",), "ST-IMPA01")]
        assert _summary(result) == {"ST-IMPA01": (0, 0, 0)}
        assert _stored() == before  # not even the row's lead


@pytest.mark.usefixtures("brokerage")
def test_a_row_called_after_its_seat_was_deactivated_is_refused(agency: Account) -> None:
    seat = _seats(agency)[0]
    seat.deactivated_at = datetime(2025, 2, 3, 14, 2, tzinfo=UTC)  # 09:02 in New York
    db.session.commit()
    earlier = GOOD_ROW.replace("EV-9", "EV-8").replace("T09:04:00", "T09:01:59")
    before = _stored()

    result = _import(False, HEADER + earlier + GOOD_ROW)

    assert result.bad_rows == [
        BadRow(
            3,
            (
                "event EV-9: seat ST-IMPA01 is deactivated since 2025-02-03 14:02 UTC: the ISA "
                "team does not work its leads, so attempts made after that are not accepted",
            ),
            "ST-IMPA01",
        )
    ]
    after = _stored()
    assert (after["Lead"], after["CallAttempt"]) == (before["Lead"] + 1, before["CallAttempt"] + 1)


def _seats(account: Account) -> list[Seat]:
    with tenant_context(account.id):
        return list(db.session.scalars(sa.select(Seat).order_by(Seat.id)))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "the file is empty: expected a header row naming the columns"),
        ("\n\n", "the file is empty: expected a header row naming the columns"),
        (
            "event_id,seat_reference,attempted_at\nEV-1,ST-1,2025-02-03T09:00:00Z\n",
            "missing columns: lead_external_id, lead_phone, lead_received_at, disposition, "
            "duration_seconds, isa_agent (the header row must name event_id, seat_reference, "
            "lead_external_id, lead_name, lead_phone, lead_email, lead_source, lead_received_at, "
            "attempted_at, disposition, duration_seconds, isa_agent, notes)",
        ),
    ],
)
def test_a_file_without_the_columns_imports_nothing(text: str, error: str) -> None:
    before = _stored()
    result = _import(dry_run=False, text=text)
    assert result.file_errors == [error]
    assert result.rows_read == 0
    assert _stored() == before


def test_headers_are_matched_in_any_order_and_case() -> None:
    text = (
        "Notes, ISA Agent ,Duration Seconds,Disposition,Attempted At,Lead Received At,"
        "Lead Phone,Lead External ID,Seat Reference,Event ID\n"
        'x,Maya Chen,30,Callback Later,2025-02-03T10:00:00Z,2025-02-03T09:00:00Z,"917 555 0101",'
        "Z-1,ST-IMPA01,EV-1\n"
    )
    parsed = parse_call_report(io.StringIO(text))
    assert parsed.bad_rows == []
    [row] = parsed.rows
    assert (row.event_id, row.isa_agent, row.lead_phone, row.notes) == (
        "EV-1",
        "Maya Chen",
        "+19175550101",
        "x",
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("duration_seconds", "-5", 'duration_seconds "-5" is not a number of seconds (or M:SS)'),
        (
            "duration_seconds",
            "1:75",
            'duration_seconds "1:75" is not a number of seconds (or M:SS)',
        ),
        ("attempted_at", "yesterday", 'attempted_at "yesterday" is not an ISO-8601 time'),
        ("attempted_at", "2025-02-03T08:00:00-05:00", "attempted_at is before lead_received_at"),
        ("lead_email", "not-an-email", 'lead_email "not-an-email" is not an email address'),
        ("isa_agent", "x" * 101, "isa_agent is longer than 100 characters"),
        ("lead_phone", "555", 'lead_phone "555" is not a valid phone number'),
        ("lead_phone", "call me", 'lead_phone "call me" is not a valid phone number'),
    ],
)
def test_each_bad_value_is_named(field: str, value: str, reason: str) -> None:
    values = dict(zip(HEADER.strip().split(","), GOOD_ROW.strip("\n").split(","), strict=True))
    values[field] = value
    line = ",".join(f'"{v}"' for v in values.values())
    parsed = parse_call_report(io.StringIO(HEADER + line + "\n"))
    [bad] = parsed.bad_rows
    assert bad.line == 2
    assert len(bad.reasons) == 1
    assert bad.reasons[0].startswith(reason)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Live Transfer", Disposition.LIVE_TRANSFER),
        ("live_transfer", Disposition.LIVE_TRANSFER),
        ("Voicemail / No Answer", Disposition.VOICEMAIL_NO_ANSWER),
        ("voicemail/no answer", Disposition.VOICEMAIL_NO_ANSWER),
        ("Not Interested (DNC)", Disposition.NOT_INTERESTED_DNC),
        ("BAD-DATA-DNC", Disposition.BAD_DATA_DNC),
        ("Left message", None),
        ("", None),
    ],
)
def test_dispositions_are_read_as_the_dialer_writes_them(
    text: str, expected: Disposition | None
) -> None:
    assert parse_disposition(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(917) 555-0101", "+19175550101"),
        ("917.555.0101", "+19175550101"),
        ("+1 917 555 0101", "+19175550101"),
        ("+44 20 7946 0958", "+442079460958"),
        ("12345", None),
        ("n/a", None),
    ],
)
def test_phones_are_stored_in_e164(text: str, expected: str | None) -> None:
    assert normalise_phone(text) == expected


@given(st.from_regex(r"\+1[0-9]{10}", fullmatch=True))
def test_north_american_e164_numbers_read_as_the_full_parse_reads_them(text: str) -> None:
    """Such numbers take a short cut past the parser: it must agree with the parser."""
    number = phonenumbers.parse(text, "US")
    expected = (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(number)
        else None
    )
    assert normalise_phone(text) == expected


@pytest.mark.usefixtures("agency", "brokerage")
def test_the_command_dry_run_prints_the_plan_and_the_bad_rows(app: Flask) -> None:
    db.session.commit()  # the command rolls its work back; the fixtures' rows must outlive that
    before = _stored()

    result = app.test_cli_runner().invoke(args=["calls", "import", str(EXPORT), "--dry-run"])

    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert (
        lines[0] == "dialer_export.csv: 10 rows read, 6 good, 4 bad (dry run: nothing was stored)"
    )
    assert "Ignored columns: campaign" in lines
    assert any(
        line.startswith("  ST-IMPA02 ") and line.endswith("would create 2 leads, 2 attempts")
        for line in lines
    ), lines
    assert "  line 8: seat ST-NOPE99 is unknown" in lines
    assert "  line 10: event_id is missing; isa_agent is missing" in lines
    assert (
        "Total: would create 4 leads and 5 call attempts; 1 duplicate event skipped (imported "
        "before, or repeated in the file)." in lines
    )
    assert lines[-1] == "Run again without --dry-run to import."
    assert _stored() == before


@pytest.mark.usefixtures("agency", "brokerage")
def test_the_command_imports_and_a_second_run_creates_nothing(app: Flask) -> None:
    db.session.commit()
    before = _stored()
    runner = app.test_cli_runner()

    first = runner.invoke(args=["calls", "import", str(EXPORT)])
    again = runner.invoke(args=["calls", "import", str(EXPORT)])

    assert first.exit_code == again.exit_code == 1  # the file has bad rows
    assert "Total: created 4 leads and 5 call attempts; 1 duplicate event skipped" in (first.output)
    assert "Total: created 0 leads and 0 call attempts; 6 duplicate events skipped" in (
        again.output
    )
    assert _stored()["CallAttempt"] == before["CallAttempt"] + 5


@pytest.mark.usefixtures("agency")
def test_a_clean_file_exits_zero(app: Flask, tmp_path: Path) -> None:
    db.session.commit()
    export = tmp_path / "clean.csv"
    export.write_text(HEADER + GOOD_ROW, encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["calls", "import", str(export)])
    assert result.exit_code == 0, result.output
    assert "1 row read, 1 good, 0 bad" in result.output


def test_a_file_that_is_not_utf8_is_refused(app: Flask, tmp_path: Path) -> None:
    export = tmp_path / "latin1.csv"
    export.write_bytes((HEADER + GOOD_ROW.replace("Olivia", "Zoë")).encode("latin-1"))
    result = app.test_cli_runner().invoke(args=["calls", "import", str(export)])
    assert result.exit_code == 1
    assert "is not UTF-8 text" in result.output
