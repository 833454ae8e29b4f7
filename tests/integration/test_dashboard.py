"""The live usage dashboard: the billing engine's figures, from the counters only, with
ETags so an idle poll costs a 304."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app.billing_portal.closing import close_periods
from app.calls.operations import record_attempt, record_lead
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    Disposition,
    Invoice,
    Membership,
    Role,
    Seat,
    User,
)
from app.security import CONTENT_SECURITY_POLICY
from app.tenancy import tenant_context
from app.usage.polls import POLLED, poll_sql
from tests import environment
from tests.conftest import Auth
from tests.factories import make_plan, member, subscribed_account
from tests.live import live_app

_n = count(1)


def call(
    seat: Seat, leads: int, at: datetime, disposition: Disposition = Disposition.VOICEMAIL_NO_ANSWER
) -> None:
    for _ in range(leads):
        n = next(_n)
        lead, _ = record_lead(seat, f"D{n}", f"Lead {n}", "", "", "Zillow", at)
        record_attempt(seat, lead, f"DE{n}", at, disposition, 30, "Isa", "")
    db.session.commit()


def seats_of(account: Account) -> list[Seat]:
    with tenant_context(account.id):
        return list(db.session.scalars(sa.select(Seat).order_by(Seat.id)))


def text(response: object) -> str:
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


@pytest.fixture
def busy_account() -> Account:
    return make_busy_account()


def make_busy_account() -> Account:
    """Plan 100 at $10, started 10 days ago, 130 leads called so far over two seats."""
    account = subscribed_account(
        kind="agency",
        seats=2,
        plan=make_plan(100, 1000),
        start=(datetime.now(UTC) - timedelta(days=10)).date(),
    )
    first, second = seats_of(account)
    call(first, 100, datetime.now(UTC) - timedelta(days=2), Disposition.LIVE_TRANSFER)
    call(second, 30, datetime.now(UTC) - timedelta(hours=3))
    return account


@dataclass
class Polling:
    """A test client on a database that is really committed to: an unchanged poll is answered
    on a connection of its own, outside the session's transaction, and sees only what is
    committed."""

    client: FlaskClient
    auth: Auth
    busy_account: Account
    other_account: Account


@pytest.fixture
def polling() -> Iterator[Polling]:
    with live_app("dashboard_polls") as app, app.app_context():
        busy, other = make_busy_account(), subscribed_account(kind="brokerage", seats=2)
        db.session.commit()
        client = app.test_client()
        yield Polling(client, Auth(client), busy, other)


def test_the_dashboard_shows_usage_overage_and_projection(
    client: FlaskClient, auth: Auth, busy_account: Account
) -> None:
    auth.login(member(busy_account, Role.OWNER))
    page = text(client.get(f"/a/{busy_account.slug}/"))
    assert "130 / 100" in page
    assert "Overage so far $300.00" in page
    assert "30 leads at $10.00" in page
    assert "Transfers + appointments 100" in page
    assert "Projected by" in page
    assert "A bigger plan would cost less" not in page  # only one plan in the catalogue


def test_the_overage_shown_is_what_the_closing_invoice_bills(
    client: FlaskClient, auth: Auth, busy_account: Account
) -> None:
    auth.login(member(busy_account, Role.OWNER))
    shown = re.search(r"Overage so far \$([\d,.]+)", text(client.get(f"/a/{busy_account.slug}/")))
    assert shown is not None
    with tenant_context(busy_account.id):
        period = db.session.scalar(sa.select(BillingPeriod))
        assert period is not None
    close_periods([period.id], period.ends_at + timedelta(hours=3), trigger="test")
    with tenant_context(busy_account.id):
        invoice = db.session.scalar(sa.select(Invoice).where(Invoice.closes_period_id == period.id))
        assert invoice is not None
        billed = sum(line.amount_cents for line in invoice.lines if line.kind == "overage")
    assert f"{billed / 100:,.2f}" == shown.group(1)
    page = text(client.get(f"/a/{busy_account.slug}/?period=M1"))
    assert f"Invoice {invoice.number}" in page


@contextmanager
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def capture(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement.lower())

    engines = list(db.engines.values())  # the test's app context is already active
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", capture)


def test_the_dashboard_reads_counters_never_raw_call_data(
    client: FlaskClient, auth: Auth, busy_account: Account
) -> None:
    auth.login(member(busy_account, Role.OWNER))
    seat = seats_of(busy_account)[0]
    with statements() as seen:
        for path in ("/", "/?sort=client", "/?period=M1", f"/seats/{seat.id}/usage"):
            assert client.get(f"/a/{busy_account.slug}{path}").status_code == 200
    assert any("seat_usage" in sql for sql in seen)
    touching = [sql for sql in seen if re.search(r"\b(call_attempts|leads)\b", sql)]
    assert touching == []


@pytest.mark.parametrize("endpoint", sorted(POLLED))
@pytest.mark.parametrize("chosen_period", [False, True])
def test_the_unchanged_poll_reads_counters_never_raw_call_data(
    endpoint: str, chosen_period: bool
) -> None:
    """The poll's one statement (run on the driver's cursor, so `statements` never sees it)."""
    sql = poll_sql(db.engine.dialect, endpoint, chosen_period).compiled.string.lower()
    assert "seat_usage" in sql
    assert not re.search(r"\b(call_attempts|leads)\b", sql)


@pytest.mark.live
def test_an_unchanged_poll_answers_304_and_new_data_changes_the_etag(polling: Polling) -> None:
    client, auth, busy_account = polling.client, polling.auth, polling.busy_account
    viewer = member(busy_account, Role.VIEWER)
    db.session.commit()
    auth.login(viewer)
    url = f"/a/{busy_account.slug}/"
    headers = {"HX-Request": "true"}
    first = client.get(url, headers=headers)
    assert first.status_code == 200
    assert 'id="usage-live"' in first.get_data(as_text=True)
    assert "<html" not in first.get_data(as_text=True)  # the partial alone
    assert "HX-Request" in first.headers["Vary"]
    etag = first.headers["ETag"].strip('"')
    again = client.get(url, headers={**headers, "If-None-Match": f'"{etag}"'})
    assert again.status_code == 304
    # Answered ahead of Flask, with the headers every response carries.
    assert again.headers["ETag"] == f'"{etag}"'
    assert again.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert {"HX-Request", "Cookie"} <= set(again.headers["Vary"].replace(" ", "").split(","))
    call(seats_of(busy_account)[1], 1, datetime.now(UTC) - timedelta(minutes=5))
    changed = client.get(url, headers={**headers, "If-None-Match": f'"{etag}"'})
    assert changed.status_code == 200
    assert "131 / 100" in text(changed)
    # The full page and the partial never share a tag.
    assert client.get(url).headers["ETag"] != changed.headers["ETag"]


def poll_tag(client: FlaskClient, url: str) -> str:
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return str(response.headers["ETag"])


@pytest.mark.live
def test_an_unchanged_poll_never_reaches_the_view_and_a_page_reads_twice(
    polling: Polling,
) -> None:
    """An idle tab's poll is answered ahead of the app, by one statement on the driver's
    cursor (see the next test); the full page reads the signed-in user with the user's
    accounts (the switcher's list, which holds this account and the membership), then the
    period with its version."""
    client, auth, busy_account = polling.client, polling.auth, polling.busy_account
    viewer = member(busy_account, Role.VIEWER)
    db.session.commit()
    auth.login(viewer)
    url = f"/a/{busy_account.slug}/"
    tag = poll_tag(client, url)
    client.get(url)  # the page's figures are rendered once per version, then reused
    with statements() as seen:
        assert (
            client.get(url, headers={"HX-Request": "true", "If-None-Match": tag}).status_code == 304
        )
    assert seen == []
    with statements() as seen:
        assert client.get(url).status_code == 200
    assert len(seen) == 2, seen
    assert "from users left outer join memberships" in seen[0]
    assert "seat_usage" in seen[1]


@pytest.mark.live
@pytest.mark.skipif(not environment.is_postgres(), reason="autocommit reads are PostgreSQL's")
def test_a_page_of_reads_runs_in_autocommit_and_a_page_that_may_write_in_a_transaction() -> None:
    """The dashboard writes nothing: its reads go without BEGIN and COMMIT round trips. Pages
    not marked so keep their transaction. (Each request in an application context of its
    own, as served.)"""
    with live_app("dashboard_autocommit") as app:
        with app.app_context():
            account = make_busy_account()
            owner = member(account, Role.OWNER)
            db.session.commit()
            slug, engine = account.slug, db.engine
            client = app.test_client()
            Auth(client).login(owner)
        modes: list[bool] = []

        def note(conn: sa.Connection, *_args: object) -> None:
            modes.append(conn.connection.dbapi_connection.autocommit)  # type: ignore[union-attr]

        sa.event.listen(engine, "before_cursor_execute", note)
        try:
            assert client.get(f"/a/{slug}/").status_code == 200
            in_autocommit, modes[:] = list(modes), []
            assert client.get(f"/a/{slug}/seats/").status_code == 200
            in_transaction = list(modes)
        finally:
            sa.event.remove(engine, "before_cursor_execute", note)
    assert in_autocommit, "the dashboard ran no query"
    assert all(in_autocommit), in_autocommit
    assert in_transaction, "the seats page ran no query"
    assert not any(in_transaction), in_transaction


@pytest.mark.live
@pytest.mark.skipif(not environment.is_postgres(), reason="drops a PostgreSQL connection")
def test_a_poll_that_meets_a_dropped_connection_is_answered_all_the_same(
    polling: Polling,
) -> None:
    """A database restart drops the poll's pooled connection: the view answers that poll, and
    the next one is answered ahead of it again, on a new connection."""
    client, auth, busy_account = polling.client, polling.auth, polling.busy_account
    auth.login(member(busy_account, Role.VIEWER))
    db.session.commit()
    url = f"/a/{busy_account.slug}/"
    headers = {"HX-Request": "true", "If-None-Match": poll_tag(client, url)}
    with statements() as seen:
        assert client.get(url, headers=headers).status_code == 304
    assert seen == []
    dropped = db.session.scalars(
        sa.text(
            "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND datname = current_database() AND query LIKE '%member_seat_id%'"
        )
    ).all()
    assert len(dropped) == 1
    db.session.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": dropped[0]})
    db.session.commit()
    with statements() as seen:
        assert client.get(url, headers=headers).status_code == 304
    assert seen != []  # the view's
    with statements() as seen:
        assert client.get(url, headers=headers).status_code == 304
    assert seen == []


@pytest.mark.live
def test_an_unchanged_poll_is_304_only_for_a_member_who_may_still_see_the_page(
    polling: Polling,
) -> None:
    """The 304 shortcut checks the session's user, the membership and the seat as the page
    does: a tag that still matches is worth nothing to anyone who lost access."""
    client, auth, busy_account = polling.client, polling.auth, polling.busy_account
    other_account = polling.other_account
    mine, other = seats_of(busy_account)
    viewer = member(busy_account, Role.VIEWER)
    seat_member = member(busy_account, Role.SEAT_MEMBER, seat_id=mine.id)
    outsider = member(other_account, Role.OWNER)
    db.session.commit()
    page, seat_page = f"/a/{busy_account.slug}/", f"/a/{busy_account.slug}/seats/{other.id}/usage"

    auth.login(viewer)
    tag, seat_tag = poll_tag(client, page), poll_tag(client, seat_page)
    headers = {"HX-Request": "true", "If-None-Match": tag}
    assert client.get(page, headers=headers).status_code == 304
    # Another period in the query is another page.
    assert client.get(f"{page}?period=M1", headers=headers).status_code == 200

    auth.logout()
    assert client.get(page, headers=headers).status_code != 304
    auth.login(outsider)  # a member of another account, holding this account's tag
    assert client.get(page, headers=headers).status_code == 404
    auth.logout()
    auth.login(seat_member)  # their own seat only, whatever tag they hold
    assert client.get(page, headers=headers).status_code == 200
    seat_headers = {"HX-Request": "true", "If-None-Match": seat_tag}
    assert client.get(seat_page, headers=seat_headers).status_code == 404

    auth.logout()
    auth.login(viewer)
    assert client.get(page, headers=headers).status_code == 304
    with tenant_context(busy_account.id):
        db.session.execute(sa.delete(Membership).where(Membership.user_id == viewer.id))
    db.session.commit()
    assert client.get(page, headers=headers).status_code == 404
    viewer.is_active_user = False
    db.session.commit()
    assert client.get(page, headers=headers).status_code != 304


def test_a_seat_member_sees_only_their_seat(
    client: FlaskClient, auth: Auth, busy_account: Account
) -> None:
    mine, other = seats_of(busy_account)
    auth.login(member(busy_account, Role.SEAT_MEMBER, seat_id=mine.id))
    page = text(client.get(f"/a/{busy_account.slug}/"))
    assert "100 / 100" in page  # their seat's 100 leads, not the account's 130
    assert "Overage so far" not in page
    assert client.get(f"/a/{busy_account.slug}/seats/{mine.id}/usage").status_code == 200
    assert client.get(f"/a/{busy_account.slug}/seats/{other.id}/usage").status_code == 404


def test_an_unknown_period_is_404_and_an_account_with_no_plan_says_what_to_do(
    client: FlaskClient, auth: Auth, owner: User, account: Account
) -> None:
    auth.login(owner)
    assert client.get(f"/a/{account.slug}/?period=M9").status_code == 404
    assert client.get(f"/a/{account.slug}/?period=bogus").status_code == 404
