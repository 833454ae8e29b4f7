"""A report's pages (cover, seat summary, lead detail) and its CSV, from its content.

Plain values in, plain values out: the formatting of every cell lives here, shared by the PDF
and the CSV, so both say the same thing about each lead.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime

from app.calls.queries import (
    LeadRow,
    format_csv_time,
    format_moment,
    format_speed,
    spreadsheet_safe,
)
from app.reports.layout import (
    Column,
    Group,
    Heading,
    Page,
    columns,
    paginate_table,
)
from app.reports.queries import ReportContent, SeatLeads, SeatSummary

# Relative widths (scaled to the page); a header must fit its column in the PDF's header font.
DETAIL_COLUMNS: tuple[Column, ...] = columns(
    ("Lead", 29),
    ("Source", 19),
    ("Received", 27),
    ("First attempt", 27),
    ("Speed to lead", 22, True),
    ("Attempts", 15, True),
    ("Last disposition", 33),
    ("Month", 12),
)
SUMMARY_COLUMNS: tuple[Column, ...] = columns(
    ("Seat", 32),
    ("Reference", 21),
    ("Received", 17, True),
    ("Called", 14, True),
    ("Contact rate", 21, True),
    ("Transfers", 18, True),
    ("Appts", 13, True),
    ("Median speed", 23, True),
    ("Open", 11, True),
    ("Share", 14, True),
)


def document_pages(content: ReportContent) -> list[Page]:
    """Every page of the PDF, numbered: the cover, the seat summary (master reports) and
    the lead detail grouped by seat."""
    pages = [Page(1, "cover")]
    if content.master:
        pages += paginate_table(
            Heading(
                "Seats",
                f"{content.subject} · {content.scope_title}"
                + (" · grouped by client" if content.is_agency else ""),
            ),
            SUMMARY_COLUMNS,
            _summary_groups(content),
            first_number=len(pages) + 1,
            header_per_group=False,
            totals=summary_totals(content),
        )
    pages += paginate_table(
        Heading(
            "Lead detail",
            f"{content.lead_count} lead{'s' if content.lead_count != 1 else ''} · "
            f"times in {content.zone.key} · grouped by seat",
        ),
        DETAIL_COLUMNS,
        _detail_groups(content),
        first_number=len(pages) + 1,
        header_per_group=True,
    )
    return pages


def _percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else "—"


def summary_cells(seat: SeatSummary, account_called: int) -> tuple[str, ...]:
    return (
        seat.name,
        seat.reference,
        str(seat.received),
        str(seat.called),
        _percent(seat.contacted, seat.called),
        str(seat.transfers),
        str(seat.appointments),
        format_speed(seat.speed_median),
        str(seat.open_leads),
        _percent(seat.called, account_called),
    )


def _summary_groups(content: ReportContent) -> list[Group]:
    called = content.kpis.leads_called
    if not content.is_agency:
        rows = [summary_cells(seat, called) for seat in content.seats]
        return [Group(None, rows, "No seats.")]
    groups = []
    for client, seats in content.client_groups.items():
        client_called = sum(seat.called for seat in seats)
        meta = (
            f"{len(seats)} seat{'s' if len(seats) != 1 else ''} · {client_called} called · "
            f"{_percent(client_called, called)} of the account's usage"
        )
        groups.append(
            Group(Heading(client, meta, level=3), [summary_cells(s, called) for s in seats])
        )
    return groups


def summary_totals(content: ReportContent) -> tuple[str, ...]:
    kpis = content.kpis
    return (
        "All seats",
        "",
        str(kpis.leads_received),
        str(kpis.leads_called),
        _percent(kpis.leads_contacted, kpis.leads_called),
        str(kpis.transfers),
        str(kpis.appointments),
        format_speed(kpis.speed_median),
        str(kpis.open_leads),
        "100%" if kpis.leads_called else "—",
    )


def detail_cells(row: LeadRow, today: date) -> tuple[str, ...]:
    """One lead as the PDF's detail shows it."""
    return (
        row.name or row.external_id,
        row.source or "—",
        format_moment(row.received_at, today),
        format_moment(row.first_attempt_at, today),
        format_speed(row.speed_to_lead),
        str(row.attempts),
        row.last_disposition.label if row.last_disposition else "Not called yet",
        row.month_key or "—",
    )


def seat_heading(seat: SeatSummary, leads: int, called: int) -> Heading:
    """A seat's heading in the detail: name, then reference, client and counts."""
    parts = [seat.reference]
    if seat.client:
        parts.append(seat.client)
    parts.append(f"{leads} lead{'s' if leads != 1 else ''} listed")
    parts.append(f"{called} called")
    return Heading(seat.name, " · ".join(parts), level=2)


def _detail_groups(content: ReportContent) -> Iterable[Group]:
    today = content.generated_at.date()
    for group in content.seat_leads:
        rows = [detail_cells(row, today) for row in group.rows]
        yield Group(
            seat_heading(group.seat, len(group.rows), group.seat.called),
            rows,
            "No leads in this report.",
        )


# --- CSV ------------------------------------------------------------------------------------


def csv_header(content: ReportContent) -> list[str]:
    zone = content.zone.key
    return [
        "Client",
        "Seat",
        "Seat reference",
        "Lead",
        "Source",
        f"Received ({zone})",
        f"First attempt ({zone})",
        "Speed to lead (minutes)",
        "Attempts",
        "Last disposition",
        "Month key",
    ]


def _csv_row(group: SeatLeads, row: LeadRow) -> list[str | int]:
    speed = row.speed_to_lead
    return [
        spreadsheet_safe(group.seat.client),
        spreadsheet_safe(group.seat.name),
        spreadsheet_safe(group.seat.reference),
        spreadsheet_safe(row.name or row.external_id),
        spreadsheet_safe(row.source),
        format_csv_time(row.received_at),
        format_csv_time(row.first_attempt_at),
        "" if speed is None else f"{speed.total_seconds() / 60:.1f}",
        row.attempts,
        row.last_disposition.label if row.last_disposition else "Not called yet",
        row.month_key or "",
    ]


def report_csv(content: ReportContent) -> bytes:
    """One row per listed lead, seat by seat as in the PDF; UTF-8 with a byte-order mark (so
    Excel reads accents), cells a spreadsheet would run as a formula neutralised."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(csv_header(content))
    for group in content.seat_leads:
        for row in group.rows:
            writer.writerow(_csv_row(group, row))
    return out.getvalue().encode()


def generated_label(moment: datetime) -> str:
    """ "Nov 26, 2026, 10:14 AM EST" for the footer."""
    hour = moment.hour % 12 or 12
    return (
        f"{moment:%b} {moment.day}, {moment.year}, {hour}:{moment:%M} "
        f"{'AM' if moment.hour < 12 else 'PM'} {moment.tzname() or ''}"
    ).strip()
