"""Geometry of the server-rendered SVG charts (plain values; templates draw them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

WIDTH, HEIGHT = 720, 200
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 36, 24, 12


@dataclass(frozen=True)
class Bar:
    day: date
    value: int
    x: float
    y: float
    width: float
    height: float
    future: bool


@dataclass(frozen=True)
class DailyChart:
    bars: tuple[Bar, ...]
    pace: float  # leads a day that would use the allowance exactly
    pace_y: float
    ticks: tuple[tuple[float, int], ...]  # (y, value) gridlines
    labels: tuple[tuple[float, str], ...]  # (x of the day's left edge, text) under the bars
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = PAD_LEFT
    plot_bottom: int = HEIGHT - PAD_BOTTOM

    @property
    def total(self) -> int:
        return sum(bar.value for bar in self.bars)


def nice_step(value: float) -> int:
    """The smallest 1, 2 or 5 × 10^n at or above `value` (at least 1)."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def daily_chart(
    first_day: date, day_count: int, today: date, called: dict[date, int], allowance: int
) -> DailyChart:
    """Bars of leads called per day of the period, and the daily pace of the allowance."""
    pace = allowance / day_count
    # Four gridline steps of a round size, so every tick label is a whole round number.
    step = nice_step(max([pace * 1.25, *called.values(), 4]) / 4)
    top = step * 4
    plot_width, plot_height = WIDTH - PAD_LEFT, HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_width / day_count
    gap = min(2.0, slot * 0.2)

    def y_of(value: float) -> float:
        return PAD_TOP + plot_height * (1 - value / top)

    bars = []
    for index in range(day_count):
        day = first_day + timedelta(days=index)
        value = called.get(day, 0)
        y = y_of(value)
        bars.append(
            Bar(
                day=day,
                value=value,
                x=round(PAD_LEFT + index * slot + gap / 2, 2),
                y=round(y, 2),
                width=round(slot - gap, 2),
                height=round(HEIGHT - PAD_BOTTOM - y, 2),
                future=day > today,
            )
        )
    ticks = tuple((round(y_of(step * i), 2), step * i) for i in range(5))
    every = 7 if day_count > 10 else 1
    # Each date starts under its day's bar: centred on the first day, it ran into the axis's 0.
    labels = tuple(
        (round(PAD_LEFT + i * slot, 2), (first_day + timedelta(days=i)).strftime("%-d %b"))
        for i in range(0, day_count, every)
    )
    return DailyChart(tuple(bars), round(pace, 1), round(y_of(pace), 2), ticks, labels)


@dataclass(frozen=True)
class UsageBar:
    """The usage bar: within the allowance, the grace zone, and overage, on one scale."""

    scale: int
    used_in_plan: float  # widths in percent of the bar
    used_in_grace: float
    overage: float
    allowance_at: float
    grace_end_at: float
    projected_at: float


def usage_bar(used: int, allowance: int, grace: int, projected: int) -> UsageBar:
    scale = max(allowance + grace, used, projected) or 1
    scale = round(scale * 1.08) if scale > allowance + grace else allowance + grace

    def pct(value: float) -> float:
        return round(100 * value / scale, 2)

    in_plan = min(used, allowance)
    in_grace = min(max(0, used - allowance), grace)
    over = max(0, used - allowance - grace)
    return UsageBar(
        scale=scale,
        used_in_plan=pct(in_plan),
        used_in_grace=pct(in_grace),
        overage=pct(over),
        allowance_at=pct(allowance),
        grace_end_at=pct(allowance + grace),
        projected_at=pct(projected),
    )
