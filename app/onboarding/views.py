"""Public pages: pricing with the plan chooser, and signup (choose a plan + the onboarding
form). No login; signups are rate-limited per address and CSRF-protected like every form."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.billing import BillingRuleError
from app.extensions import db, limiter
from app.models import AccountKind
from app.onboarding import bp
from app.onboarding.forms import MAX_SIGNUP_SEATS, TIME_ZONES, ChooserForm, SignupForm
from app.onboarding.operations import create_account
from app.onboarding.queries import offered_plans, plan_choice, seat_fee_cents, signup_charges
from app.seats.operations import SeatRuleError
from app.web import add_form_error, render, render_invalid

SIGNUPS_PER_HOUR = "10 per hour"
# "Add another seat", "Remove" and forms with errors post too; they are limited more loosely.
SIGNUP_POSTS_PER_HOUR = "120 per hour"


@bp.get("/pricing")
def pricing() -> Response:
    """The plan catalogue, what the fees are, and the chooser."""
    plans = offered_plans()
    chooser = ChooserForm(request.args)
    asked = "leads" in request.args
    costs = plan_choice(plans, chooser.leads.data or 0) if asked and chooser.validate() else []
    context: dict[str, Any] = {
        "plans": plans,
        "chooser": chooser,
        "costs": costs,
        "seat_fee_cents": seat_fee_cents(),
    }
    if asked and chooser.errors:
        return render_invalid(
            "onboarding/pricing.html", partial="onboarding/_chooser.html", **context
        )
    return render("onboarding/pricing.html", partial="onboarding/_chooser.html", **context)


def _signup_context(form: SignupForm) -> dict[str, Any]:
    plan, kind = form.chosen_plan, form.chosen_kind
    zone = form.timezone.data if form.timezone.data in dict(TIME_ZONES) else TIME_ZONES[0][0]
    return {
        "form": form,
        "plan": plan,
        "kind": kind,
        "charges": signup_charges(plan, kind or AccountKind.SOLO, len(form.seats.entries), zone)
        if plan
        else None,
        "seat_fee_cents": seat_fee_cents(),
        "max_seats": MAX_SIGNUP_SEATS,
    }


def _account_created(response: Response) -> bool:
    return response.status_code == 303


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(SIGNUP_POSTS_PER_HOUR, methods=["POST"])
@limiter.limit(SIGNUPS_PER_HOUR, methods=["POST"], deduct_when=_account_created)
def signup() -> Response | BaseResponse:
    """Choose a plan and onboard the first seat(s); creates the account in one transaction."""
    form = SignupForm(plans=offered_plans())
    if request.method == "GET" and request.args.get("plan") in form.plans:
        form.plan.data = request.args["plan"]
    action = request.form.get("action", "signup")
    if request.method == "GET" or action != "signup":
        form.change_seats(action)
        return render(
            "onboarding/signup.html",
            partial="onboarding/_signup_form.html",
            **_signup_context(form),
        )
    if not form.validate_on_submit():
        return render_invalid(
            "onboarding/signup.html",
            partial="onboarding/_signup_form.html",
            **_signup_context(form),
        )
    try:
        new = create_account(**form.new_account())
    except (SeatRuleError, BillingRuleError) as refusal:
        db.session.rollback()
        field = refusal.field if isinstance(refusal, SeatRuleError) else "plan"
        add_form_error(form, str(refusal), field or "kind")
        return render_invalid(
            "onboarding/signup.html",
            partial="onboarding/_signup_form.html",
            **_signup_context(form),
        )
    db.session.commit()
    session["signup"] = {
        "email": new.owner.email,
        "account": new.account.name,
        "invoice": new.subscribed.invoice.number,
        "total_cents": new.subscribed.invoice.total_cents,
    }
    return redirect(url_for("onboarding.signup_done"), 303)


@bp.get("/signup/done")
def signup_done() -> Response | BaseResponse:
    """Where a signup lands: check your email for the link to set your password."""
    done = session.get("signup")
    if not done:
        return redirect(url_for("onboarding.pricing"))
    return render("onboarding/signup_done.html", done=done)
