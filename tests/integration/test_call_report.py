"""A seat's call report: the leads of a period or of dates, filtered, searched, sorted and paged;
the KPIs of exactly those leads; a CSV of the same rows; a lead's timeline; and who may see it."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app.billing_portal.closing import close_periods
from app.calls.operations import record_attempt, record_lead
from app.calls.queries import (
    PAGE_SIZE,
    ReportFilters,
    call_report,
    format_speed,
    median,
    percentile,
    spreadsheet_safe,
)
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    Disposition,
    Lead,
    Role,
    Seat,
    SeatUsage,
    User,
)
from app.tenancy import tenant_context
from tests import factories
from tests.conftest import Auth

NEW_YORK = ZoneInfo("America/New_York")
VM = Disposition.VOICEMAIL_NO_ANSWER


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=NEW_YORK)


@pytest.fixture
def account() -> Account:
    """An agency whose M1 is February 2025 (New York time); overrides the shared fixture, so
    `owner`, `viewer` and `seat_member` (on the first seat) belong to it."""
    return factories.subscribed_account(kind="agency", seats=2, start=date(2025, 2, 1))


@dataclass
class Example:
    """The hand-built example: seat A's leads by name, seat B, and the two periods."""

    account: Account
    seat: Seat
    other_seat: Seat
    leads: dict[str, Lead]
    m1: BillingPeriod
    m2: BillingPeriod

    def ids(self, *names: str) -> list[int]:
        return [self.leads[name].id for name in names]


@pytest.fixture
def example(account: Account) -> Example:
    """Seat A's leads in M1 (February) and one called in M2 (March), after M1 closed.

    name      source       received      attempts (New York time)           speed
    Olivia    Zillow       Feb 3 09:00   09:04 voicemail, 13:10 transfer    4 min
    Liam      Realtor.com  Feb 4 10:00   10:30 callback                     30 min
    Emma      Zillow       Feb 5 08:00   08:02 appointment                  2 min
    Noah      Facebook     Feb 6 12:00   14:00 voicemail (+ Feb 28, late)   2 h
    Ava       Website      Feb 7 09:00   Feb 8 09:00 bad data               1 d
    Ethan     Zillow       Feb 9 10:00   not called
    Mia       Referral     Feb 27 10:00  Mar 2 11:00 not interested (M2)    3 d 1 h
    """
    seat, other_seat = _seats(account)
    leads: dict[str, Lead] = {}

    def lead(name: str, phone: str, source: str, received: datetime) -> Lead:
        leads[name], _ = record_lead(
            seat, f"X-{name}", f"{name} Test", phone, f"{name.lower()}@ex.example", source, received
        )
        return leads[name]

    def call(name: str, when: datetime, disposition: Disposition, seconds: int = 30) -> None:
        record_attempt(
            seat, leads[name], f"ev-{name}-{when:%d%H%M}", when, disposition, seconds, "Maya", ""
        )

    lead("Olivia", "+19175550101", "Zillow", at(2, 3, 9))
    call("Olivia", at(2, 3, 9, 4), VM, 25)
    call("Olivia", at(2, 3, 13, 10), Disposition.LIVE_TRANSFER, 365)
    lead("Liam", "(415) 555-0142", "Realtor.com", at(2, 4, 10))
    call("Liam", at(2, 4, 10, 30), Disposition.CALLBACK_LATER)
    lead("Emma", "+12125550199", "Zillow", at(2, 5, 8))
    call("Emma", at(2, 5, 8, 2), Disposition.BOOKED_APPOINTMENT)
    lead("Noah", "(917) 555-0104", "Facebook", at(2, 6, 12))
    call("Noah", at(2, 6, 14), VM)
    lead("Ava", "(917) 555-0105", "Website", at(2, 7, 9))
    call("Ava", at(2, 8, 9), Disposition.BAD_DATA_DNC)
    lead("Ethan", "(917) 555-0106", "Zillow", at(2, 9, 10))
    lead("Mia", "(917) 555-0107", "Referral", at(2, 27, 10))
    record_lead(other_seat, "B-1", "Other Seat", "+19175550199", "", "Zillow", at(2, 10, 10))
    m1 = _periods(account)[0]
    db.session.commit()  # the close works in a transaction of its own (here: a savepoint)
    result = close_periods([m1.id], m1.ends_at + timedelta(hours=3), trigger="test")
    assert (result.closed, result.failures) == (1, [])
    call("Mia", at(3, 2, 11), Disposition.NOT_INTERESTED_DNC)
    call("Noah", at(2, 28, 10), VM)  # M1 is closed: lands in M2, flagged late
    m1, m2 = _periods(account)
    return Example(account, seat, other_seat, leads, m1, m2)


def _seats(account: Account) -> list[Seat]:
    with tenant_context(account.id):
        return list(db.session.scalars(sa.select(Seat).order_by(Seat.id)))


def _periods(account: Account) -> list[BillingPeriod]:
    with tenant_context(account.id):
        return list(
            db.session.scalars(
                sa.select(BillingPeriod)
                .order_by(BillingPeriod.month_index)
                .execution_options(populate_existing=True)
            )
        )


def _url(example: Example, suffix: str = "calls", **args: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in args.items())
    return f"/a/{example.account.slug}/seats/{example.seat.id}/{suffix}" + (
        f"?{query}" if query else ""
    )


def _row_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="lead-(\d+)"', html)]


def _csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


@pytest.fixture
def logged_in(client: FlaskClient, auth: Auth, owner: User) -> FlaskClient:
    auth.login(owner)
    return client


# --- KPIs -----------------------------------------------------------------------------------------


def test_kpis_of_a_closed_period_on_the_hand_built_example(example: Example) -> None:
    with tenant_context(example.account.id):
        report = call_report(example.seat, ReportFilters(period_key="M1"), NEW_YORK)
    kpis = report.kpis
    # Received in M1: all seven. Called in M1 (month key M1): all but Ethan (never) and Mia (M2).
    assert (kpis.leads_received, kpis.leads_called) == (7, 5)
    # Olivia (transfer), Liam (callback) and Emma (appointment) were reached; Noah and Ava not.
    assert (kpis.leads_contacted, kpis.contact_rate) == (3, 0.6)
    assert (kpis.transfers, kpis.appointments) == (1, 1)
    # Not closed: Liam (callback), Noah (voicemails), Ethan (not called). Mia closed in M2.
    assert kpis.open_leads == 3
    # Speeds 2 min, 4 min, 30 min, 2 h, 1 d: the middle one, and the 5th of 5 (nearest rank).
    assert kpis.speed_median == timedelta(minutes=30)
    assert kpis.speed_p95 == timedelta(days=1)
    assert report.total == 7
    assert report.title == "M1 · Feb 1 – Feb 28, 2025"


def test_a_periods_kpis_agree_with_the_usage_counters(example: Example) -> None:
    for period in (example.m1, example.m2):
        with tenant_context(example.account.id):
            kpis = call_report(example.seat, ReportFilters(period_key=period.key), NEW_YORK).kpis
            usage = db.session.scalars(
                sa.select(SeatUsage).where(
                    SeatUsage.period_id == period.id, SeatUsage.seat_id == example.seat.id
                )
            ).one()
        assert (
            kpis.leads_received,
            kpis.leads_called,
            kpis.leads_contacted,
            kpis.transfers,
            kpis.appointments,
        ) == (
            usage.leads_received,
            usage.leads_called,
            usage.leads_contacted,
            usage.transfers,
            usage.appointments,
        )


def test_a_lead_received_in_one_period_and_called_in_the_next_shows_in_both(
    example: Example,
) -> None:
    with tenant_context(example.account.id):
        m2 = call_report(example.seat, ReportFilters(period_key="M2"), NEW_YORK)
    assert [row.lead_id for row in m2.rows] == example.ids("Mia")
    assert m2.rows[0].month_key == "M2"
    assert (m2.kpis.leads_received, m2.kpis.leads_called, m2.kpis.contact_rate) == (0, 1, 1.0)
    assert m2.kpis.speed_median == timedelta(days=3, hours=1)
    assert m2.kpis.open_leads == 0


def test_the_page_shows_the_kpis_humanly(logged_in: FlaskClient, example: Example) -> None:
    html = logged_in.get(_url(example, period="M1")).get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Leads received 7" in text
    assert "Leads called 5 counted in M1" in text
    assert "Speed to lead 30 min median · p95 1 d" in text
    assert "Contact rate 60% 3 of 5 called leads reached" in text
    assert "Transfers + appointments 2 1 transfer · 1 appointment" in text
    assert "Open leads 3" in text
    assert "Showing 1–7 of 7 leads" in text


def test_the_report_opens_on_the_open_period(logged_in: FlaskClient, example: Example) -> None:
    html = logged_in.get(_url(example)).get_data(as_text=True)
    assert _row_ids(html) == example.ids("Mia")
    assert '<option value="M2" selected>' in html


@pytest.mark.parametrize(
    ("values", "median_", "p95"),
    [
        ([], None, None),
        ([5], 5, 5),
        ([1, 3], 2, 3),
        (list(range(1, 21)), 10.5, 19),
        (list(range(1, 22)), 11, 20),
    ],
)
def test_median_and_nearest_rank_p95(
    values: list[int], median_: float | None, p95: int | None
) -> None:
    deltas = [timedelta(minutes=v) for v in values]
    assert median(deltas) == (None if median_ is None else timedelta(minutes=median_))
    assert percentile(deltas, 0.95) == (None if p95 is None else timedelta(minutes=p95))


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (None, "—"),
        (timedelta(seconds=40), "40 s"),
        (timedelta(minutes=4, seconds=59), "4 min"),
        (timedelta(hours=1), "1 h"),
        (timedelta(hours=1, minutes=5), "1 h 5 min"),
        (timedelta(days=2, hours=3, minutes=10), "2 d 3 h"),
    ],
)
def test_speed_is_shown_humanly(delta: timedelta | None, text: str) -> None:
    assert format_speed(delta) == text


# --- filters, search, sorting, pages --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ({"period": "M1"}, ["Mia", "Ethan", "Ava", "Noah", "Emma", "Liam", "Olivia"]),
        ({"period": "M1", "disposition": "voicemail_no_answer"}, ["Noah"]),
        ({"period": "M1", "disposition": "not_called"}, ["Ethan"]),
        ({"period": "M1", "disposition": "live_transfer"}, ["Olivia"]),
        ({"period": "M1", "source": "Zillow"}, ["Ethan", "Emma", "Olivia"]),
        ({"period": "M1", "q": "olivia"}, ["Olivia"]),
        ({"period": "M1", "q": "LIAM T"}, ["Liam"]),
        # Phones match whatever their formatting, stored or typed.
        ({"period": "M1", "q": "9175550104"}, ["Noah"]),
        ({"period": "M1", "q": "+1 (917) 555-0101"}, ["Olivia"]),
        ({"period": "M1", "q": "415-555"}, ["Liam"]),
        ({"period": "M1", "q": "%"}, []),
        ({"period": "M1", "from": "2025-02-04", "to": "2025-02-06"}, ["Noah", "Emma", "Liam"]),
        ({"period": "dates", "from": "2025-02-27", "to": "2025-03-31"}, ["Mia"]),
        ({"period": "dates", "to": "2025-02-03"}, ["Olivia"]),
        ({"period": "M7"}, []),
        (
            {"period": "M1", "sort": "first_attempt"},
            ["Olivia", "Liam", "Emma", "Noah", "Ava", "Mia", "Ethan"],
        ),
        (
            {"period": "M1", "sort": "-first_attempt"},
            ["Mia", "Ava", "Noah", "Emma", "Liam", "Olivia", "Ethan"],
        ),
        (
            {"period": "M1", "sort": "received"},
            ["Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Mia"],
        ),
    ],
)
def test_filters_search_and_sorting(
    logged_in: FlaskClient, example: Example, args: dict[str, str], names: list[str]
) -> None:
    response = logged_in.get(_url(example, **args))
    assert response.status_code == 200
    assert _row_ids(response.get_data(as_text=True)) == example.ids(*names)


def test_dates_instead_of_a_period_count_the_leads_received_on_those_days(
    example: Example,
) -> None:
    filters = ReportFilters(received_from=date(2025, 2, 5), received_to=date(2025, 2, 9))
    with tenant_context(example.account.id):
        report = call_report(example.seat, filters, NEW_YORK)
    # Emma, Noah, Ava and Ethan; the first three were called.
    assert (report.kpis.leads_received, report.kpis.leads_called) == (4, 3)
    assert report.kpis.open_leads == 2  # Noah and Ethan
    assert report.title == "Received Feb 5 – Feb 9, 2025"


def test_the_filter_form_gets_the_region_alone_for_htmx(
    logged_in: FlaskClient, example: Example
) -> None:
    full = logged_in.get(_url(example, period="M1"))
    partial = logged_in.get(_url(example, period="M1"), headers={"HX-Request": "true"})
    html = partial.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="call-report"')
    assert "<html" not in html
    assert 'id="report-filters"' not in html  # the form stays put while the region swaps
    assert "HX-Request" in partial.headers["Vary"]
    assert "HX-Request" in full.headers["Vary"]
    assert _row_ids(html) == _row_ids(full.get_data(as_text=True))


def test_pages_of_fifty(logged_in: FlaskClient, account: Account) -> None:
    _seat_a, seat = _seats(account)
    for n in range(PAGE_SIZE + 5):
        record_lead(
            seat, f"P-{n}", f"Lead {n:02d}", "", "", "Zillow", at(2, 1, 9) + timedelta(minutes=n)
        )
    base = f"/a/{account.slug}/seats/{seat.id}"

    pages = [
        logged_in.get(f"{base}/calls?period=M1&page={n}").get_data(as_text=True) for n in (1, 2, 3)
    ]
    first, second, past_the_end = (_row_ids(html) for html in pages)

    assert (len(first), len(second)) == (PAGE_SIZE, 5)
    assert past_the_end == second  # a page past the end shows the last page
    assert "Showing 51–55 of 55 leads" in pages[1]
    assert "Page 2 of 2" in pages[1]
    csv_rows = _csv_rows(logged_in.get(f"{base}/calls.csv?period=M1").data)
    with tenant_context(account.id):
        by_id = {lead.id: lead.external_id for lead in db.session.scalars(sa.select(Lead))}
    assert [row["Lead reference"] for row in csv_rows] == [by_id[i] for i in first + second]


# --- CSV ------------------------------------------------------------------------------------------


def test_the_csv_holds_exactly_the_pages_rows(logged_in: FlaskClient, example: Example) -> None:
    args = {"period": "M1", "source": "Zillow", "sort": "first_attempt"}
    page = logged_in.get(_url(example, **args)).get_data(as_text=True)
    response = logged_in.get(_url(example, "calls.csv", **args))

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert f"calls-{example.seat.reference}-M1.csv" in response.headers["Content-Disposition"]
    rows = _csv_rows(response.data)
    names = {lead.id: lead.name for lead in example.leads.values()}
    assert [row["Lead"] for row in rows] == [names[i] for i in _row_ids(page)]
    olivia = rows[0]
    assert olivia == {
        "Lead": "Olivia Test",
        "Phone": "(917) 555-0101",
        "Email": "olivia@ex.example",
        "Source": "Zillow",
        "Received (America/New_York)": "2025-02-03 09:00",
        "First attempt (America/New_York)": "2025-02-03 09:04",
        "Speed to lead (minutes)": "4.0",
        "Attempts": "2",
        "Last disposition": "Live Transfer",
        "Month key": "M1",
        "Status": "Closed",
        "Lead reference": "X-Olivia",
    }
    assert rows[-1]["Last disposition"] == "Not called"  # Ethan, never called, sorts last
    assert rows[-1]["First attempt (America/New_York)"] == ""


def test_the_csv_neutralises_cells_a_spreadsheet_would_run(
    logged_in: FlaskClient, example: Example
) -> None:
    evil = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tTab"]
    for n, name in enumerate(evil):
        record_lead(example.seat, f"E-{n}", name, "", "", "=cmd|'/c calc'!A0", at(2, 12, 9, n))
    rows = _csv_rows(logged_in.get(_url(example, "calls.csv", period="M1", sort="received")).data)
    planted = [row for row in rows if row["Lead reference"].startswith("E-")]
    assert [row["Lead"] for row in planted] == [f"'{name}" for name in evil]
    assert {row["Source"] for row in planted} == {"'=cmd|'/c calc'!A0"}
    assert spreadsheet_safe("Plain") == "Plain"


def test_an_empty_report_says_what_to_do(logged_in: FlaskClient, example: Example) -> None:
    html = logged_in.get(_url(example, period="M1", q="nobody")).get_data(as_text=True)
    assert "No leads match these filters" in html
    assert "Clear filters" in html
    assert "Export CSV" not in html
    fresh = factories.make_seat(example.account)
    html = logged_in.get(f"/a/{example.account.slug}/seats/{fresh.id}/calls").get_data(as_text=True)
    assert "No leads for this seat yet" in html


# --- the lead page --------------------------------------------------------------------------------


def test_the_lead_page_shows_the_timeline_with_the_late_attempt(
    logged_in: FlaskClient, example: Example
) -> None:
    response = logged_in.get(_url(example, f"leads/{example.leads['Noah'].id}"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Noah Test" in text
    assert "(917) 555-0104 · Facebook" in text
    times = re.findall(r'<time datetime="([^"]+)"', html.split('id="timeline-title"')[1])
    assert times == ["2025-02-06T14:00:00-05:00", "2025-02-28T10:00:00-05:00"]
    assert text.count("Voicemail / No Answer") == 3  # last disposition + two attempts
    assert "Late arrived after its own period closed" in text


def test_a_lead_never_called_says_so(logged_in: FlaskClient, example: Example) -> None:
    html = logged_in.get(_url(example, f"leads/{example.leads['Ethan'].id}")).get_data(as_text=True)
    assert "Not called yet" in html
    assert "The ISA team has not called this lead yet" in html


# --- who may see it -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin", "viewer"])
def test_account_roles_see_every_seat(
    request: pytest.FixtureRequest, client: FlaskClient, auth: Auth, example: Example, role: str
) -> None:
    auth.login(request.getfixturevalue(role))
    for seat in (example.seat, example.other_seat):
        base = f"/a/{example.account.slug}/seats/{seat.id}"
        assert client.get(f"{base}/calls").status_code == 200
        assert client.get(f"{base}/calls.csv").status_code == 200


def test_a_seat_member_sees_only_their_own_seat(
    client: FlaskClient, auth: Auth, seat_member: User, example: Example
) -> None:
    auth.login(seat_member)
    mine = f"/a/{example.account.slug}/seats/{example.seat.id}"
    theirs = f"/a/{example.account.slug}/seats/{example.other_seat.id}"
    olivia = example.leads["Olivia"].id
    assert client.get(f"{mine}/calls").status_code == 200
    assert client.get(f"{mine}/calls.csv").status_code == 200
    assert client.get(f"{mine}/leads/{olivia}").status_code == 200
    for url in (f"{theirs}/calls", f"{theirs}/calls.csv", f"{theirs}/leads/{olivia}"):
        assert client.get(url).status_code == 404, url


def test_a_lead_is_only_found_under_its_own_seat(logged_in: FlaskClient, example: Example) -> None:
    olivia = example.leads["Olivia"].id
    other = f"/a/{example.account.slug}/seats/{example.other_seat.id}/leads/{olivia}"
    assert logged_in.get(other).status_code == 404


def test_another_accounts_seat_and_lead_are_404(
    logged_in: FlaskClient, example: Example, other_account: Account
) -> None:
    [their_seat, *_] = _seats(other_account)
    their_lead, _ = record_lead(their_seat, "T-1", "Theirs", "", "", "", at(2, 3, 9))
    mine = example.account.slug
    for url in (
        f"/a/{mine}/seats/{their_seat.id}/calls",
        f"/a/{mine}/seats/{their_seat.id}/calls.csv",
        f"/a/{mine}/seats/{their_seat.id}/leads/{their_lead.id}",
        f"/a/{mine}/seats/{example.seat.id}/leads/{their_lead.id}",
        f"/a/{other_account.slug}/seats/{their_seat.id}/calls",
    ):
        assert logged_in.get(url).status_code == 404, url


def test_a_seat_member_of_another_account_role_is_not_enough(
    client: FlaskClient, auth: Auth, example: Example, other_account: Account
) -> None:
    # A seat member of the other account whose seat id happens to be asked for here.
    [their_seat, *_] = _seats(other_account)
    stranger = factories.member(other_account, Role.SEAT_MEMBER, seat_id=their_seat.id)
    auth.login(stranger)
    assert client.get(f"/a/{example.account.slug}/seats/{their_seat.id}/calls").status_code == 404
