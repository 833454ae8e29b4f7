"""Monthly anniversary billing periods.

Period ``Mn`` starts at local midnight, in the account's time zone, on the anchor's day of the
month ``n - 1`` months after the anchor date, and ends (exclusive) where ``Mn+1`` starts. An anchor
on the 29th-31st falls on the last day of shorter months and returns to its day afterwards, so
every period is computed from the anchor, never from the previous period.
"""

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.billing.wording import format_day


def as_utc(moment: datetime) -> datetime:
    """Return ``moment`` converted to UTC; raise ``ValueError`` for a naive datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: billing needs tz-aware moments")
    return moment.astimezone(UTC)


def month_key(index: int) -> str:
    """The month key of period ``index``: ``1`` -> ``"M1"``; raise ``ValueError`` below 1."""
    _require_index(index)
    return f"M{index}"


def month_index(key: str) -> int | None:
    """The period index a month key names (``"M3"`` or ``"m3"`` -> ``3``), or None when
    ``key`` is not one."""
    if not key.upper().startswith("M") or not key[1:].isdigit():
        return None
    return int(key[1:])


@dataclass(frozen=True)
class Period:
    """One billing period: local dates in ``tz`` and the matching UTC instants.

    ``start_date``/``end_date`` are the local dates whose midnights bound the period;
    ``end_date`` is exclusive (it is the next period's ``start_date``), like ``ends_at``.
    """

    index: int
    tz: str
    start_date: date
    end_date: date
    starts_at: datetime
    ends_at: datetime

    @property
    def key(self) -> str:
        """The month key, ``"M1"``, ``"M2"``, ..."""
        return month_key(self.index)

    @property
    def last_day(self) -> date:
        """The period's last local day (inclusive), as printed on invoices."""
        return self.end_date - timedelta(days=1)

    @property
    def day_count(self) -> int:
        """Number of local calendar days in the period (28 to 31)."""
        return (self.end_date - self.start_date).days

    @property
    def label(self) -> str:
        """How invoices name the period: ``M2 (1 Mar 2026 - 31 Mar 2026)``, with an en dash."""
        return f"{self.key} ({format_day(self.start_date)} \N{EN DASH} {format_day(self.last_day)})"

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` (tz-aware) falls in ``[starts_at, ends_at)``."""
        return self.starts_at <= as_utc(moment) < self.ends_at

    def days_left(self, now: datetime) -> int:
        """Local calendar days left in the period, counting today.

        The last day gives 1, any moment from ``ends_at`` on gives 0, and a moment before the
        period starts gives ``day_count``.
        """
        today = as_utc(now).astimezone(ZoneInfo(self.tz)).date()
        return min(self.day_count, max(0, (self.end_date - today).days))


def period_bounds(anchor: date, index: int, tz: str) -> Period:
    """Return period ``index`` (1-based; M1 starts on ``anchor``) of a subscription in ``tz``.

    Raises ``ValueError`` for an index below 1 and ``zoneinfo.ZoneInfoNotFoundError`` for an
    unknown time zone.
    """
    _require_index(index)
    zone = ZoneInfo(tz)
    start_date = _start_date(anchor, index)
    end_date = _start_date(anchor, index + 1)
    return Period(
        index=index,
        tz=tz,
        start_date=start_date,
        end_date=end_date,
        starts_at=_local_midnight(start_date, zone),
        ends_at=_local_midnight(end_date, zone),
    )


def period_index_at(anchor: date, tz: str, moment: datetime) -> int:
    """Return the index of the period that ``moment`` (tz-aware) falls in.

    Raises ``ValueError`` for a naive moment or one before the first period starts.
    """
    moment_utc = as_utc(moment)
    if moment_utc < period_bounds(anchor, 1, tz).starts_at:
        raise ValueError(f"{moment_utc.isoformat()} is before the billing anchor {anchor}")
    local_day = moment_utc.astimezone(ZoneInfo(tz)).date()
    # Calendar months since the anchor give the index or its neighbour (the moment may sit before
    # the anchor's day in its month, or on a day a DST change makes ambiguous); step to the answer.
    index = max(1, (local_day.year - anchor.year) * 12 + local_day.month - anchor.month + 1)
    while moment_utc < period_bounds(anchor, index, tz).starts_at:
        index -= 1
    while moment_utc >= period_bounds(anchor, index, tz).ends_at:
        index += 1
    return index


def _require_index(index: int) -> None:
    if index < 1:
        raise ValueError(f"period index must be 1 or more, got {index}")


def _start_date(anchor: date, index: int) -> date:
    months = anchor.year * 12 + anchor.month - 1 + index - 1
    year, month_zero = divmod(months, 12)
    month = month_zero + 1
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # fold=0: where a DST jump skips midnight (e.g. America/Santiago) this resolves to the instant
    # of the jump, which is the first instant of that local day.
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
