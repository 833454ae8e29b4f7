"""Reads of seats, always within the current tenant."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app import billing
from app.extensions import db
from app.models import (
    Account,
    AccountKind,
    BillingPeriod,
    Person,
    Seat,
    SeatStatus,
    SeatUsage,
    utcnow,
)
from app.models.seats import ACTIVE_WINDOW

SEATS_PER_PAGE = 50


class SeatState(enum.StrEnum):
    """What a seat's row says about it. Active and idle seats are both worked (DESIGN §1);
    a deactivated seat stays on the plan but its leads are not called."""

    ACTIVE = "active"
    IDLE = "idle"
    DEACTIVATED = "deactivated"
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def badge(self) -> str:
        """The badge kind that shows it (macros/ui.html)."""
        return {
            "active": "success",
            "idle": "neutral",
            "deactivated": "warning",
            "expired": "danger",
        }[self.value]

    @property
    def hint(self) -> str:
        return {
            "active": "Leads in the last 14 days",
            "idle": "No leads in 14 days",
            "deactivated": "Leads not called",
            "expired": "The plan ended",
        }[self.value]

    @property
    def explanation(self) -> str:
        return {
            "active": "Sent leads in the last 14 days; the ISA team works them.",
            "idle": "No leads in the last 14 days, or none yet; new leads are worked as they come.",
            "deactivated": "On the plan, but the ISA team does not call its leads; no call is "
            "counted until it is reactivated.",
            "expired": "The account's plan ended; the seat is no longer valid.",
        }[self.value]


def seat_state(seat: Seat, now: datetime | None = None) -> SeatState:
    if seat.status is SeatStatus.EXPIRED:
        return SeatState.EXPIRED
    if seat.deactivated_at is not None:
        return SeatState.DEACTIVATED
    cutoff = (now or utcnow()) - ACTIVE_WINDOW
    if seat.last_lead_at is not None and seat.last_lead_at >= cutoff:
        return SeatState.ACTIVE
    return SeatState.IDLE


def _state_clause(state: SeatState, now: datetime) -> sa.ColumnElement[bool]:
    valid = Seat.status == SeatStatus.VALID
    worked = sa.and_(valid, Seat.deactivated_at.is_(None))
    recent = Seat.last_lead_at >= now - ACTIVE_WINDOW
    return {
        SeatState.ACTIVE: sa.and_(worked, recent),
        SeatState.IDLE: sa.and_(worked, sa.or_(Seat.last_lead_at.is_(None), sa.not_(recent))),
        SeatState.DEACTIVATED: sa.and_(valid, Seat.deactivated_at.is_not(None)),
        SeatState.EXPIRED: Seat.status == SeatStatus.EXPIRED,
    }[state]


class SeatSort(enum.StrEnum):
    CLIENT = "client"
    PRIMARY = "primary"
    LEADS = "leads"
    ADDED = "added"


@dataclass(frozen=True)
class SeatFilters:
    """The seat list's search, filters, order and page, as the query string carries them."""

    q: str = ""
    client: str = ""
    state: SeatState | None = None
    sort: SeatSort = SeatSort.CLIENT
    descending: bool = False
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> SeatFilters:
        """Read filters from request args; anything unknown falls back to its default."""
        sort_arg = args.get("sort", "")
        sort = sort_arg.removeprefix("-")
        page = args.get("page", "1")
        return cls(
            q=args.get("q", "").strip()[:100],
            client=args.get("client", "").strip()[:200],
            state=SeatState(args["status"]) if args.get("status") in set(SeatState) else None,
            sort=SeatSort(sort) if sort in set(SeatSort) else SeatSort.CLIENT,
            descending=sort_arg.startswith("-") and sort in set(SeatSort),
            page=max(1, int(page)) if page.isdigit() else 1,
        )

    @property
    def is_filtered(self) -> bool:
        return bool(self.q or self.client or self.state)

    def query_args(self, **changes: Any) -> dict[str, Any]:
        """URL arguments for these filters with `changes`, defaults left out. Changing
        anything but the page starts again at page 1."""
        if "page" not in changes:
            changes["page"] = 1
        chosen = replace(self, **changes)
        args: dict[str, Any] = {
            "q": chosen.q,
            "client": chosen.client,
            "status": chosen.state.value if chosen.state else "",
            "sort": ("-" if chosen.descending else "") + chosen.sort.value
            if (chosen.sort, chosen.descending) != (SeatSort.CLIENT, False)
            else "",
            "page": chosen.page if chosen.page > 1 else "",
        }
        return {key: value for key, value in args.items() if value}

    def sort_args(self, sort: SeatSort) -> dict[str, Any]:
        """URL arguments of a column header: sorts by it, or flips its direction. Numbers
        and dates start with the biggest / newest first."""
        if sort is self.sort:
            return self.query_args(descending=not self.descending)
        return self.query_args(sort=sort, descending=sort in (SeatSort.LEADS, SeatSort.ADDED))

    def aria_sort(self, sort: SeatSort) -> str | None:
        if sort is not self.sort:
            return None
        return "descending" if self.descending else "ascending"


@dataclass(frozen=True)
class SeatRow:
    seat: Seat
    primary: Person
    backup: Person | None
    leads_called: int
    state: SeatState


@dataclass(frozen=True)
class SeatPage:
    rows: list[SeatRow]
    total: int
    page: int
    pages: int
    per_page: int


def seat_page(
    period_id: int | None,
    filters: SeatFilters,
    only_seat_id: int | None = None,
    per_page: int = SEATS_PER_PAGE,
) -> SeatPage:
    """One page of the seat list: seats with their people and leads called in `period_id`.

    Three statements whatever the number of seats (count, page, nothing per row).
    """
    now = utcnow()
    backup = aliased(Person)
    leads = sa.func.coalesce(SeatUsage.leads_called, 0)
    where: list[sa.ColumnElement[bool]] = []
    if only_seat_id is not None:
        where.append(Seat.id == only_seat_id)
    if filters.client:
        where.append(Seat.client_label == filters.client)
    if filters.state is not None:
        where.append(_state_clause(filters.state, now))
    if filters.q:
        needle = filters.q.lower()
        where.append(
            sa.or_(
                *(
                    sa.func.lower(column).contains(needle, autoescape=True)
                    for column in (
                        Person.name,
                        Person.email,
                        backup.name,
                        backup.email,
                        Seat.client_label,
                        Seat.reference,
                    )
                )
            )
        )
    people = (
        sa.select(Seat)
        .join(Person, Person.id == Seat.primary_person_id)
        .outerjoin(backup, backup.id == Seat.backup_person_id)
        .where(*where)
    )
    total = db.session.scalar(people.with_only_columns(sa.func.count(Seat.id))) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(filters.page, pages)
    order = {
        SeatSort.CLIENT: (Seat.client_label, sa.func.lower(Person.name)),
        SeatSort.PRIMARY: (sa.func.lower(Person.name), Seat.client_label),
        SeatSort.LEADS: (leads, Seat.client_label),
        SeatSort.ADDED: (Seat.created_at,),
    }[filters.sort]
    ordering = [column.desc() if filters.descending else column.asc() for column in order]
    statement = (
        people.with_only_columns(Seat, Person, backup, leads)
        .outerjoin(
            SeatUsage, sa.and_(SeatUsage.seat_id == Seat.id, SeatUsage.period_id == period_id)
        )
        .order_by(*ordering, Seat.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = [
        SeatRow(seat, primary, backup_person, int(called), seat_state(seat, now))
        for seat, primary, backup_person, called in db.session.execute(statement).all()
    ]
    return SeatPage(rows=rows, total=total, page=page, pages=pages, per_page=per_page)


def client_labels() -> list[str]:
    """The account's client labels, for the client filter."""
    return list(
        db.session.scalars(
            sa.select(Seat.client_label)
            .where(Seat.client_label != "")
            .distinct()
            .order_by(Seat.client_label)
        )
    )


def state_counts() -> dict[SeatState, int]:
    """How many seats are in each state."""
    now = utcnow()
    counted = sa.select(
        *(
            sa.func.coalesce(sa.func.sum(sa.case((_state_clause(state, now), 1), else_=0)), 0)
            for state in SeatState
        )
    ).select_from(Seat)
    row = db.session.execute(counted).one()
    return {state: int(count) for state, count in zip(SeatState, row, strict=True)}


def seat_count() -> int:
    """Seats of the current account, whatever their state (all of them stay on the plan)."""
    return db.session.scalar(sa.select(sa.func.count(Seat.id))) or 0


def can_add_seats(account: Account) -> bool:
    """A solo account has its one seat; brokerages and agencies add any number."""
    return account.kind is not AccountKind.SOLO or seat_count() == 0


@dataclass(frozen=True)
class SeatTotals:
    """A seat's counters in one period."""

    leads_received: int
    leads_called: int
    leads_contacted: int
    transfers: int
    appointments: int

    @property
    def contact_rate(self) -> float | None:
        return self.leads_contacted / self.leads_called if self.leads_called else None


def seat_totals(seat_id: int, period_id: int | None) -> SeatTotals:
    """The seat's counters in `period_id` (all zero when it has none yet)."""
    row = None
    if period_id is not None:
        row = db.session.execute(
            sa.select(
                SeatUsage.leads_received,
                SeatUsage.leads_called,
                SeatUsage.leads_contacted,
                SeatUsage.transfers,
                SeatUsage.appointments,
            ).where(SeatUsage.seat_id == seat_id, SeatUsage.period_id == period_id)
        ).one_or_none()
    return SeatTotals(*(int(value) for value in row)) if row else SeatTotals(0, 0, 0, 0, 0)


@dataclass(frozen=True)
class SeatFees:
    """Seat fees waiting for a period's closing invoice."""

    seats: list[Seat]
    total_cents: int


def pending_seat_fees(period_id: int) -> SeatFees:
    """The one-time fees of seats added in the period, billed when it closes."""
    seats = list(
        db.session.scalars(
            sa.select(Seat)
            .where(Seat.fee_period_id == period_id, Seat.fee_cents > 0)
            .order_by(Seat.created_at, Seat.id)
        )
    )
    return SeatFees(seats=seats, total_cents=sum(seat.fee_cents for seat in seats))


def seat_choices() -> list[tuple[int, str]]:
    """Every seat as (id, "Client · Primary (reference)"), for pickers."""
    rows = db.session.execute(
        sa.select(Seat.id, Seat.client_label, Person.name, Seat.reference)
        .join(Person, Person.id == Seat.primary_person_id)
        .order_by(Seat.client_label, Person.name, Seat.id)
    ).all()
    return [
        (seat_id, f"{label + ' · ' if label else ''}{name} ({reference})")
        for seat_id, label, name, reference in rows
    ]


@dataclass(frozen=True)
class FeePreview:
    """What adding a seat now costs, and on which invoice, shown before the form is sent."""

    fee_cents: int
    period_key: str
    first_day: date
    last_day: date


def seat_fee_preview(account: Account, period: BillingPeriod | None) -> FeePreview | None:
    """The one-time fee of a seat added now (the open period's snapshot) and the period whose
    closing invoice carries it; None when no fee applies (a solo account) or no period is open."""
    if period is None or not billing.seat_fee_applies(account.kind.value):
        return None
    zone = ZoneInfo(account.timezone)
    return FeePreview(
        fee_cents=period.seat_fee_cents,
        period_key=period.key,
        first_day=period.starts_at.astimezone(zone).date(),
        last_day=(period.ends_at.astimezone(zone) - timedelta(microseconds=1)).date(),
    )
