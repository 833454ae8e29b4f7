"""The plan catalogue as operators keep it: create, edit, retire. Flush and audit; never commit.

A billing period copies its plan's terms when it opens and an invoice its lines when it is
issued, so nothing here reaches an open period or an issued invoice: an edit applies to new
subscriptions and to the next renewal of existing ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app.audit import record_operator_action
from app.billing.money import format_cents
from app.extensions import db
from app.models import BillingPeriod, PeriodStatus, Plan, Subscription, SubscriptionStatus
from app.tenancy import unscoped


@dataclass(frozen=True)
class PlanFields:
    code: str
    name: str
    allowance: int
    cpl_cents: int
    price_cents: int


class CatalogueError(Exception):
    """The catalogue refuses a plan; `problems` maps a form field to its message."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = problems


@dataclass(frozen=True)
class CatalogueRow:
    plan: Plan
    subscribers: int
    open_periods: int


def catalogue_rows() -> list[CatalogueRow]:
    """Every plan, smallest first, with its active subscribers and open periods.

    The counts span every tenant (only numbers are read, no tenant's rows)."""
    subscribers = (
        sa.select(sa.func.count())
        .where(Subscription.plan_id == Plan.id, Subscription.status == SubscriptionStatus.ACTIVE)
        .correlate(Plan)
        .scalar_subquery()
    )
    periods = (
        sa.select(sa.func.count())
        .where(BillingPeriod.plan_id == Plan.id, BillingPeriod.status == PeriodStatus.OPEN)
        .correlate(Plan)
        .scalar_subquery()
    )
    with unscoped():
        rows = db.session.execute(
            sa.select(Plan, subscribers, periods).order_by(Plan.retired, Plan.allowance, Plan.code)
        ).all()
    return [CatalogueRow(plan, int(subs), int(open_)) for plan, subs, open_ in rows]


def check_plan(fields: PlanFields, plan: Plan | None = None) -> None:
    """Raise CatalogueError unless the plan fits the catalogue on offer.

    Its code is unused; its price is allowance × CPL; against every other plan on offer, its
    allowance differs, a bigger plan has a strictly lower CPL and a strictly higher price.
    """
    problems: dict[str, str] = {}
    if fields.price_cents != fields.allowance * fields.cpl_cents:
        problems["price"] = (
            f"Must be {fields.allowance} leads × {format_cents(fields.cpl_cents)} = "
            f"{format_cents(fields.allowance * fields.cpl_cents)}."
        )
    same_code = sa.select(Plan.id).where(Plan.code == fields.code)
    if plan is None and db.session.scalar(same_code) is not None:
        problems["code"] = f"{fields.code} is already a plan's code."
    others = db.session.scalars(
        sa.select(Plan)
        .where(Plan.retired.is_(False), Plan.id != (plan.id if plan else -1))
        .order_by(Plan.allowance)
    ).all()
    for other in others:
        if other.allowance == fields.allowance:
            problems.setdefault(
                "allowance", f"{other.name} already has {other.allowance} leads a month."
            )
        elif other.allowance < fields.allowance:
            if fields.cpl_cents >= other.cpl_cents:
                problems.setdefault(
                    "cpl",
                    f"Must be lower than {format_cents(other.cpl_cents)}, the cost per lead "
                    f"of {other.name} ({other.allowance} leads): bigger plans cost less a lead.",
                )
            if fields.price_cents <= other.price_cents and "price" not in problems:
                problems["price"] = (
                    f"Must be more than {format_cents(other.price_cents)}, the price of "
                    f"{other.name}, which has fewer leads."
                )
        else:
            if fields.cpl_cents <= other.cpl_cents:
                problems.setdefault(
                    "cpl",
                    f"Must be higher than {format_cents(other.cpl_cents)}, the cost per lead "
                    f"of {other.name} ({other.allowance} leads): smaller plans cost more a lead.",
                )
            if fields.price_cents >= other.price_cents and "price" not in problems:
                problems["price"] = (
                    f"Must be less than {format_cents(other.price_cents)}, the price of "
                    f"{other.name}, which has more leads."
                )
    if problems:
        raise CatalogueError(problems)


def create_plan(fields: PlanFields) -> Plan:
    """Add a plan to the catalogue. Raises CatalogueError."""
    check_plan(fields)
    plan = Plan(
        code=fields.code,
        name=fields.name,
        allowance=fields.allowance,
        cpl_cents=fields.cpl_cents,
        price_cents=fields.price_cents,
    )
    db.session.add(plan)
    db.session.flush()
    record_operator_action("plan.created", target=plan, details=_terms(plan))
    return plan


def update_plan(plan: Plan, fields: PlanFields) -> None:
    """Change a plan's name and terms (not its code). Raises CatalogueError."""
    check_plan(fields, plan)
    before = _terms(plan)
    plan.name, plan.allowance = fields.name, fields.allowance
    plan.cpl_cents, plan.price_cents = fields.cpl_cents, fields.price_cents
    db.session.flush()
    after = _terms(plan)
    changed = {
        key: {"from": before[key], "to": after[key]} for key in after if before[key] != after[key]
    }
    if changed:
        record_operator_action("plan.edited", target=plan, details={"code": plan.code, **changed})


def retire_plan(plan: Plan) -> None:
    """Stop offering a plan; its subscribers keep it until they change."""
    plan.retired = True
    db.session.flush()
    record_operator_action("plan.retired", target=plan, details={"code": plan.code})


def offer_plan_again(plan: Plan) -> None:
    """Offer a retired plan again, if it still fits the catalogue. Raises CatalogueError."""
    check_plan(
        PlanFields(plan.code, plan.name, plan.allowance, plan.cpl_cents, plan.price_cents), plan
    )
    plan.retired = False
    db.session.flush()
    record_operator_action("plan.offered_again", target=plan, details={"code": plan.code})


def _terms(plan: Plan) -> dict[str, object]:
    return {
        "code": plan.code,
        "name": plan.name,
        "allowance": plan.allowance,
        "cpl_cents": plan.cpl_cents,
        "price_cents": plan.price_cents,
    }
