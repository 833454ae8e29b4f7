"""The plan catalogue in the operator console: list, create, edit, retire, offer again."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.extensions import db
from app.models import Plan
from app.ops import bp
from app.ops.catalogue import (
    CatalogueError,
    PlanFields,
    catalogue_rows,
    create_plan,
    offer_plan_again,
    retire_plan,
    update_plan,
)
from app.ops.forms import PlanForm
from app.web import add_form_error, render, render_invalid


def _plan(plan_id: int) -> Plan:
    plan = db.session.get(Plan, plan_id)
    if plan is None:
        abort(404)
    return plan


def _fields(form: PlanForm, code: str) -> PlanFields:
    return PlanFields(
        code=code,
        name=form.name.data.strip(),
        allowance=form.allowance.data,
        cpl_cents=int(form.cpl.data or 0),  # validated: present and positive
        price_cents=int(form.price.data or 0),
    )


@bp.get("/plans")
def plans() -> Response:
    """The catalogue: plans on offer, smallest first, then retired ones."""
    return render("ops/plans.html", rows=catalogue_rows())


@bp.route("/plans/new", methods=["GET", "POST"])
def plan_new() -> Response | BaseResponse:
    """Add a plan; refused values come back by their field (422)."""
    form = PlanForm()
    if form.validate_on_submit():
        try:
            plan = create_plan(_fields(form, form.code.data))
        except CatalogueError as refusal:
            db.session.rollback()
            for field, message in refusal.problems.items():
                add_form_error(form, message, field)
        else:
            db.session.commit()
            flash(f"{plan.name} is in the catalogue: offered on the pricing page now.", "success")
            return redirect(url_for("ops.plans"), 303)
    if form.is_submitted():
        return render_invalid("ops/plan_form.html", form=form, plan=None)
    return render("ops/plan_form.html", form=form, plan=None)


@bp.route("/plans/<int:plan_id>/edit", methods=["GET", "POST"])
def plan_edit(plan_id: int) -> Response | BaseResponse:
    """Change a plan's name and terms: new subscriptions and renewals get them; open
    periods and issued invoices keep the terms they were made with."""
    plan = _plan(plan_id)
    form = PlanForm(
        data={
            "name": plan.name,
            "allowance": plan.allowance,
            "cpl": plan.cpl_cents,
            "price": plan.price_cents,
        }
    )
    form.code.data = plan.code  # fixed once created
    if form.validate_on_submit():
        try:
            update_plan(plan, _fields(form, plan.code))
        except CatalogueError as refusal:
            db.session.rollback()
            for field, message in refusal.problems.items():
                add_form_error(form, message, field)
        else:
            db.session.commit()
            flash(
                f"{plan.name} is saved. Open periods and issued invoices keep their terms.",
                "success",
            )
            return redirect(url_for("ops.plans"), 303)
    if form.is_submitted():
        return render_invalid("ops/plan_form.html", form=form, plan=plan)
    return render("ops/plan_form.html", form=form, plan=plan)


@bp.post("/plans/<int:plan_id>/retire")
def plan_retire(plan_id: int) -> BaseResponse:
    """Stop offering a plan; its subscribers keep it until they change plan."""
    plan = _plan(plan_id)
    if not plan.retired:
        retire_plan(plan)
        db.session.commit()
        flash(f"{plan.name} is retired: no longer offered; its subscribers keep it.", "success")
    return redirect(url_for("ops.plans"), 303)


@bp.post("/plans/<int:plan_id>/offer")
def plan_offer(plan_id: int) -> BaseResponse:
    """Offer a retired plan again, if it still fits the catalogue."""
    plan = _plan(plan_id)
    if plan.retired:
        try:
            offer_plan_again(plan)
        except CatalogueError as refusal:
            db.session.rollback()
            flash(f"{plan.name} cannot be offered again: {refusal}", "error")
        else:
            db.session.commit()
            flash(f"{plan.name} is offered again.", "success")
    return redirect(url_for("ops.plans"), 303)
