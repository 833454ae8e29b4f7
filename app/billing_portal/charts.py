"""Geometry of the "which plan should I choose?" chart: each plan's monthly cost against
leads used, and where the account has been (plain values; the template draws them)."""

from __future__ import annotations

from dataclasses import dataclass

from app import billing
from app.usage.charts import nice_step

WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 32


@dataclass(frozen=True)
class PlanLine:
    plan: billing.PlanTerms
    points: str  # SVG polyline points
    series: int  # 0-5, picks the colour


@dataclass(frozen=True)
class Marker:
    label: str
    leads: int
    x: float


@dataclass(frozen=True)
class CostChart:
    lines: tuple[PlanLine, ...]
    markers: tuple[Marker, ...]
    x_ticks: tuple[tuple[float, int], ...]
    y_ticks: tuple[tuple[float, int], ...]  # (y, dollars)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = HEIGHT - BOTTOM
    top: int = TOP


def cost_chart(
    plans: list[billing.PlanTerms], usage: list[tuple[str, int]], grace: int = 0
) -> CostChart:
    """Cost lines for every plan over 0 to a bit past the largest plan or usage."""
    biggest = max([plan.allowance for plan in plans] + [leads for _, leads in usage] + [10])
    x_step = nice_step(biggest * 1.25 / 5)
    x_max = x_step * 5
    y_top_cents = max(plan.price_cents for plan in plans) * 1.25 if plans else 100_000
    y_step = nice_step(y_top_cents / 100 / 4)  # dollars
    y_max = y_step * 4 * 100  # cents
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(leads: float) -> float:
        return round(LEFT + plot_w * leads / x_max, 2)

    def y_of(cents: float) -> float:
        return round(TOP + plot_h * (1 - cents / y_max), 2)

    lines = []
    for series, plan in enumerate(plans):
        free_until = plan.allowance + grace
        end_cost = plan.price_cents + max(0, x_max - free_until) * plan.cpl_cents
        points = [(0, plan.price_cents), (min(free_until, x_max), plan.price_cents)]
        points.append((x_max, end_cost))
        lines.append(
            PlanLine(
                plan=plan,
                points=" ".join(f"{x_of(x)},{y_of(y)}" for x, y in points),
                series=series % 6,
            )
        )
    return CostChart(
        lines=tuple(lines),
        markers=tuple(Marker(label, leads, x_of(leads)) for label, leads in usage),
        x_ticks=tuple((x_of(x_step * i), x_step * i) for i in range(6)),
        y_ticks=tuple((y_of(y_step * i * 100), y_step * i) for i in range(5)),
    )
