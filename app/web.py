"""Request plumbing shared by every feature: tenant blueprints, permissions, htmx rendering."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, wraps
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    has_request_context,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from app.extensions import db
from app.models import Account, Membership, User
from app.permissions import Permission, role_allows
from app.tenancy import enter_tenant, leave_tenant, unscoped

P = ParamSpec("P")
R = TypeVar("R")


def _header_is_true(name: str) -> bool:
    return request.headers.get(name, "").strip().lower() == "true"


def is_htmx_request() -> bool:
    """True when htmx sent the request (`HX-Request: true`).

    Not `bool(htmx)`: the htmx-flask extension object is always truthy; the headers are
    the request's.
    """
    return _header_is_true("HX-Request")


def render(template: str, partial: str | None = None, **context: Any) -> Response:
    """Render a page, or only its partial for an htmx request; both vary on HX-Request.

    Boosted navigation asks for the whole page, so only a targeted htmx request
    gets the partial.
    """
    wants_partial = is_htmx_request() and not _header_is_true("HX-Boosted")
    chosen = partial if partial is not None and wants_partial else template
    response = make_response(render_template(chosen, **context))
    response.vary.add("HX-Request")
    return response


def render_invalid(template: str, partial: str | None = None, **context: Any) -> Response:
    """A form with errors, re-rendered with the user's values: 422, plain or htmx alike
    (app.js tells htmx to swap 422 answers)."""
    response = render(template, partial, **context)
    response.status_code = 422
    return response


def add_form_error(form: Any, message: str, field: str | None = None) -> None:
    """Show a domain error beside `field` of a (WTForms) form, or above the form."""
    target = form[field] if field is not None and field in form else None
    if target is not None:
        target.errors = [*target.errors, message]
    else:
        form.form_errors.append(message)


def login_required_response() -> BaseResponse:
    """Where a logged-out request goes: htmx gets HX-Redirect, not a login form in a fragment."""
    login_url = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    if is_htmx_request():
        response = make_response("", 401)
        response.headers["HX-Redirect"] = login_url
        return response
    return redirect(login_url)


def current_account() -> Account:
    account: Account = g.account
    return account


def current_membership() -> Membership:
    membership: Membership = g.membership
    return membership


def can(permission: Permission) -> bool:
    membership = g.get("membership")
    return membership is not None and role_allows(membership.role, permission)


def requires(permission: Permission) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Refuse a tenant view (403) to roles without `permission`."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            if not can(permission):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


# The views marked with `reads_only`.
_READ_ONLY_VIEWS: set[Callable[..., Any]] = set()


def reads_only(view: Callable[P, R]) -> Callable[P, R]:
    """Mark a view that writes nothing. On PostgreSQL its request, the reads of its
    `before_request` hooks included, runs on a connection in autocommit (`read_in_autocommit`):
    no BEGIN and no COMMIT or ROLLBACK round trip, and psycopg keeps the statements it
    prepared (a ROLLBACK makes it forget them, so PostgreSQL would parse and plan every query
    of the next request again)."""
    _READ_ONLY_VIEWS.add(view)
    return view


def read_in_autocommit() -> None:
    """`before_request`: a `reads_only` view's session reads in autocommit. Each query then
    sees the data as of its own start, which is all a page of reads needs.

    Only a session of its own, on the engine: one joined to a connection already in a
    transaction (the tests' rolled-back one) goes on in that transaction."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view not in _READ_ONLY_VIEWS or db.session().in_transaction():
        return
    bind = db.session.get_bind()
    if isinstance(bind, sa.Engine) and bind.dialect.name == "postgresql":
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def tenant_blueprint(name: str, import_name: str, url_prefix: str = "") -> Blueprint:
    """A blueprint under /a/<account>/...: the account and membership are resolved once,
    the tenant filter is switched on, and a non-member gets 404."""
    bp = Blueprint(name, import_name, url_prefix=f"/a/<account>{url_prefix}")

    @bp.url_value_preprocessor
    def _pop_account(_endpoint: str | None, values: dict[str, Any] | None) -> None:
        g.account_slug = (values or {}).pop("account", None)

    @bp.url_defaults
    def _add_account(_endpoint: str, values: dict[str, Any]) -> None:
        if "account" not in values and g.get("account") is not None:
            values["account"] = g.account.slug

    @bp.before_request
    def _resolve_tenant() -> BaseResponse | None:
        if not current_user.is_authenticated:
            return login_required_response()
        memberships = user_memberships(current_user)
        found = next((row for row in memberships if row[0].slug == g.account_slug), None)
        if found is None:  # no such account, or the user is not a member of it
            abort(404)
        g.account, g.membership = found
        g.tenant_token = enter_tenant(g.account.id)
        return None

    @bp.teardown_request
    def _leave_tenant(_exc: BaseException | None) -> None:
        token = g.pop("tenant_token", None)
        if token is not None:
            leave_tenant(token)

    return bp


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool


@dataclass(frozen=True)
class AccountChoice:
    name: str
    url: str
    role_label: str
    kind_label: str
    current: bool


# Tenant navigation: (label, endpoint, permission needed or None). Endpoints that a
# role may not open are left out rather than shown and refused.
TENANT_NAV: tuple[tuple[str, str, Permission | None], ...] = (
    ("Dashboard", "usage.dashboard", None),
    ("Seats", "seats.index", None),
    ("Reports", "reports.index", Permission.VIEW_REPORTS),
    ("Billing", "billing_portal.index", Permission.VIEW_BILLING),
    ("Team", "accounts.members", Permission.MANAGE_MEMBERS),
    ("Audit log", "accounts.audit", Permission.VIEW_AUDIT_LOG),
)


# Operator console navigation: (label, endpoint, prefix). A section's pages are the endpoints
# starting with its prefix; sections whose views are not registered are left out.
OPS_NAV: tuple[tuple[str, str, str], ...] = (
    ("Tenants", "ops.index", "ops.tenant"),
    ("Plans", "ops.plans", "ops.plan"),
    ("Settings", "ops.settings", "ops.setting"),
    ("Call data", "ops.call_data", "ops.call_data"),
    ("Billing runs", "ops.billing_runs", "ops.billing_run"),
    ("Jobs", "ops.jobs", "ops.job"),
    ("Outbox", "ops.outbox", "ops.outbox"),
)


def _ops_nav() -> list[NavItem]:
    endpoint = request.endpoint or ""
    return [
        NavItem(
            label,
            url_for(target),
            endpoint == target or endpoint.startswith(prefix),
        )
        for label, target, prefix in OPS_NAV
        if target in current_app.view_functions
    ]


def signed_in_user(user_id: int) -> User | None:
    """Flask-Login's user loader: the user, if active, read in one query with every account
    they belong to (`user_memberships` then needs no query of its own).

    A deactivated user's existing session ends at their next request, not when it expires."""
    rows = _user_rows(user_id)
    user: User | None = rows[0][0] if rows else None
    if user is None or not user.is_active:
        return None
    _remember_memberships(user_id, rows)
    return user


def user_memberships(user: User) -> list[tuple[Account, Membership]]:
    """Every account the user belongs to with the membership, by name: a tenant page finds
    its own among them, and the switcher lists them."""
    loaded = g.get("user_memberships")
    if loaded is None or loaded[0] != user.id:
        loaded = _remember_memberships(user.id, _user_rows(user.id))
    return list(loaded[1])


def _remember_memberships(
    user_id: int, rows: list[Any]
) -> tuple[int, list[tuple[Account, Membership]]]:
    """Keep the user's accounts and memberships of `_user_rows` for the rest of the request."""
    memberships = [(account, member) for _, account, member in rows if member is not None]
    g.user_memberships = (user_id, memberships)
    return user_id, memberships


def _user_rows(user_id: int) -> list[Any]:
    """The user with each of their accounts and memberships, by account name (reads across
    tenants); one row with no account for a user who belongs to none."""
    with unscoped():
        return list(db.session.execute(_user_rows_statement(), {"user_id": user_id}))


@cache
def _user_rows_statement() -> sa.Select[User, Account, Membership]:
    """`_user_rows`' statement, built once (its cache key then is worked out once)."""
    return (
        sa.select(User, Account, Membership)
        .outerjoin(Membership, Membership.user_id == User.id)
        .outerjoin(Account, Account.id == Membership.account_id)
        .where(User.id == sa.bindparam("user_id"))
        .order_by(Account.name, Account.id)
    )


def forget_user_memberships(_exc: BaseException | None) -> None:
    """`teardown_request`: the memberships read with the user are the request's only (tests
    run requests inside one application context, whose `g` outlives each of them)."""
    g.pop("user_memberships", None)


def user_account_choices(user: User) -> list[AccountChoice]:
    """Every account the user belongs to, for the switcher."""
    current_id = g.account.id if g.get("account") is not None else None
    return [
        AccountChoice(
            name=account.name,
            url=url_for("usage.dashboard", account=account.slug),
            role_label=membership.role.label,
            kind_label=account.kind.label,
            current=account.id == current_id,
        )
        for account, membership in user_memberships(user)
    ]


def layout_context() -> dict[str, Any]:
    """What base.html needs on every page: tenant navigation and the account switcher."""
    # Jobs render emails with no request: there is no user then (current_user is None).
    if not has_request_context() or not current_user.is_authenticated:
        return {"nav_items": [], "current_account_obj": None, "user_accounts": []}
    account = g.get("account")
    nav: list[NavItem] = []
    if account is not None:
        # A page that is itself a tab marks only that tab; any other page marks the first tab
        # of its blueprint (two tabs, Team and Audit log, share the accounts blueprint).
        on_a_tab = any(endpoint == request.endpoint for _, endpoint, _ in TENANT_NAV)
        seen: set[str] = set()
        for label, endpoint, permission in TENANT_NAV:
            if endpoint not in current_app.view_functions:
                continue
            if permission is not None and not can(permission):
                continue
            blueprint = endpoint.split(".")[0]
            if on_a_tab:
                active = endpoint == request.endpoint
            else:
                active = request.blueprint == blueprint and blueprint not in seen
            seen.add(blueprint)
            nav.append(NavItem(label, url_for(endpoint), active))
    elif request.blueprint == "ops":
        nav = _ops_nav()
    return {
        "nav_items": nav,
        "current_account_obj": account,
        "user_accounts": user_account_choices(current_user),
    }
