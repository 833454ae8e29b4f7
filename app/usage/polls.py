"""Unchanged dashboard polls, answered from one query.

An open dashboard polls every few seconds, and most polls find nothing new: the answer is
an empty 304. A WSGI middleware answers such a poll before Flask handles the request: a
single statement, built once, checks that the session's user is an active member of the
account, finds the period shown and reads the version the page's ETag was made from
(`usage_version`, the view's own). Anything else — no signed-in user in the session, a
closed period, a tag that no longer matches — goes on to the view, which applies the same
rules in full. A 304 carries nothing but "still the same", so this path can only ever tell a
member that the page they already have is current.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from threading import Lock
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from cachetools import TTLCache
from flask import Flask, Request
from sqlalchemy.sql.compiler import SQLCompiler
from werkzeug.exceptions import HTTPException
from werkzeug.http import quote_etag

from app.billing import month_index
from app.extensions import db
from app.models import Account, BillingPeriod, Membership, PeriodStatus, Role, User
from app.permissions import Permission, role_allows
from app.security import set_security_headers
from app.usage.etags import not_modified, usage_etag, usage_key
from app.usage.queries import usage_version

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

POLLED = {"usage.dashboard", "usage.seat_dashboard"}
_ALL_SEEING = [role for role in Role if role_allows(role, Permission.VIEW_ALL_SEATS)]


@dataclass(frozen=True)
class PollSql:
    """A poll's statement compiled for a database's driver."""

    compiled: SQLCompiler

    def arguments(self, params: dict[str, Any]) -> Any:
        """The driver's arguments: by name, or in order for a driver that takes them so."""
        values = self.compiled.construct_params(params)
        if not self.compiled.positional:
            return values
        return tuple(values[name] for name in self.compiled.positiontup or ())


@cache
def poll_sql(dialect: sa.Dialect, endpoint: str, chosen_period: bool) -> PollSql:
    """The member, the period and the version in one statement, for one kind of poll: the
    account's dashboard (the seat shown follows the member's role) or a seat's (the seat in
    the URL), of the open period or of the one named in the query.

    Compiled once and run on the driver's own cursor: SQLAlchemy's execution (working out the
    statement's cache key, the execution context, the result's row objects) costs twice the
    driver's work for this one statement. Its columns need no conversion: numbers and text."""
    return PollSql(_member_period_version(endpoint, chosen_period).compile(dialect=dialect))


def _member_period_version(endpoint: str, chosen_period: bool) -> sa.Select[Any]:
    accounts, memberships, users = Account.__table__, Membership.__table__, User.__table__
    periods = BillingPeriod.__table__
    if endpoint == "usage.dashboard":
        shown: sa.ColumnElement[Any] = sa.case(
            *((memberships.c.role == role, sa.null()) for role in _ALL_SEEING),
            else_=memberships.c.seat_id,
        )
    else:
        shown = sa.bindparam("seat_id", type_=sa.Integer)
    wanted = [periods.c.status == PeriodStatus.OPEN]
    if chosen_period:
        wanted.append(periods.c.month_index == sa.bindparam("month_index"))
    return (
        sa.select(
            accounts.c.id.label("account_id"),
            accounts.c.timezone.label("account_timezone"),
            memberships.c.role,
            memberships.c.seat_id.label("member_seat_id"),
            usage_version(accounts.c.id, shown).label("version"),
        )
        .join(memberships, memberships.c.account_id == accounts.c.id)
        .join(users, users.c.id == memberships.c.user_id)
        .join(periods, sa.and_(periods.c.account_id == accounts.c.id, *wanted))
        .where(
            accounts.c.slug == sa.bindparam("slug"),
            memberships.c.user_id == sa.bindparam("user_id"),
            users.c.is_active_user.is_(True),
        )
        .order_by(periods.c.month_index.desc())
        .limit(1)
    )


class UnchangedPolls:
    """WSGI middleware in front of the app: a 304 for a dashboard poll whose ETag still holds,
    before Flask builds a request; anything else goes on to the app unchanged.

    It checks what the view would: the session cookie (Flask's own signed session), that its
    user is an active member of the account in the URL, and, for a seat's page, that the
    member may see that seat. A database error, too, leaves the answer to the view."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.wsgi_app = app.wsgi_app
        self._engine: sa.Engine | None = None
        # The session cookies this process checked lately, with their user: a tab polls with
        # the same cookie every few seconds, and checking its signature is a sixth of a poll.
        # A 304 tells nothing, so a cookie that expires meanwhile may get one a minute longer.
        self._signed_in: TTLCache[str, tuple[int | None]] = TTLCache(maxsize=4096, ttl=60)
        self._lock = Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("REQUEST_METHOD") == "GET"
            and environ.get("HTTP_HX_REQUEST") == "true"
            and environ.get("HTTP_IF_NONE_MATCH")
        ):
            headers = self._not_modified(self.app.request_class(environ))
            if headers is not None:
                start_response("304 NOT MODIFIED", headers)
                return []
        return self.wsgi_app(environ, start_response)

    def _not_modified(self, request: Request) -> list[tuple[str, str]] | None:
        """The 304's headers when the poll's tag is current, else None."""
        try:
            endpoint, args = self.app.url_map.bind_to_environ(request.environ).match()
        except HTTPException:
            return None
        if endpoint not in POLLED:
            return None
        user_id = self._session_user(request)
        if user_id is None:
            return None
        params: dict[str, Any] = {"slug": args["account"], "user_id": user_id}
        period_key = request.args.get("period", "")
        if period_key:
            index = month_index(period_key)
            if index is None:
                return None
            params["month_index"] = index
        seat_id = args.get("seat_id")
        if seat_id is not None:
            params["seat_id"] = seat_id
        found = self._poll(endpoint, bool(period_key), params)
        if found is None:
            return None
        account_id, timezone, role, member_seat_id, version = found
        sees_all = role_allows(Role(role), Permission.VIEW_ALL_SEATS)
        if endpoint == "usage.dashboard":
            seat_id = None if sees_all else member_seat_id
        elif not sees_all and member_seat_id != seat_id:
            return None
        key = usage_key(account_id, timezone, version, seat_id, request.full_path)
        etag = usage_etag(key, htmx=True)
        if not request.if_none_match.contains(etag):
            return None
        return [("ETag", quote_etag(etag)), *_fixed_headers(request.is_secure)]

    def _session_user(self, request: Request) -> int | None:
        """The signed-in user of the request's session cookie, if any (Flask's own check of
        the cookie, remembered for the cookie's next polls)."""
        cookie = request.cookies.get(self.app.config["SESSION_COOKIE_NAME"])
        if cookie is None:
            return None
        with self._lock:
            known = self._signed_in.get(cookie)
        if known is not None:
            return known[0]
        session = self.app.session_interface.open_session(self.app, request)
        user_id = session.get("_user_id") if session is not None else None
        found = int(user_id) if isinstance(user_id, str) and user_id.isdigit() else None
        with self._lock:
            self._signed_in[cookie] = (found,)
        return found

    def _poll(self, endpoint: str, chosen_period: bool, params: dict[str, Any]) -> Any:
        """The poll's row (None when the member or the period is not found, or on any
        database error: the view then answers)."""
        if self._engine is None:  # found once, in an app context of its own
            with self.app.app_context():
                self._engine = db.engines["polls"]
        sql = poll_sql(self._engine.dialect, endpoint, chosen_period)
        try:
            connection = self._engine.raw_connection()
        except sa.exc.SQLAlchemyError:
            return None
        try:
            cursor = connection.cursor()
            cursor.execute(sql.compiled.string, sql.arguments(params))
            return cursor.fetchone()
        except self._engine.dialect.loaded_dbapi.Error:
            connection.invalidate()  # a dropped connection, say: the pool makes a new one
            return None
        finally:
            connection.close()


@cache
def _fixed_headers(secure: bool) -> list[tuple[str, str]]:
    """A 304's headers but its ETag: as the view's, and Vary on the cookie, as Flask marks a
    response that read the session."""
    response = not_modified("")
    response.vary.add("Cookie")
    set_security_headers(response, secure)
    del response.headers["ETag"]
    return response.headers.to_wsgi_list()
