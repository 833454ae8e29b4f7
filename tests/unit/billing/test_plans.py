"""Plan terms, catalogue rules and the recommender."""

import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing import BillingRuleError, PlanTerms, plan_costs, validate_catalogue

from .catalogue import CATALOGUE, GROWTH, PROPERTY_SETTINGS, STARTER, valid_catalogues


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"allowance": 0, "price_cents": 0}, "at least 1 lead", id="no-allowance"),
        pytest.param({"cpl_cents": 0, "price_cents": 0}, r"more than \$0.00", id="free-leads"),
        pytest.param({"allowance": -1, "price_cents": -1_000}, "at least 1 lead", id="negative"),
        pytest.param({"price_cents": 99_999}, r"\$999.99 is not 100 leads", id="price-off-by-1c"),
        pytest.param({"code": " "}, "needs a code and a name", id="blank-code"),
        pytest.param({"name": ""}, "needs a code and a name", id="blank-name"),
    ],
)
def test_inconsistent_plan_terms_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(BillingRuleError, match=message):
        replace(STARTER, **fields)


def test_empty_catalogue_is_valid() -> None:
    assert validate_catalogue([]) == []


def test_duplicate_plan_code_is_refused() -> None:
    other = PlanTerms(code="starter", name="Big", allowance=500, price_cents=250_000, cpl_cents=500)

    assert validate_catalogue([STARTER, other]) == ["The plan code 'starter' is used by 2 plans."]


def test_bigger_plan_that_costs_no_more_is_refused() -> None:
    # 110 leads at $9.00 = $990.00: a lower CPL, but cheaper than Starter's $1,000.00.
    cheaper = PlanTerms(
        code="odd", name="Odd 110", allowance=110, price_cents=99_000, cpl_cents=900
    )

    assert validate_catalogue([STARTER, cheaper]) == [
        "Odd 110 has more leads than Starter 100 but its price $990.00 is not higher than "
        "$1,000.00."
    ]


@given(catalogue=valid_catalogues(), seed=st.integers(0, 2**32))
@PROPERTY_SETTINGS
def test_generated_catalogues_are_valid_in_any_order(catalogue: list[PlanTerms], seed: int) -> None:
    random.Random(seed).shuffle(catalogue)

    assert validate_catalogue(catalogue) == []


@given(catalogue=valid_catalogues().filter(lambda plans: len(plans) >= 2))
@PROPERTY_SETTINGS
def test_raising_a_bigger_plans_cpl_to_its_neighbours_is_refused(
    catalogue: list[PlanTerms],
) -> None:
    smaller, bigger = catalogue[0], catalogue[1]
    flat = PlanTerms(
        code=bigger.code,
        name=bigger.name,
        allowance=bigger.allowance,
        price_cents=bigger.allowance * smaller.cpl_cents,
        cpl_cents=smaller.cpl_cents,
    )

    errors = validate_catalogue([smaller, flat, *catalogue[2:]])

    assert any("cost per lead" in error for error in errors)


def test_recommender_on_empty_catalogue_recommends_nothing() -> None:
    assert plan_costs([], 100) == []


def test_recommender_applies_grace() -> None:
    costs = plan_costs([STARTER, GROWTH], 108, grace=5)

    assert [(c.plan, c.overage_leads, c.total_cents) for c in costs] == [
        (STARTER, 3, 103_000),
        (GROWTH, 0, 180_000),
    ]


def test_recommender_refuses_negative_usage() -> None:
    with pytest.raises(ValueError, match="invalid usage"):
        plan_costs(CATALOGUE, -1)


@given(
    catalogue=valid_catalogues(),
    leads_used=st.integers(0, 20_000),
    grace=st.integers(0, 10),
)
@PROPERTY_SETTINGS
def test_recommender_prices_every_plan_and_recommends_the_cheapest(
    catalogue: list[PlanTerms], leads_used: int, grace: int
) -> None:
    costs = plan_costs(catalogue, leads_used, grace)

    assert sorted(cost.plan.code for cost in costs) == sorted(plan.code for plan in catalogue)
    for cost in costs:
        over = max(0, leads_used - cost.plan.allowance - grace)
        assert cost.overage_leads == over
        assert cost.overage_cents == over * cost.plan.cpl_cents
        assert cost.total_cents == cost.plan.price_cents + cost.overage_cents
    assert [cost.recommended for cost in costs] == [True] + [False] * (len(costs) - 1)
    assert costs[0].total_cents == min(cost.total_cents for cost in costs)
    ranking = [(cost.total_cents, cost.plan.allowance) for cost in costs]
    assert ranking == sorted(ranking)
