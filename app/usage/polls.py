"""Unchanged dashboard polls, answered from two queries.

An open dashboard polls every few seconds, and most polls find nothing new: the answer is
an empty 304. This hook answers such a poll before the user, the tenant and the period are
loaded one by one: one query checks that the session's user is an active member of the
account and finds the period shown, a second reads the version the page's ETag was made
from (`usage_version`, the view's own). Anything else — no signed-in user in the session,
a closed period, a tag that no longer matches — goes on to the view, which applies the
same rules in full. A 304 carries nothing but "still the same", so this path can only ever
tell a member that the page they already have is current.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import Response, g, request, session

from app.extensions import db
from app.models import Account, BillingPeriod, Membership, PeriodStatus, User
from app.permissions import Permission, role_allows
from app.tenancy import tenant_context, unscoped
from app.usage import bp
from app.usage.etags import not_modified, usage_etag, usage_key
from app.usage.queries import usage_version
from app.web import is_htmx_request

POLLED = {"usage.dashboard", "usage.seat_dashboard"}


@bp.before_app_request
def answer_unchanged_poll() -> Response | None:
    """304 for a dashboard poll whose ETag still holds; None lets the request go on."""
    if request.endpoint not in POLLED or not request.if_none_match or not is_htmx_request():
        return None
    user_id = session.get("_user_id")
    slug = g.get("account_slug")  # taken out of the view's arguments by the blueprint
    if not isinstance(user_id, str) or not user_id.isdigit() or not isinstance(slug, str):
        return None
    period_key = request.args.get("period", "")
    chosen = sa.and_(
        BillingPeriod.account_id == Account.id,
        BillingPeriod.status == PeriodStatus.OPEN,
    )
    if period_key:
        if not period_key.upper().startswith("M") or not period_key[1:].isdigit():
            return None
        chosen = sa.and_(chosen, BillingPeriod.month_index == int(period_key[1:]))
    with unscoped():
        found = db.session.execute(
            sa.select(Account, Membership, BillingPeriod)
            .join(Membership, Membership.account_id == Account.id)
            .join(User, User.id == Membership.user_id)
            .join(BillingPeriod, chosen)
            .where(
                Account.slug == slug,
                Membership.user_id == int(user_id),
                User.is_active_user.is_(True),
            )
            .order_by(BillingPeriod.month_index.desc())
            .limit(1)
        ).first()
    if found is None:
        return None
    account, membership, period = found
    shown = _seat_shown(membership)
    if shown is None:
        return None
    seat_id = shown.seat_id
    with tenant_context(account.id):
        key = usage_key(account, usage_version(period, seat_id), seat_id)
    etag = usage_etag(key)
    return not_modified(etag) if request.if_none_match.contains(etag) else None


@dataclass(frozen=True)
class _Shown:
    seat_id: int | None  # None: the whole account


def _seat_shown(membership: Membership) -> _Shown | None:
    """What the polled page shows, or None when this member may not see it (the view then
    answers as it does)."""
    sees_all = role_allows(membership.role, Permission.VIEW_ALL_SEATS)
    if request.endpoint == "usage.dashboard":
        return _Shown(None if sees_all else membership.seat_id)
    seat_id = (request.view_args or {}).get("seat_id")
    if not isinstance(seat_id, int) or not (sees_all or membership.seat_id == seat_id):
        return None
    return _Shown(seat_id)
