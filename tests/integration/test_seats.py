"""Seats inside an account: the list (filters, search, sort, pages, 1,000 seats), adding a seat,
the seat page, the Backup inline, deactivation, and a new seat for a different Primary."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.extensions import db
from app.models import (
    Account,
    AuditEvent,
    BillingPeriod,
    PeriodStatus,
    Person,
    Seat,
    SeatStatus,
    SeatUsage,
    User,
)
from app.seats.operations import PersonDetails, SeatDetails, SeatRuleError, create_seat
from app.tenancy import tenant_context
from tests import factories
from tests.conftest import Auth
from tests.onboarding_forms import seat_form, with_backup

HX = {"HX-Request": "true"}


def seats_url(account: Account, path: str = "") -> str:
    return f"/a/{account.slug}/seats/{path}"


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def seats_of(account: Account) -> list[Seat]:
    with tenant_context(account.id):
        return list(db.session.scalars(sa.select(Seat).order_by(Seat.id)))


def open_period(account: Account) -> BillingPeriod:
    with tenant_context(account.id):
        return db.session.scalars(
            sa.select(BillingPeriod).where(BillingPeriod.status == PeriodStatus.OPEN)
        ).one()


def audit_actions(account: Account, seat: Seat | None = None) -> list[tuple[str, dict[str, Any]]]:
    with tenant_context(account.id):
        query = sa.select(AuditEvent).order_by(AuditEvent.id)
        if seat is not None:
            query = query.where(AuditEvent.target_type == "seat", AuditEvent.target_id == seat.id)
        return [(event.action, event.details) for event in db.session.scalars(query)]


@pytest.fixture(autouse=True)
def inside_the_account(account: Account) -> Iterator[None]:
    """The test reads the account's rows (and lazy-loads their people) as its members would."""
    with tenant_context(account.id):
        yield


@pytest.fixture
def signed_in(client: FlaskClient, auth: Auth, owner: User) -> FlaskClient:
    auth.login(owner)
    return client


# --- the list -------------------------------------------------------------------------------


def test_the_list_shows_each_seat_with_its_people_status_and_leads(
    signed_in: FlaskClient, account: Account
) -> None:
    first, second = seats_of(account)
    with tenant_context(account.id):
        first.last_lead_at = datetime.now(UTC) - timedelta(days=2)
        db.session.add(
            SeatUsage(seat_id=first.id, period_id=open_period(account).id, leads_called=37)
        )
        db.session.flush()
    page = text(signed_in.get(seats_url(account)))
    for seat in (first, second):
        assert seat.reference in page
        assert seat.primary.name in page
    assert ">37<" in page
    assert "Active" in page
    assert "Idle" in page
    assert "Add a seat" in page


def test_search_finds_seats_by_name_email_client_or_reference(
    signed_in: FlaskClient, account: Account
) -> None:
    first, second = seats_of(account)
    for query in (first.primary.name.upper(), first.primary.email, first.reference.lower()):
        page = text(signed_in.get(seats_url(account), query_string={"q": query}))
        assert first.reference in page
        assert second.reference not in page
    page = text(signed_in.get(seats_url(account), query_string={"q": "nobody-like-this"}))
    assert "No seats match" in page


def test_filters_by_client_and_by_status(signed_in: FlaskClient, account: Account) -> None:
    first, second = seats_of(account)
    with tenant_context(account.id):
        first.deactivated_at = datetime.now(UTC)
        db.session.flush()
    by_client = text(signed_in.get(seats_url(account), query_string={"client": first.client_label}))
    assert first.reference in by_client
    assert second.reference not in by_client
    deactivated = text(signed_in.get(seats_url(account), query_string={"status": "deactivated"}))
    assert first.reference in deactivated
    assert second.reference not in deactivated
    idle = text(signed_in.get(seats_url(account), query_string={"status": "idle"}))
    assert second.reference in idle
    assert first.reference not in idle


def test_sorting_by_leads_called_puts_the_busiest_first(
    signed_in: FlaskClient, account: Account
) -> None:
    first, second = seats_of(account)
    with tenant_context(account.id):
        db.session.add(
            SeatUsage(seat_id=second.id, period_id=open_period(account).id, leads_called=5)
        )
        db.session.flush()
    page = text(signed_in.get(seats_url(account), query_string={"sort": "-leads"}))
    assert page.index(second.reference) < page.index(first.reference)
    assert 'aria-sort="descending"' in page


def test_an_htmx_filter_answers_only_the_results(signed_in: FlaskClient, account: Account) -> None:
    response = signed_in.get(seats_url(account), query_string={"q": "Primary"}, headers=HX)
    assert text(response).lstrip().startswith('<div id="seat-results"')
    assert "HX-Request" in response.vary


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = db.session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def add_many_seats(account: Account, count: int) -> None:
    with tenant_context(account.id):
        people = [
            Person(name=f"Agent {n:04d}", email=f"agent{n}@many.example") for n in range(count)
        ]
        db.session.add_all(people)
        db.session.flush()
        db.session.add_all(
            Seat(
                reference=f"ST-M{n:05d}",
                client_label=f"Client {n % 40:02d}",
                primary_person_id=person.id,
                last_lead_at=datetime.now(UTC) - timedelta(days=n % 30),
            )
            for n, person in enumerate(people)
        )
        db.session.flush()


def test_a_thousand_seats_list_fast_in_pages_with_a_fixed_number_of_queries(
    signed_in: FlaskClient, account: Account
) -> None:
    add_many_seats(account, 1000)
    signed_in.get(seats_url(account))  # warm up: template compilation, first connection
    with counted_statements() as statements:
        started = time.perf_counter()
        response = signed_in.get(seats_url(account), query_string={"page": 7, "sort": "-leads"})
        elapsed = time.perf_counter() - started
    page = text(response)
    assert response.status_code == 200
    assert page.count('id="seat-row-') == 50
    assert "Page 7 of 21" in page
    assert "Showing 301–350 of 1002 seats" in page
    assert len(statements) <= 16, statements
    assert elapsed < 2.0
    searched = text(signed_in.get(seats_url(account), query_string={"q": "agent 0999"}))
    assert searched.count('id="seat-row-') == 1


def test_a_seat_member_sees_only_their_own_seat(
    client: FlaskClient, auth: Auth, seat_member: User, account: Account
) -> None:
    own, other = seats_of(account)
    auth.login(seat_member)
    page = text(client.get(seats_url(account)))
    assert own.reference in page
    assert other.reference not in page
    assert "Add a seat" not in page
    assert client.get(seats_url(account, str(own.id))).status_code == 200
    assert client.get(seats_url(account, str(other.id))).status_code == 404
    assert client.get(seats_url(account, f"{other.id}/backup")).status_code == 404


def test_a_viewer_sees_every_seat_and_no_way_to_change_them(
    client: FlaskClient, auth: Auth, viewer: User, account: Account
) -> None:
    auth.login(viewer)
    page = text(client.get(seats_url(account)))
    assert all(seat.reference in page for seat in seats_of(account))
    assert "Add a seat" not in page
    seat_page = text(client.get(seats_url(account, str(seats_of(account)[0].id))))
    assert "Deactivate" not in seat_page
    assert "Replace" not in seat_page
    assert "The Primary of a seat never changes" in seat_page  # explained, not offered
    assert "Start a new seat with a different Primary" not in seat_page


# --- adding a seat --------------------------------------------------------------------------


def test_the_add_seat_form_shows_the_fee_and_when_it_is_billed(
    signed_in: FlaskClient, account: Account
) -> None:
    page = text(signed_in.get(seats_url(account, "new")))
    assert "$57.00" in page
    assert "one-time seat fee" in page
    assert "M1</strong> closing invoice" in page


def test_adding_a_seat_creates_it_with_its_fee_on_the_open_period_and_audits_it(
    signed_in: FlaskClient, account: Account, owner: User
) -> None:
    response = signed_in.post(seats_url(account, "new"), data=with_backup())
    seat = seats_of(account)[-1]
    assert response.status_code == 303
    assert response.headers["Location"].endswith(seats_url(account, str(seat.id)))
    assert seat.primary.name == "Avery Stone"
    assert seat.primary.mobile == "+13125550141"
    assert seat.backup is not None
    assert seat.backup.email == "drew@summit.example"
    assert seat.client_label == "Summit Home Team"
    assert seat.onboarding["transfer_numbers"] == ["+13125550141"]
    assert seat.onboarding["lead_sources"] == ["zillow", "realtor"]
    assert seat.onboarding["crm_name"] == "Follow Up Boss"
    assert seat.onboarding["transfer_hours"] == ["09:00", "18:00"]
    assert seat.fee_cents == 5700
    assert seat.fee_period_id == open_period(account).id
    assert [action for action, _ in audit_actions(account, seat)] == [
        "seat.created",
        "seat.fee_added",
    ]
    with tenant_context(account.id):
        created = db.session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.action == "seat.created")
            .order_by(AuditEvent.id.desc())
        ).first()
    assert created is not None
    assert created.actor_id == owner.id


def test_an_admin_adds_seats_too(
    client: FlaskClient, auth: Auth, admin: User, account: Account
) -> None:
    auth.login(admin)
    assert client.post(seats_url(account, "new"), data=seat_form()).status_code == 303
    assert len(seats_of(account)) == 3


@pytest.mark.parametrize(
    ("changes", "field_id", "message"),
    [
        ({"primary-mobile": "555-0100"}, "primary-mobile", "valid phone number"),
        ({"primary-email": "avery@summit.test"}, "primary-email", "email"),
        ({"primary-name": ""}, "primary-name", "This field is required."),
        ({"client_label": ""}, "client_label", "Name the client this seat is for."),
        ({"lead_sources": None}, "lead_sources", "Choose at least one lead source."),
        ({"crm_name": ""}, "crm_name", "Name the CRM your leads come from."),
        ({"transfer_1": ""}, "transfer_1", "at least one number for live transfers"),
        ({"transfer_to": "08:00"}, "transfer_to", "end after they start"),
        ({"backup-name": "Half A. Backup"}, "backup-email", "Needed for a Backup"),
        (
            {
                "backup-name": "Same Person",
                "backup-email": "avery@summit.example",
                "backup-mobile": "(312) 555-0199",
            },
            "backup-email",
            "someone other than the Primary",
        ),
    ],
)
def test_a_bad_form_comes_back_with_the_values_and_the_error_beside_the_field(
    signed_in: FlaskClient, account: Account, changes: dict[str, Any], field_id: str, message: str
) -> None:
    form = seat_form(**changes)
    response = signed_in.post(seats_url(account, "new"), data=form)
    page = text(response)
    assert response.status_code == 422
    assert f'id="{field_id}-error-1"' in page
    error = page[page.index(f'id="{field_id}-error-1"') :][:300]
    assert message in error
    for kept in ("Summit Home Team", "Avery Stone", "Follow Up Boss"):
        if kept not in changes.values() and kept in form.values():
            assert kept in page
    assert len(seats_of(account)) == 2


def test_a_solo_account_has_one_seat_and_cannot_add_another(
    client: FlaskClient, auth: Auth
) -> None:
    solo = factories.subscribed_account(kind="solo", seats=1)
    owner = factories.member(solo, factories.Role.OWNER)
    auth.login(owner)
    page = text(client.get(seats_url(solo, "new")))
    assert "A solo account has one seat" in page
    assert "<form" not in page.split('id="main"')[1]
    assert client.post(seats_url(solo, "new"), data=seat_form()).status_code == 409
    assert "Add a seat" not in text(client.get(seats_url(solo)))
    with tenant_context(solo.id), pytest.raises(SeatRuleError, match="one seat"):
        create_seat(solo, SeatDetails(PersonDetails("Second", "second@solo.example")))
    assert len(seats_of(solo)) == 1


def test_a_seat_needs_an_open_period_for_its_fee(signed_in: FlaskClient, account: Account) -> None:
    open_period(account).status = PeriodStatus.CLOSED
    db.session.commit()  # a refused request rolls its own work back, not this
    response = signed_in.post(seats_url(account, "new"), data=seat_form())
    assert response.status_code == 422
    assert "no open billing period" in text(response)
    assert len(seats_of(account)) == 2


# --- the seat page --------------------------------------------------------------------------


def test_the_seat_page_shows_people_onboarding_status_usage_and_the_call_report(
    signed_in: FlaskClient, account: Account
) -> None:
    signed_in.post(seats_url(account, "new"), data=with_backup())
    seat = seats_of(account)[-1]
    with tenant_context(account.id):
        db.session.add(
            SeatUsage(
                seat_id=seat.id,
                period_id=open_period(account).id,
                leads_received=12,
                leads_called=9,
                leads_contacted=6,
                transfers=2,
                appointments=1,
            )
        )
        db.session.flush()
    page = text(signed_in.get(seats_url(account, str(seat.id))))
    for expected in (
        "Avery Stone",
        "Drew Patel",
        "(312) 555-0141",
        "Zillow, Realtor.com",
        "CRM: Follow Up Boss",
        "Mon–Fri, 09:00–18:00",
        "Spanish speakers welcome.",
        "67% of called",
        "$57.00 on the M1 closing invoice",
        "Idle",
        "Primary of a seat never changes",
        seats_url(account, f"{seat.id}/calls"),
        seats_url(account, f"{seat.id}/new-primary"),
    ):
        assert expected in page, expected


# --- the Backup -----------------------------------------------------------------------------


def test_the_backup_form_opens_and_closes_inline(signed_in: FlaskClient, account: Account) -> None:
    seat = seats_of(account)[0]
    opened = text(signed_in.get(seats_url(account, f"{seat.id}/backup/edit"), headers=HX))
    assert opened.lstrip().startswith('<section class="card" id="seat-backup"')
    assert "Add a Backup" in opened
    assert 'hx-post="' + seats_url(account, f"{seat.id}/backup") in opened
    closed = text(signed_in.get(seats_url(account, f"{seat.id}/backup"), headers=HX))
    assert closed.lstrip().startswith('<section class="card" id="seat-backup"')
    assert "<form" not in closed.split("Add a Backup")[0]
    # Without JavaScript the same links open the seat page with the form.
    assert "Save Backup" in text(signed_in.get(seats_url(account, f"{seat.id}/backup/edit")))


def backup_post(name: str, email: str, mobile: str) -> dict[str, str]:
    return {"name": name, "email": email, "mobile": mobile, "profession": "agent", "licence": ""}


def test_adding_replacing_and_removing_the_backup_inline_each_audited(
    signed_in: FlaskClient, account: Account
) -> None:
    seat = seats_of(account)[0]
    backup_url = seats_url(account, f"{seat.id}/backup")

    added = signed_in.post(
        backup_url,
        data=backup_post("Drew Patel", "Drew@Summit.example", "312 555 0142"),
        headers=HX,
    )
    assert added.status_code == 200
    assert text(added).lstrip().startswith('<div id="seat"')
    assert "Backup added: Drew Patel." in text(added)
    assert 'hx-swap-oob="true"' in text(added)
    first_backup = seat.backup
    assert first_backup is not None
    assert (first_backup.email, first_backup.mobile) == ("drew@summit.example", "+13125550142")

    replaced = signed_in.post(
        backup_url,
        data=backup_post("Emery Lee", "emery@summit.example", "(312) 555-0143"),
        headers=HX,
    )
    assert "Backup replaced: Emery Lee." in text(replaced)
    db.session.refresh(seat)
    assert seat.backup is not None
    assert seat.backup.name == "Emery Lee"
    assert seat.backup.id != first_backup.id  # a new person, never an edit of the old one

    removed = signed_in.post(f"{backup_url}/remove", headers=HX)
    assert "Backup removed." in text(removed)
    db.session.refresh(seat)
    assert seat.backup_person_id is None

    changes = [
        details
        for action, details in audit_actions(account, seat)
        if action == "seat.backup_changed"
    ]
    assert changes == [
        {"change": "added", "from": None, "to": "drew@summit.example"},
        {"change": "replaced", "from": "drew@summit.example", "to": "emery@summit.example"},
        {"change": "removed", "from": "emery@summit.example", "to": None},
    ]


def test_without_javascript_a_backup_change_redirects_to_the_seat_page(
    signed_in: FlaskClient, account: Account
) -> None:
    seat = seats_of(account)[0]
    response = signed_in.post(
        seats_url(account, f"{seat.id}/backup"),
        data=backup_post("Drew Patel", "drew@summit.example", "(312) 555-0142"),
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(seats_url(account, str(seat.id)))
    assert "Backup added" in text(signed_in.get(response.headers["Location"]))


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        (backup_post("Drew Patel", "drew@summit.example", "12"), "valid phone number"),
        (backup_post("", "drew@summit.example", "(312) 555-0142"), "This field is required."),
        (backup_post("Drew Patel", "not-an-email", "(312) 555-0142"), "email"),
    ],
)
def test_a_bad_backup_comes_back_inline_with_the_error(
    signed_in: FlaskClient, account: Account, posted: dict[str, str], message: str
) -> None:
    seat = seats_of(account)[0]
    response = signed_in.post(seats_url(account, f"{seat.id}/backup"), data=posted, headers=HX)
    assert response.status_code == 422
    page = text(response)
    assert message in page
    assert "Save Backup" in page
    assert posted["email"] in page
    assert seat.backup_person_id is None


def test_the_backup_cannot_be_the_primary(signed_in: FlaskClient, account: Account) -> None:
    seat = seats_of(account)[0]
    response = signed_in.post(
        seats_url(account, f"{seat.id}/backup"),
        data=backup_post("Me Again", seat.primary.email, "(312) 555-0142"),
        headers=HX,
    )
    assert response.status_code == 422
    assert "someone other than the Primary" in text(response)
    assert seat.backup_person_id is None


def test_removing_a_backup_that_is_not_there_is_refused(
    signed_in: FlaskClient, account: Account
) -> None:
    seat = seats_of(account)[0]
    response = signed_in.post(seats_url(account, f"{seat.id}/backup/remove"), headers=HX)
    assert response.status_code == 422
    assert "no Backup to remove" in text(response)


# --- deactivate and reactivate --------------------------------------------------------------


def test_deactivating_and_reactivating_a_seat_is_shown_and_audited(
    signed_in: FlaskClient, account: Account
) -> None:
    seat = seats_of(account)[0]
    off = signed_in.post(seats_url(account, f"{seat.id}/deactivate"), headers=HX)
    assert off.status_code == 200
    assert "Seat deactivated." in text(off)
    assert "Reactivate" in text(off)
    assert seat.deactivated_at is not None
    assert not seat.is_worked
    assert seat.status is SeatStatus.VALID  # still on the plan
    again = signed_in.post(seats_url(account, f"{seat.id}/deactivate"), headers=HX)
    assert again.status_code == 422
    assert "already deactivated" in text(again)

    on = signed_in.post(seats_url(account, f"{seat.id}/reactivate"))
    assert on.status_code == 303
    assert seat.deactivated_at is None
    actions = [action for action, _ in audit_actions(account, seat)]
    assert actions == ["seat.deactivated", "seat.reactivated"]
    # Reactivating charges nothing: the seat never left the plan.
    assert seat.fee_cents == 0


def test_an_expired_seat_can_no_longer_change(signed_in: FlaskClient, account: Account) -> None:
    seat = seats_of(account)[0]
    seat.status = SeatStatus.EXPIRED
    db.session.commit()  # a refused request rolls its own work back, not this
    for path, data in (
        ("deactivate", {}),
        ("backup", backup_post("Drew Patel", "drew@summit.example", "(312) 555-0142")),
    ):
        response = signed_in.post(seats_url(account, f"{seat.id}/{path}"), data=data, headers=HX)
        assert response.status_code == 422
        assert "expired" in text(response)


# --- a different Primary: a new seat --------------------------------------------------------


def test_a_new_primary_starts_a_new_seat_prefilled_from_the_old_one(
    signed_in: FlaskClient, account: Account
) -> None:
    signed_in.post(seats_url(account, "new"), data=with_backup())
    old = seats_of(account)[-1]
    old_primary = (old.primary_person_id, old.primary.name, old.primary.email)

    form_page = text(signed_in.get(seats_url(account, f"{old.id}/new-primary")))
    assert 'value="Summit Home Team"' in form_page
    assert 'value="Follow Up Boss"' in form_page
    assert 'value="(312) 555-0141"' in form_page  # the transfer number, shown nationally
    assert 'value="Drew Patel"' in form_page  # the Backup comes along
    assert re.search(r'<input[^>]*id="primary-name"[^>]*value=""', form_page)
    assert "Deactivate " + old.reference in form_page
    assert form_page.count("It stays on the plan and can be reactivated") == 1  # said once

    posted = with_backup(
        **{
            "primary-name": "Finley Brooks",
            "primary-email": "finley@summit.example",
            "primary-mobile": "(312) 555-0150",
            "deactivate_old": "y",
        }
    )
    response = signed_in.post(seats_url(account, f"{old.id}/new-primary"), data=posted)
    assert response.status_code == 303
    new = seats_of(account)[-1]
    assert new.id != old.id
    assert new.primary.name == "Finley Brooks"
    assert new.onboarding["started_from"] == old.reference
    assert new.fee_cents == 5700
    db.session.refresh(old)
    assert (old.primary_person_id, old.primary.name, old.primary.email) == old_primary
    assert old.deactivated_at is not None
    created = [d for a, d in audit_actions(account, new) if a == "seat.created"]
    assert created[0]["started_from"] == old.reference


def test_a_new_primary_can_leave_the_old_seat_worked(
    signed_in: FlaskClient, account: Account
) -> None:
    old = seats_of(account)[0]
    posted = seat_form(**{"primary-name": "Finley Brooks", "primary-email": "finley@x.example"})
    response = signed_in.post(seats_url(account, f"{old.id}/new-primary"), data=posted)
    assert response.status_code == 303
    assert old.is_worked
    assert len(seats_of(account)) == 3
