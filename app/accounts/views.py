"""The team page (owners: invite, change roles, remove) and the audit log (owners, admins).

htmx changes answer the whole team region (`_members.html`) with the flash messages out of
band; without JavaScript the same forms post, then redirect back to the page.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, flash, make_response, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from app.accounts import bp
from app.accounts.forms import ROLE_HELP, InviteForm, RoleForm
from app.accounts.operations import MemberRuleError, change_role, invite_member, remove_member
from app.accounts.queries import AUDIT_KINDS, AuditFilters, audit_page, member_rows
from app.extensions import db
from app.models import Membership, Role
from app.permissions import Permission
from app.seats.queries import seat_choices
from app.tenancy import get_or_404
from app.web import (
    add_form_error,
    current_account,
    current_membership,
    is_htmx_request,
    render,
    render_invalid,
    requires,
)


def _team_context(
    invite_form: InviteForm | None = None,
    editing: int | None = None,
    role_form: RoleForm | None = None,
) -> dict[str, Any]:
    """Everything the team region shows; `editing` opens that member's role form."""
    seats = seat_choices()
    rows = member_rows()
    if editing is not None and role_form is None:
        membership = next(row.membership for row in rows if row.membership.id == editing)
        role_form = RoleForm(
            formdata=None, seats=seats, role=membership.role, seat=membership.seat_id
        )
    return {
        "rows": rows,
        "owner_count": sum(row.membership.role is Role.OWNER for row in rows),
        "invite_form": invite_form or InviteForm(formdata=None, seats=seats),
        "editing": editing,
        "role_form": role_form,
        "role_help": ROLE_HELP,
        "me": current_membership().id,
        "flash_oob": is_htmx_request(),
    }


def _team_changed(message: str) -> Response | BaseResponse:
    """After a committed change: the team region for htmx, the team page otherwise."""
    flash(message, "success")
    if is_htmx_request():
        return render("accounts/members.html", partial="accounts/_members.html", **_team_context())
    return redirect(url_for("accounts.members"), 303)


def _leave_the_team_page(message: str) -> Response | BaseResponse:
    """After a change that took away the user's own access to this page."""
    flash(message, "success")
    target = url_for("auth.home")
    if is_htmx_request():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, 303)


@bp.get("/members")
@requires(Permission.MANAGE_MEMBERS)
def members() -> Response:
    """Who can sign in to the account, with which role; the invite form beside them."""
    return render("accounts/members.html", partial="accounts/_members.html", **_team_context())


@bp.post("/members/invite")
@requires(Permission.MANAGE_MEMBERS)
def invite() -> Response | BaseResponse:
    """Give someone a role in the account; they are emailed (a password link if new)."""
    form = InviteForm(seats=seat_choices())
    if form.validate_on_submit():
        try:
            invite_member(
                current_account(),
                form.email.data or "",
                form.name.data or "",
                form.role.data,
                form.seat.data,
                actor=current_user._get_current_object(),
            )
        except MemberRuleError as refusal:
            db.session.rollback()
            add_form_error(form, str(refusal), refusal.field)
        else:
            db.session.commit()
            return _team_changed(f"Invitation sent to {form.email.data}.")
    context = _team_context(invite_form=form)
    return render_invalid("accounts/members.html", partial="accounts/_members.html", **context)


@bp.get("/members/<int:member_id>")
@requires(Permission.MANAGE_MEMBERS)
def member(member_id: int) -> Response:
    """A member's row (htmx: after "Cancel"); the team page otherwise."""
    get_or_404(Membership, member_id)
    context = _team_context()
    context["row"] = next(r for r in context["rows"] if r.membership.id == member_id)
    return render("accounts/members.html", partial="accounts/_member_row.html", **context)


@bp.get("/members/<int:member_id>/edit")
@requires(Permission.MANAGE_MEMBERS)
def edit_member(member_id: int) -> Response:
    """A member's row as a form to change their role."""
    get_or_404(Membership, member_id)
    context = _team_context(editing=member_id)
    context["row"] = next(r for r in context["rows"] if r.membership.id == member_id)
    return render("accounts/members.html", partial="accounts/_member_row.html", **context)


@bp.post("/members/<int:member_id>/role")
@requires(Permission.MANAGE_MEMBERS)
def change_member_role(member_id: int) -> Response | BaseResponse:
    """Change a member's role (a seat member's seat); never the last owner's."""
    membership = get_or_404(Membership, member_id)
    form = RoleForm(seats=seat_choices())
    if form.validate_on_submit():
        try:
            changed = change_role(current_account(), membership, form.role.data, form.seat.data)
        except MemberRuleError as refusal:
            db.session.rollback()
            add_form_error(form, str(refusal), refusal.field)
        else:
            db.session.commit()
            name = membership.user.name or membership.user.email
            if membership.id == current_membership().id and form.role.data is not Role.OWNER:
                return _leave_the_team_page(f"Your role is now {form.role.data.label.lower()}.")
            message = f"{name} is now {form.role.data.label.lower()}." if changed else "No change."
            return _team_changed(message)
    context = _team_context(editing=member_id, role_form=form)
    return render_invalid("accounts/members.html", partial="accounts/_members.html", **context)


@bp.post("/members/<int:member_id>/remove")
@requires(Permission.MANAGE_MEMBERS)
def remove(member_id: int) -> Response | BaseResponse:
    """Take a member out of the account (or leave it); never the last owner."""
    membership = get_or_404(Membership, member_id)
    leaving = membership.id == current_membership().id
    name = membership.user.name or membership.user.email
    try:
        remove_member(current_account(), membership)
    except MemberRuleError as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
        return render_invalid(
            "accounts/members.html", partial="accounts/_members.html", **_team_context()
        )
    db.session.commit()
    if leaving:
        return _leave_the_team_page(f"You left {current_account().name}.")
    return _team_changed(f"{name} was removed from the account.")


@bp.get("/audit")
@requires(Permission.VIEW_AUDIT_LOG)
def audit() -> Response:
    """Who did what, when: filter by kind of change and by seat; newest first."""
    filters = AuditFilters.from_args(request.args)
    log = audit_page(filters, ZoneInfo(current_account().timezone))
    return render(
        "accounts/audit.html",
        partial="accounts/_audit_results.html",
        log=log,
        filters=filters,
        kinds=AUDIT_KINDS,
        seats=seat_choices(),
        page_url=lambda page: url_for("accounts.audit", **filters.query_args(page=page)),
    )
