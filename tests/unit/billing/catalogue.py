"""Plans, time zones and Hypothesis strategies shared by the billing tests."""

from datetime import UTC, date, datetime

from hypothesis import settings
from hypothesis import strategies as st

from app.billing import PlanTerms

STARTER = PlanTerms(
    code="starter", name="Starter 100", allowance=100, price_cents=100_000, cpl_cents=1_000
)
GROWTH = PlanTerms(
    code="growth", name="Growth 200", allowance=200, price_cents=180_000, cpl_cents=900
)
PRO = PlanTerms(code="pro", name="Pro 400", allowance=400, price_cents=320_000, cpl_cents=800)
SCALE = PlanTerms(code="scale", name="Scale 800", allowance=800, price_cents=560_000, cpl_cents=700)
CATALOGUE = (STARTER, GROWTH, PRO, SCALE)
PLANS_BY_CODE = {plan.code: plan for plan in CATALOGUE}

# Zones with DST in either hemisphere, a 30-minute DST shift (Lord Howe), a DST change at local
# midnight (Santiago: midnight does not exist on that day), and zones without DST.
TIME_ZONES = (
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Pacific/Auckland",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
)

# Property tests stay well inside the suite's time budget; no example database is written into
# the working tree.
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, database=None)

anchors = st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31))
time_zones = st.sampled_from(TIME_ZONES)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC moment, briefly."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@st.composite
def valid_catalogues(draw: st.DrawFn) -> list[PlanTerms]:
    """Catalogues the rules accept: bigger plans have a lower CPL and a higher price."""
    allowance = draw(st.integers(1, 300))
    cpl = draw(st.integers(2, 5_000))
    plans = [_plan(0, allowance, cpl)]
    for number in range(1, draw(st.integers(1, 5))):
        if cpl == 1:
            break
        next_cpl = draw(st.integers(1, cpl - 1))
        # The smallest allowance that keeps the bigger plan's price strictly higher.
        allowance = allowance * cpl // next_cpl + 1 + draw(st.integers(0, 300))
        cpl = next_cpl
        plans.append(_plan(number, allowance, cpl))
    return plans


def _plan(number: int, allowance: int, cpl: int) -> PlanTerms:
    return PlanTerms(
        code=f"plan-{number}",
        name=f"Plan {allowance}",
        allowance=allowance,
        price_cents=allowance * cpl,
        cpl_cents=cpl,
    )
