"""The audit log page: who did what and when, for owners and admins, filtered by kind of change
and by seat; and the sentences it writes for each kind of event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.accounts.queries import describe
from app.audit import record
from app.extensions import db
from app.models import Account, AuditEvent, User
from app.seats.operations import PersonDetails, set_backup
from app.tenancy import tenant_context
from tests import factories
from tests.conftest import Auth


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def entries(page: str) -> int:
    """Rows of the log shown (the header row aside)."""
    return page.count("<tr>") - 1


def audit_url(account: Account) -> str:
    return f"/a/{account.slug}/audit"


@pytest.fixture(autouse=True)
def inside_the_account(account: Account) -> Iterator[None]:
    with tenant_context(account.id):
        yield


@pytest.fixture
def backup_history(account: Account, owner: User) -> None:
    """Add, replace and remove a Backup on the first seat, as the owner."""
    seat = factories.first_seat(account)
    set_backup(account, seat, PersonDetails("Drew Patel", "drew@x.example"), actor=owner)
    set_backup(account, seat, PersonDetails("Emery Lee", "emery@x.example"), actor=owner)
    set_backup(account, seat, None, actor=owner)


@pytest.mark.usefixtures("backup_history")
@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_read_who_did_what_and_when(
    request: pytest.FixtureRequest, client: FlaskClient, auth: Auth, account: Account, role: str
) -> None:
    user: User = request.getfixturevalue(role)
    owner: User = request.getfixturevalue("owner")
    auth.login(user)
    page = text(client.get(audit_url(account)))
    assert "Added Backup drew@x.example" in page
    assert "Replaced Backup drew@x.example with emery@x.example" in page
    assert "Removed Backup emery@x.example" in page
    assert owner.name in page
    assert "Invoice SW-" in page  # the signup invoice, issued by the system
    assert "Seatwise" in page
    assert page.index("Removed Backup") < page.index("Added Backup")  # newest first


@pytest.mark.usefixtures("backup_history")
def test_filtering_by_kind_and_by_seat(
    client: FlaskClient, auth: Auth, owner: User, account: Account
) -> None:
    first = factories.first_seat(account)
    auth.login(owner)
    seats_only = text(client.get(audit_url(account), query_string={"kind": "seats"}))
    assert "Replaced Backup" in seats_only
    assert "Invoice SW-" not in seats_only
    invoices = text(client.get(audit_url(account), query_string={"kind": "invoices"}))
    assert "Invoice SW-" in invoices
    assert "Backup" not in invoices.split('id="audit-results"')[1]
    one_seat = client.get(
        audit_url(account), query_string={"seat": first.id}, headers={"HX-Request": "true"}
    )
    page = text(one_seat)
    assert page.lstrip().startswith('<div id="audit-results"')
    assert "Removed Backup" in page
    assert entries(page) == 3  # the three Backup changes (the seat was made by a factory)


def test_another_accounts_events_never_show(
    client: FlaskClient, auth: Auth, owner: User, account: Account, other_account: Account
) -> None:
    theirs = factories.first_seat(other_account)
    with tenant_context(other_account.id):
        set_backup(other_account, theirs, PersonDetails("Secret Person", "secret@x.example"))
    auth.login(owner)
    assert "secret@x.example" not in text(client.get(audit_url(account)))
    by_their_seat = text(client.get(audit_url(account), query_string={"seat": theirs.id}))
    assert "secret@x.example" not in by_their_seat
    assert "Nothing recorded" in by_their_seat


def test_the_log_comes_in_pages(
    client: FlaskClient, auth: Auth, owner: User, account: Account
) -> None:
    seat = factories.first_seat(account)
    for n in range(60):
        record(
            "seat.deactivated" if n % 2 else "seat.reactivated",
            account_id=account.id,
            target=seat,
            details={"reference": seat.reference},
        )
    auth.login(owner)
    first = text(client.get(audit_url(account)))
    assert entries(first) == 50
    assert "Page 1 of 2" in first
    second = text(client.get(audit_url(account), query_string={"page": 2}))
    assert "Page 2 of 2" in second
    assert entries(second) == 60 + 2 - 50  # + the subscription and its invoice


def test_the_seat_page_shows_its_latest_changes(
    client: FlaskClient, auth: Auth, owner: User, account: Account, backup_history: None
) -> None:
    seat = factories.first_seat(account)
    auth.login(owner)
    page = text(client.get(f"/a/{account.slug}/seats/{seat.id}"))
    assert "Removed Backup emery@x.example" in page
    assert f"{audit_url(account)}?seat={seat.id}" in page


def event(action: str, **details: Any) -> AuditEvent:
    return AuditEvent(action=action, actor_label="system", details=details)


@pytest.mark.parametrize(
    ("audit_event", "sentence"),
    [
        (
            event(
                "seat.created",
                reference="ST-ABC234",
                primary="a@x.example",
                client="Summit",
                started_from="ST-XYZ789",
            ),
            "Added seat ST-ABC234 for a@x.example (Summit), started from ST-XYZ789",
        ),
        (
            event("seat.fee_added", fee_cents=5700, period="M2"),
            "Seat fee $57.00 put on the M2 closing invoice",
        ),
        (
            event("seat.backup_changed", **{"from": None, "to": "b@x.example"}),
            "Added Backup b@x.example",
        ),
        (event("seat.deactivated", reference="ST-ABC234"), "Deactivated seat ST-ABC234"),
        (
            event("account.created", kind="agency", plan="P100"),
            "Created the account (Marketing agency) on plan P100",
        ),
        (
            event("subscription.created", plan="P100", start="2026-03-31"),
            "Subscribed to plan P100 from 31 Mar 2026",
        ),
        (
            event("invoice.issued", number="SW-2026-000001", total_cents=131400),
            "Invoice SW-2026-000001 issued for $1,314.00",
        ),
        (event("plan.upgraded", **{"from": "P100", "to": "T200"}), "Upgraded from P100 to T200"),
        (
            event("plan.downgrade_scheduled", on="2026-04-30", **{"from": "T200", "to": "P100"}),
            "Scheduled a downgrade from T200 to P100 on 30 Apr 2026",
        ),
        (
            event("subscription.cancelled", ends_at="2026-04-30T04:00:00+00:00"),
            "Cancelled the plan at the end of the period (30 Apr 2026)",
        ),
        (event("subscription.cancel_undone"), "Undid the cancellation"),
        (
            event("member.invited", email="j@x.example", role="seat_member", seat="ST-ABC234"),
            "Invited j@x.example as seat member of seat ST-ABC234",
        ),
        (
            event(
                "member.role_changed",
                email="j@x.example",
                seat=None,
                **{"from": "viewer", "to": "admin"},
            ),
            "Changed j@x.example from viewer to admin",
        ),
        (
            event("member.removed", email="j@x.example", role="viewer"),
            "Removed j@x.example (viewer)",
        ),
        (
            event("period.renewed", closed="M3", plan="T200"),
            "Closed M3; the next period runs on plan T200",
        ),
        (event("subscription.ended"), "The plan ended with the period (it was cancelled)"),
        (
            event("billing.close_enqueued", period="M2", scope="period"),
            "The Seatwise team re-ran the close of M2",
        ),
        (event("something.new"), "something.new"),
    ],
)
def test_each_event_reads_as_a_sentence(audit_event: AuditEvent, sentence: str) -> None:
    assert describe(audit_event) == sentence


def test_the_audit_log_holds_only_what_the_tenant_filter_lets_through(account: Account) -> None:
    with tenant_context(account.id):
        ids = set(db.session.scalars(sa.select(AuditEvent.account_id)))
    assert ids == {account.id}
