"""The dashboard's arithmetic: overage so far, projection, the bigger-plan hint, the bar."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app import billing
from app.usage.charts import daily_chart, usage_bar
from app.usage.summary import summarise

STARTER = billing.PlanTerms("S100", "Starter 100", 100, 100_000, 1000)
GROWTH = billing.PlanTerms("G200", "Growth 200", 200, 180_000, 900)
APRIL = billing.period_bounds(date(2026, 4, 1), 1, "UTC")  # 30 days


@pytest.fixture
def db_session() -> None:
    """No database here."""


def ledger(grace: int = 0) -> billing.PeriodLedger:
    return billing.PeriodLedger(period=APRIL, terms=STARTER, grace=grace)


def test_projection_runs_at_the_pace_so_far_and_suggests_a_cheaper_bigger_plan() -> None:
    ten_days_in = APRIL.starts_at + timedelta(days=10)
    summary = summarise(ledger(), 80, ten_days_in, [STARTER, GROWTH], is_open=True)
    assert summary.projected_used == 240
    assert summary.projected_overage_leads == 140
    assert summary.projected_overage_cents == 140_000
    assert summary.days_left == 20
    # Starter at 240 leads: $1,000 + 140 × $10 = $2,400; Growth: $1,800 + 40 × $9 = $2,160.
    assert summary.cheaper_plan is not None
    assert summary.cheaper_plan.plan.code == "G200"
    assert summary.saving_cents == 24_000


def test_overage_so_far_includes_frozen_segments_at_their_rate() -> None:
    upgraded, _ = billing.upgrade(ledger(), GROWTH, 120)
    summary = summarise(upgraded, 260, APRIL.ends_at, [STARTER, GROWTH], is_open=False)
    # 20 frozen at $10 and (260 - 20 - 200) = 40 at $9: the closing invoice's overage lines.
    assert (summary.overage_leads, summary.overage_cents) == (60, 20 * 1000 + 40 * 900)
    assert summary.cheaper_plan is None  # a closed period gives no advice


def test_grace_leads_are_not_overage() -> None:
    summary = summarise(ledger(grace=5), 105, APRIL.ends_at, [STARTER], is_open=False)
    assert (summary.overage_leads, summary.overage_cents) == (0, 0)
    bar = usage_bar(108, 100, 5, 108)
    assert (bar.used_in_plan, bar.used_in_grace, bar.overage) == (
        pytest.approx(100 * 100 / bar.scale, abs=0.01),
        pytest.approx(100 * 5 / bar.scale, abs=0.01),
        pytest.approx(100 * 3 / bar.scale, abs=0.01),
    )


def test_the_daily_chart_has_a_bar_per_day_and_round_ticks() -> None:
    chart = daily_chart(date(2026, 4, 1), 30, date(2026, 4, 10), {date(2026, 4, 3): 12}, 100)
    assert len(chart.bars) == 30
    assert chart.total == 12
    assert [value for _, value in chart.ticks] == [0, 5, 10, 15, 20]
    assert [bar.future for bar in chart.bars].count(True) == 20
    assert chart.pace == pytest.approx(3.3, abs=0.05)
