"""`flask seed-demo`: the demo catalogue, three client accounts and three months of call data.

Deterministic (one seeded random generator) and idempotent (a second run finds the catalogue and
stops). Accounts, seats and subscriptions go through the real operations. The call data is
bulk-inserted raw, month by month, its counters rebuilt by `recompute_counters`, and each past
month is closed by the real period close, so the invoices are the ones production would issue.
"""

from __future__ import annotations

import calendar
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa

from app import billing
from app.auth.passwords import hash_password
from app.billing_portal.closing import close_periods
from app.calls.operations import recompute_counters
from app.extensions import db
from app.models import (
    Account,
    AccountKind,
    BillingPeriod,
    CallAttempt,
    Disposition,
    Invoice,
    Lead,
    Membership,
    Plan,
    Profession,
    Role,
    Seat,
    SeatUsage,
    User,
    utcnow,
)
from app.onboarding.operations import create_account
from app.seats.operations import PersonDetails, SeatDetails, create_seat
from app.settings import get_setting
from app.tenancy import tenant_context

DEMO_PASSWORD = "demo-password-1"  # noqa: S105 - the documented demo login
RANDOM_SEED = 351253169
MONTHS = 3  # M1 and M2 in the past and closed, M3 open and about half used

# Code, name, monthly allowance, cost per lead (cents): bigger plans, strictly lower CPL.
CATALOGUE = (
    ("STARTER-25", "Starter 25", 25, 1400),
    ("GROWTH-50", "Growth 50", 50, 1300),
    ("PRO-100", "Pro 100", 100, 1200),
    ("TEAM-200", "Team 200", 200, 1100),
    ("BROKERAGE-400", "Brokerage 400", 400, 1000),
    ("SCALE-800", "Scale 800", 800, 900),
)


@dataclass(frozen=True)
class DemoClient:
    """A group of seats with one client label, onboarded `joins_on_day` days after signup
    (0: at signup, fees on the signup invoice; later: fees on that period's closing invoice)."""

    label: str
    seats: int
    backups: int = 0
    profession: Profession = Profession.AGENT
    joins_on_day: int = 0
    domain: str = ""


@dataclass(frozen=True)
class DemoAccount:
    slug: str
    name: str
    kind: AccountKind
    timezone: str
    plan_code: str
    owner: tuple[str, str]
    clients: tuple[DemoClient, ...]
    # Leads received in a whole month at each month's pace (M3 gets the share it has lived).
    monthly_leads: tuple[int, int, int]
    area_code: str
    members: tuple[tuple[str, str, Role], ...] = ()


DEMO_ACCOUNTS = (
    DemoAccount(
        slug="brightpath",
        name="BrightPath Marketing",
        kind=AccountKind.AGENCY,
        timezone="America/New_York",
        plan_code="BROKERAGE-400",
        owner=("owner@brightpath.example", "Morgan Ellis"),
        members=(
            ("admin@brightpath.example", "Priya Raman", Role.ADMIN),
            ("viewer@brightpath.example", "Chris Doyle", Role.VIEWER),
            ("agent@brightpath.example", "Jordan Reyes", Role.SEAT_MEMBER),
        ),
        clients=(
            DemoClient("Summit Home Team", 6, backups=3),
            DemoClient("Coastal Keys Realty", 5, backups=2),
            DemoClient("Maple & Main Group", 5, backups=1),
            DemoClient("Northstar Mortgage", 5, backups=1, profession=Profession.LOAN_OFFICER),
            DemoClient("The Alvarez Team", 4, backups=2),
            DemoClient("Lakeside Living Realty", 6, backups=3),
            DemoClient("Riverbend Properties", 4, backups=2, joins_on_day=12),
            DemoClient(
                "Keystone Home Loans",
                5,
                profession=Profession.LOAN_OFFICER,
                joins_on_day=38,
            ),
        ),
        # Over its 400 leads in M2 only.
        monthly_leads=(360, 475, 420),
        area_code="917",
    ),
    DemoAccount(
        slug="harbor",
        name="Harbor Realty Group",
        kind=AccountKind.BROKERAGE,
        timezone="America/Los_Angeles",
        plan_code="TEAM-200",
        owner=("owner@harbor.example", "Elena Park"),
        clients=(
            DemoClient("", 10, backups=3, domain="harborrealty.example"),
            DemoClient("", 2, joins_on_day=45, domain="harborrealty.example"),
        ),
        monthly_leads=(150, 165, 170),
        area_code="415",
    ),
    DemoAccount(
        slug="dana",
        name="Dana Whitfield Lending",
        kind=AccountKind.SOLO,
        timezone="America/Chicago",
        plan_code="STARTER-25",
        owner=("dana@solo.example", "Dana Whitfield"),
        clients=(DemoClient("", 1, profession=Profession.LOAN_OFFICER, domain="solo.example"),),
        monthly_leads=(17, 21, 20),
        area_code="312",
    ),
)

FIRST_NAMES = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Ethan",
    "Sophia",
    "Mason",
    "Isabella",
    "Lucas",
    "Mia",
    "Logan",
    "Amelia",
    "James",
    "Harper",
    "Elijah",
    "Evelyn",
    "Benjamin",
    "Abigail",
    "Jacob",
    "Emily",
    "Michael",
    "Ella",
    "Daniel",
    "Grace",
    "Henry",
    "Chloe",
    "Jackson",
    "Victoria",
    "Sebastian",
    "Aria",
    "Mateo",
    "Zoe",
    "Owen",
    "Nora",
    "Wyatt",
    "Riley",
    "Carter",
    "Layla",
    "Julian",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
]
ISA_AGENTS = ("Maya Chen", "Luis Ortega", "Tessa Moreno", "Sam Okafor", "Nina Patel", "Ben Carter")
LEAD_SOURCES = {
    Profession.AGENT: (
        ("Zillow", 30),
        ("Realtor.com", 20),
        ("Facebook", 18),
        ("Website", 14),
        ("Referral", 8),
        ("Open House", 5),
        ("Google Ads", 5),
    ),
    Profession.LOAN_OFFICER: (
        ("Zillow Home Loans", 25),
        ("LendingTree", 25),
        ("Facebook", 18),
        ("Website", 17),
        ("Referral", 10),
        ("Realtor partner", 5),
    ),
}
# How a lead ends up: None = never reached (only voicemails).
OUTCOMES: tuple[tuple[Disposition | None, int], ...] = (
    (None, 54),
    (Disposition.CALLBACK_LATER, 14),
    (Disposition.NOT_INTERESTED_DNC, 9),
    (Disposition.LIVE_TRANSFER, 9),
    (Disposition.BOOKED_APPOINTMENT, 8),
    (Disposition.BAD_DATA_DNC, 6),
)
DURATIONS = {  # seconds, low and high
    Disposition.VOICEMAIL_NO_ANSWER: (8, 45),
    Disposition.CALLBACK_LATER: (45, 240),
    Disposition.NOT_INTERESTED_DNC: (20, 120),
    Disposition.LIVE_TRANSFER: (180, 900),
    Disposition.BOOKED_APPOINTMENT: (240, 720),
    Disposition.BAD_DATA_DNC: (3, 25),
}
NOTES = {
    Disposition.CALLBACK_LATER: (
        "Asked for a call back after 5pm",
        "Driving, call back tomorrow",
        "Wants to talk once the spouse is home",
    ),
    Disposition.NOT_INTERESTED_DNC: (
        "Already working with an agent",
        "Just browsing, asked not to be called",
        "Not moving after all",
    ),
    Disposition.BAD_DATA_DNC: ("Number disconnected", "Wrong number", "Fake name and number"),
    Disposition.BOOKED_APPOINTMENT: (
        "Showing booked for Saturday morning",
        "Consultation booked for Tuesday 6pm",
        "Listing appointment booked",
    ),
}
# Relative chance of a lead arriving at each local hour (web forms fill in the evening too).
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 20, 19, 19, 18, 18, 17, 16, 14, 13, 12, 9, 5, 2)
CALLING_HOURS = (8, 20)  # local time the ISA team dials


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Load the demo catalogue, accounts and three months of calls (once)."""
    if db.session.scalar(sa.select(Plan.id).where(Plan.code == CATALOGUE[0][0])) is not None:
        click.echo("demo data already loaded")
        return
    for line in load_demo(utcnow()):
        click.echo(line)


def load_demo(now: datetime) -> list[str]:
    """Create and commit the demo data as of `now`; returns a short summary, one line each.

    Raises `click.ClickException` if a period close fails.
    """
    rng = random.Random(RANDOM_SEED)  # noqa: S311 - demo data, reproducible on purpose
    plans = _create_catalogue()
    password_hash = hash_password(DEMO_PASSWORD)
    db.session.add(
        User(
            email="ops@seatwise.example",
            name="Seatwise Operations",
            password_hash=password_hash,
            is_operator=True,
        )
    )
    start = _demo_start(now)
    demos = [_create_account(spec, plans, start, password_hash, now, rng) for spec in DEMO_ACCOUNTS]
    for index in range(1, MONTHS + 1):
        for demo in demos:
            _load_month(demo, index, now, rng)
        db.session.commit()
        if index < MONTHS:
            _close_month(demos, index)
    for demo in demos:
        _note_last_leads(demo)
    db.session.commit()
    return _summary(demos)


def _create_catalogue() -> dict[str, Plan]:
    terms = [billing.PlanTerms(code, name, n, n * cpl, cpl) for code, name, n, cpl in CATALOGUE]
    problems = billing.validate_catalogue(terms)
    if problems:
        raise click.ClickException("; ".join(problems))
    plans = {
        t.code: Plan(
            code=t.code,
            name=t.name,
            allowance=t.allowance,
            price_cents=t.price_cents,
            cpl_cents=t.cpl_cents,
        )
        for t in terms
    }
    db.session.add_all(plans.values())
    db.session.flush()
    return plans


def _demo_start(now: datetime) -> date:
    """Two months and about a fortnight ago, so M1 and M2 are past and M3 is half used."""
    today = now.date()
    year, month_zero = divmod(today.year * 12 + today.month - 1 - (MONTHS - 1), 12)
    last_day = calendar.monthrange(year, month_zero + 1)[1]
    return date(year, month_zero + 1, min(today.day, last_day)) - timedelta(days=15)


@dataclass
class _DemoSeat:
    id: int
    joined_at: datetime
    weight: float
    idle_from: datetime | None  # an idle seat sends no leads after this moment
    primary_first_name: str
    profession: Profession


@dataclass
class _DemoLead:
    seat: _DemoSeat
    row: dict[str, Any]
    attempts: list[dict[str, Any]]
    attempt_months: list[int]
    id: int | None = None

    @property
    def first_month(self) -> int | None:
        return self.attempt_months[0] if self.attempt_months else None


@dataclass
class _Demo:
    spec: DemoAccount
    account_id: int
    anchor: date
    zone: ZoneInfo
    seats: list[_DemoSeat] = field(default_factory=list)
    leads: list[_DemoLead] = field(default_factory=list)
    lead_numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def period(self, index: int) -> billing.Period:
        return billing.period_bounds(self.anchor, index, self.spec.timezone)

    def month_of(self, moment: datetime) -> int:
        return billing.period_index_at(self.anchor, self.spec.timezone, moment)

    def joined_at(self, client: DemoClient) -> datetime:
        """When a client's seats were onboarded: mid-morning, `joins_on_day` days in."""
        return self.period(1).starts_at + timedelta(days=client.joins_on_day, hours=10)


def _create_account(
    spec: DemoAccount,
    plans: dict[str, Plan],
    start: date,
    password_hash: str,
    now: datetime,
    rng: random.Random,
) -> _Demo:
    owner_email, owner_name = spec.owner
    db.session.add(User(email=owner_email, name=owner_name, password_hash=password_hash))
    db.session.flush()
    signup = [client for client in spec.clients if client.joins_on_day == 0]
    new = create_account(
        name=spec.name,
        kind=spec.kind,
        plan=plans[spec.plan_code],
        owner_email=owner_email,
        owner_name=owner_name,
        timezone=spec.timezone,
        start=start,
        seats=tuple(details for client in signup for details in _seat_forms(spec, client, rng)),
    )
    account = new.account
    # The demo's URLs read better with a short slug than with the one derived from the name.
    account.slug = spec.slug
    demo = _Demo(spec, account.id, start, ZoneInfo(spec.timezone))
    account.created_at = demo.period(1).starts_at
    with tenant_context(account.id):
        seats = list(db.session.scalars(sa.select(Seat).order_by(Seat.id)))
        _adopt_seats(demo, seats, demo.joined_at(signup[0]), now, rng)
        for email, name, role in spec.members:
            user = User(email=email, name=name, password_hash=password_hash)
            db.session.add(user)
            db.session.flush()
            seat_id = seats[0].id if role is Role.SEAT_MEMBER else None
            db.session.add(
                Membership(account_id=account.id, user_id=user.id, role=role, seat_id=seat_id)
            )
        db.session.flush()
    return demo


def _seat_forms(spec: DemoAccount, client: DemoClient, rng: random.Random) -> list[SeatDetails]:
    domain = client.domain or "".join(ch for ch in client.label.lower() if ch.isalnum())
    domain = domain if domain.endswith(".example") else f"{domain}.example"

    def person(primary_name: str | None = None) -> PersonDetails:
        name = primary_name or f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        return PersonDetails(
            name=name,
            email=f"{name.lower().replace(' ', '.')}@{domain}",
            mobile=_phone(spec.area_code, rng),
            profession=client.profession,
            licence=f"{'NMLS' if client.profession is Profession.LOAN_OFFICER else 'RE'}-"
            f"{rng.randint(100000, 999999)}",
        )

    solo_name = spec.owner[1] if spec.kind is AccountKind.SOLO else None
    return [
        SeatDetails(
            primary=person(solo_name),
            backup=person() if n < client.backups else None,
            client_label=client.label,
            onboarding={"source": "demo seed", "markets": client.label or spec.name},
        )
        for n in range(client.seats)
    ]


def _adopt_seats(
    demo: _Demo, seats: list[Seat], joined_at: datetime, now: datetime, rng: random.Random
) -> None:
    """Date the new seats and give each its pace; about one in six goes idle a while ago."""
    for seat in seats:
        seat.created_at = joined_at
        idle = demo.spec.kind is not AccountKind.SOLO and rng.random() < 0.17
        demo.seats.append(
            _DemoSeat(
                id=seat.id,
                joined_at=joined_at,
                weight=rng.uniform(0.4, 1.8),
                idle_from=now - timedelta(days=rng.uniform(14, 30)) if idle else None,
                primary_first_name=seat.primary.name.split()[0],
                profession=seat.primary.profession,
            )
        )


def _load_month(demo: _Demo, index: int, now: datetime, rng: random.Random) -> None:
    """Onboard the seats joining in month `index`, generate its leads, and store the leads and
    attempts that belong to it (a lead belongs to the month of its first attempt)."""
    period = demo.period(index)
    with tenant_context(demo.account_id):
        account = db.session.get_one(Account, demo.account_id)
        for client in demo.spec.clients:
            joined_at = demo.joined_at(client)
            if client.joins_on_day and period.contains(joined_at):
                seats = [
                    create_seat(account, details) for details in _seat_forms(demo.spec, client, rng)
                ]
                _adopt_seats(demo, seats, joined_at, now, rng)
        lived = (min(now, period.ends_at) - period.starts_at) / (period.ends_at - period.starts_at)
        count = round(demo.spec.monthly_leads[index - 1] * lived)
        demo.leads += [_generate_lead(demo, period, now, rng) for _ in range(count)]
        period_ids = dict(
            db.session.execute(sa.select(BillingPeriod.month_index, BillingPeriod.id)).all()
        )
        _insert_leads(demo, index, period_ids)
        attempts = [
            {**attempt, "lead_id": lead.id, "period_id": period_ids[month]}
            for lead in demo.leads
            for attempt, month in zip(lead.attempts, lead.attempt_months, strict=True)
            if month == index
        ]
        if attempts:
            db.session.execute(sa.insert(CallAttempt), attempts)
    recompute_counters(demo.account_id)


def _insert_leads(demo: _Demo, index: int, period_ids: dict[int, int]) -> None:
    due = [
        lead
        for lead in demo.leads
        if lead.id is None and (lead.first_month or demo.month_of(lead.row["received_at"])) == index
    ]
    if not due:
        return
    rows = [
        {**lead.row, "billed_period_id": period_ids[lead.first_month] if lead.first_month else None}
        for lead in due
    ]
    ids = db.session.scalars(
        sa.insert(Lead).returning(Lead.id, sort_by_parameter_order=True), rows
    ).all()
    for lead, lead_id in zip(due, ids, strict=True):
        lead.id = lead_id


def _generate_lead(
    demo: _Demo, period: billing.Period, now: datetime, rng: random.Random
) -> _DemoLead:
    seat, received_at = _seat_and_moment(demo, period, now, rng)
    number = next(demo.lead_numbers)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    sources = LEAD_SOURCES[seat.profession]
    attempts = list(_attempts(demo, seat, number, received_at, now, rng))
    dispositions = [attempt["disposition"] for attempt in attempts]
    row = {
        "account_id": demo.account_id,
        "seat_id": seat.id,
        "external_id": f"DEMO-{number:06d}",
        "name": f"{first} {last}",
        "phone": _phone(demo.spec.area_code, rng),
        "email": f"{first}.{last}{rng.randint(1, 99)}@example.com".lower(),
        "source": rng.choices([s for s, _ in sources], [w for _, w in sources])[0],
        "received_at": received_at,
        "first_attempt_at": attempts[0]["attempted_at"] if attempts else None,
        "last_attempt_at": attempts[-1]["attempted_at"] if attempts else None,
        "last_disposition": dispositions[-1] if dispositions else None,
        "attempts_count": len(attempts),
        "contacted": any(d.contacted for d in dispositions),
        "closed": any(d.closes_lead for d in dispositions),
    }
    months = [demo.month_of(attempt["attempted_at"]) for attempt in attempts]
    return _DemoLead(seat, row, attempts, months)


def _seat_and_moment(
    demo: _Demo, period: billing.Period, now: datetime, rng: random.Random
) -> tuple[_DemoSeat, datetime]:
    """A seat, by its pace, and a moment in the period it was sending leads, at a likely hour."""
    spans = {
        seat.id: (
            max(period.starts_at, seat.joined_at),
            min(period.ends_at, now, seat.idle_from or now),
        )
        for seat in demo.seats
    }
    sending = [seat for seat in demo.seats if spans[seat.id][0] < spans[seat.id][1]]
    weights = [seat.weight for seat in sending]
    while True:
        seat = rng.choices(sending, weights)[0]
        start, end = spans[seat.id]
        moment = start + (end - start) * rng.random()
        local = moment.astimezone(demo.zone)
        weekend = 0.6 if local.weekday() >= 5 else 1.0
        if rng.random() * max(HOUR_WEIGHTS) < HOUR_WEIGHTS[local.hour] * weekend:
            return seat, moment


def _attempts(
    demo: _Demo,
    seat: _DemoSeat,
    number: int,
    received_at: datetime,
    now: datetime,
    rng: random.Random,
) -> Iterator[dict[str, Any]]:
    """The lead's call attempts up to `now`: voicemails until the outcome, if it is reached."""
    outcome = rng.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
    voicemail = Disposition.VOICEMAIL_NO_ANSWER
    if outcome is None:
        plan = [voicemail] * rng.choices(range(1, 7), [8, 12, 18, 20, 20, 22])[0]
    elif outcome is Disposition.BAD_DATA_DNC:
        plan = [outcome]
    else:
        reached_on = rng.choices(range(1, 6), [35, 25, 18, 12, 10])[0]
        plan = [voicemail] * (reached_on - 1) + [outcome]
        if outcome is Disposition.BOOKED_APPOINTMENT and reached_on > 1 and rng.random() < 0.4:
            plan[-2] = Disposition.CALLBACK_LATER
        if outcome is Disposition.CALLBACK_LATER and rng.random() < 0.5:
            plan += [voicemail] * rng.randint(1, 2)
    # Speed to lead: minutes in calling hours; otherwise the next morning.
    low, high = rng.choices([(1, 5), (5, 15), (15, 60), (60, 240)], [40, 30, 20, 10])[0]
    moment = received_at + timedelta(minutes=rng.uniform(low, high))
    for n, disposition in enumerate(plan, start=1):
        moment = _in_calling_hours(moment, demo.zone, rng)
        if moment > now:
            return
        low, high = DURATIONS[disposition]
        note = rng.choice(NOTES[disposition]) if disposition in NOTES else ""
        if disposition is Disposition.LIVE_TRANSFER:
            note = f"Warm transfer to {seat.primary_first_name}"
        yield {
            "account_id": demo.account_id,
            "event_id": f"demo-{demo.spec.slug}-{number:06d}-{n}",
            "seat_id": seat.id,
            "attempted_at": moment,
            "disposition": disposition,
            "duration_seconds": rng.randint(low, high),
            "isa_agent": rng.choice(ISA_AGENTS),
            "notes": note,
            "late": False,
        }
        gap_hours = rng.choices([(0.5, 2), (2, 6), (18, 30), (40, 60)], [25, 30, 30, 15])[0]
        moment += timedelta(hours=rng.uniform(*gap_hours))


def _in_calling_hours(moment: datetime, zone: ZoneInfo, rng: random.Random) -> datetime:
    """`moment`, or when the ISA team is off then, a time in its first hour and a half back."""
    local = moment.astimezone(zone)
    opens, closes = CALLING_HOURS
    if opens <= local.hour < closes:
        return moment
    day = local.date() + timedelta(days=1 if local.hour >= closes else 0)
    start = datetime.combine(day, time(opens), zone)
    return (start + timedelta(minutes=rng.uniform(0, 90))).astimezone(UTC)


def _phone(area_code: str, rng: random.Random) -> str:
    # 555-0100 to 555-0199 are reserved for fiction.
    return f"({area_code}) 555-01{rng.randint(0, 99):02d}"


def _close_month(demos: list[_Demo], index: int) -> None:
    """Close month `index` of every demo account the real way, as the scheduled run would just
    after the period's end and the grace window for late call data."""
    grace = timedelta(minutes=int(get_setting("close_grace_minutes")) + 1)
    ends = [demo.period(index).ends_at for demo in demos]
    period_ids = []
    for demo in demos:
        with tenant_context(demo.account_id):
            period_ids.append(
                db.session.scalars(
                    sa.select(BillingPeriod.id).where(BillingPeriod.month_index == index)
                ).one()
            )
    result = close_periods(period_ids, max(ends) + grace, trigger="seed")
    if result.failures:
        raise click.ClickException(f"closing M{index} failed: {result.failures}")


def _note_last_leads(demo: _Demo) -> None:
    last: dict[int, datetime] = {}
    for lead in demo.leads:
        seat_id, received_at = lead.seat.id, lead.row["received_at"]
        last[seat_id] = max(received_at, last.get(seat_id, received_at))
    with tenant_context(demo.account_id):
        for seat in db.session.scalars(sa.select(Seat).where(Seat.id.in_(list(last)))):
            seat.last_lead_at = last[seat.id]
        db.session.flush()


def _summary(demos: list[_Demo]) -> list[str]:
    lines, totals = [], {"seats": 0, "leads": 0, "attempts": 0, "invoices": 0}
    for demo in demos:
        with tenant_context(demo.account_id):
            counts = {
                name: db.session.scalar(sa.select(sa.func.count(model.id))) or 0
                for name, model in (
                    ("seats", Seat),
                    ("leads", Lead),
                    ("attempts", CallAttempt),
                    ("invoices", Invoice),
                )
            }
            used = dict(
                db.session.execute(
                    sa.select(BillingPeriod.month_index, sa.func.sum(SeatUsage.leads_called))
                    .join(SeatUsage, SeatUsage.period_id == BillingPeriod.id)
                    .group_by(BillingPeriod.month_index)
                ).all()
            )
            allowance = db.session.scalars(
                sa.select(BillingPeriod.allowance).order_by(BillingPeriod.month_index)
            ).first()
        for name, count in counts.items():
            totals[name] += count
        months = ", ".join(f"M{i} {used.get(i, 0)}" for i in range(1, MONTHS + 1))
        seats = billing.format_count(counts["seats"], "seat")
        lines.append(
            f"{demo.spec.name} ({demo.spec.slug}): {seats}, leads called {months} "
            f"of {allowance} a month"
        )
    lines.append(
        f"Demo data loaded: {len(demos)} accounts, {totals['seats']} seats, {totals['leads']} "
        f"leads, {totals['attempts']} call attempts, {totals['invoices']} invoices. "
        f"Password for every demo user: {DEMO_PASSWORD}"
    )
    return lines
