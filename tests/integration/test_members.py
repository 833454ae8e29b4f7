"""The team page: the owner invites people with a role, changes roles and removes members; the
last owner can be neither demoted nor removed; only owners manage the team."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.accounts.operations import MemberRuleError, change_role
from app.extensions import db
from app.models import Account, AuditEvent, Membership, OutboxEmail, Role, User
from app.tenancy import tenant_context
from tests import factories
from tests.conftest import Auth

HX = {"HX-Request": "true"}


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def team_url(account: Account, path: str = "") -> str:
    return f"/a/{account.slug}/members{path}"


def membership_of(user: User) -> Membership:
    return db.session.scalars(sa.select(Membership).where(Membership.user_id == user.id)).one()


def emails_to(address: str) -> list[OutboxEmail]:
    return list(db.session.scalars(sa.select(OutboxEmail).where(OutboxEmail.to_address == address)))


@pytest.fixture(autouse=True)
def inside_the_account(account: Account) -> Iterator[None]:
    with tenant_context(account.id):
        yield


@pytest.fixture
def signed_in(client: FlaskClient, auth: Auth, owner: User) -> FlaskClient:
    auth.login(owner)
    return client


def keep() -> None:
    """Commit the test's rows: a refused request rolls back its own work, and would take
    rows still pending in the shared session with it (a real request sees committed rows)."""
    db.session.commit()


def test_the_team_page_lists_members_with_their_roles(
    signed_in: FlaskClient, account: Account, owner: User, viewer: User, seat_member: User
) -> None:
    page = text(signed_in.get(team_url(account)))
    for user in (owner, viewer, seat_member):
        assert user.email in page
    seat = factories.first_seat(account)
    assert f"({seat.reference})" in page  # a seat member's seat
    assert page.index(owner.email) < page.index(viewer.email) < page.index(seat_member.email)


def test_inviting_someone_new_sends_a_link_to_set_a_password(
    signed_in: FlaskClient, account: Account, owner: User
) -> None:
    response = signed_in.post(
        team_url(account, "/invite"),
        data={"email": "Jordan@BrightPath.example", "name": "Jordan Reyes", "role": "admin"},
        headers=HX,
    )
    assert response.status_code == 200
    assert text(response).lstrip().startswith('<div id="team"')
    assert "Invitation sent to" in text(response)
    user = db.session.scalars(
        sa.select(User).where(User.email == "jordan@brightpath.example")
    ).one()
    assert membership_of(user).role is Role.ADMIN
    [mail] = emails_to("jordan@brightpath.example")
    assert owner.name in mail.subject
    assert "as admin" in mail.body_text
    link = re.search(r"https?://\S+/invite/\S+", mail.body_text)
    assert link is not None
    assert link.group(0).startswith("http://localhost/invite/")
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "member.invited")
    ).one()
    assert event.actor_id == owner.id
    assert event.details == {"email": "jordan@brightpath.example", "role": "admin", "seat": None}


def test_inviting_someone_who_already_signs_in_adds_the_account_to_their_login(
    signed_in: FlaskClient, account: Account
) -> None:
    elsewhere = factories.subscribed_account(kind="brokerage")
    known = factories.member(elsewhere, Role.OWNER)
    response = signed_in.post(
        team_url(account, "/invite"), data={"email": known.email, "role": "viewer"}
    )
    assert response.status_code == 303
    assert membership_of(known).role is Role.VIEWER
    [mail] = emails_to(known.email)
    assert "/invite/" not in mail.body_text
    assert f"/a/{account.slug}/" in mail.body_text


def test_a_seat_member_is_invited_to_one_seat(signed_in: FlaskClient, account: Account) -> None:
    seat = factories.first_seat(account)
    missing = signed_in.post(
        team_url(account, "/invite"), data={"email": "agent@x.example", "role": "seat_member"}
    )
    assert missing.status_code == 422
    assert "Choose the seat this member may see." in text(missing)
    assert 'value="agent@x.example"' in text(missing)
    done = signed_in.post(
        team_url(account, "/invite"),
        data={"email": "agent@x.example", "role": "seat_member", "seat": str(seat.id)},
    )
    assert done.status_code == 303
    user = db.session.scalars(sa.select(User).where(User.email == "agent@x.example")).one()
    assert membership_of(user).seat_id == seat.id
    assert seat.reference in emails_to("agent@x.example")[0].body_text


def test_another_accounts_seat_cannot_be_given(
    signed_in: FlaskClient, account: Account, other_account: Account
) -> None:
    theirs = factories.first_seat(other_account)
    response = signed_in.post(
        team_url(account, "/invite"),
        data={"email": "spy@x.example", "role": "seat_member", "seat": str(theirs.id)},
    )
    assert response.status_code == 422
    assert db.session.scalar(sa.select(User.id).where(User.email == "spy@x.example")) is None


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"email": "not-an-email", "role": "viewer"}, "Invalid email address."),
        ({"email": "someone@x.test", "role": "viewer"}, "Invalid email address."),
        ({"email": "", "role": "viewer"}, "This field is required."),
        ({"email": "someone@x.example", "role": "owner"}, "Not a valid choice"),
    ],
)
def test_a_bad_invitation_comes_back_with_the_error(
    signed_in: FlaskClient, account: Account, form: dict[str, str], message: str
) -> None:
    response = signed_in.post(team_url(account, "/invite"), data=form, headers=HX)
    assert response.status_code == 422
    assert message in text(response)


def test_an_existing_member_is_not_invited_twice(
    signed_in: FlaskClient, account: Account, viewer: User
) -> None:
    keep()
    response = signed_in.post(
        team_url(account, "/invite"), data={"email": viewer.email, "role": "admin"}
    )
    assert response.status_code == 422
    assert "already a member" in text(response)
    assert membership_of(viewer).role is Role.VIEWER


def test_changing_a_role_inline(signed_in: FlaskClient, account: Account, viewer: User) -> None:
    membership = membership_of(viewer)
    form = text(signed_in.get(team_url(account, f"/{membership.id}/edit"), headers=HX))
    assert form.lstrip().startswith(f'<tr id="member-{membership.id}"')
    assert "Save role" in form
    row = text(signed_in.get(team_url(account, f"/{membership.id}"), headers=HX))
    assert "Save role" not in row
    response = signed_in.post(
        team_url(account, f"/{membership.id}/role"), data={"role": "admin"}, headers=HX
    )
    assert response.status_code == 200
    assert "is now admin" in text(response)
    assert membership.role is Role.ADMIN
    change = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "member.role_changed")
    ).one()
    assert (change.details["from"], change.details["to"]) == ("viewer", "admin")


def test_a_seat_member_role_needs_a_seat(
    signed_in: FlaskClient, account: Account, viewer: User
) -> None:
    keep()
    membership = membership_of(viewer)
    response = signed_in.post(
        team_url(account, f"/{membership.id}/role"), data={"role": "seat_member"}, headers=HX
    )
    assert response.status_code == 422
    assert "Choose the seat" in text(response)
    assert membership.role is Role.VIEWER


def test_the_last_owner_can_be_neither_demoted_nor_removed(
    signed_in: FlaskClient, account: Account, owner: User
) -> None:
    mine = membership_of(owner)
    demoted = signed_in.post(
        team_url(account, f"/{mine.id}/role"), data={"role": "viewer"}, headers=HX
    )
    assert demoted.status_code == 422
    assert "An account needs an owner" in text(demoted)
    removed = signed_in.post(team_url(account, f"/{mine.id}/remove"), headers=HX)
    assert removed.status_code == 422
    assert "An account needs an owner" in text(removed)
    db.session.expire_all()
    assert membership_of(owner).role is Role.OWNER
    with pytest.raises(MemberRuleError):
        change_role(account, membership_of(owner), Role.ADMIN, None)


def test_with_two_owners_one_can_step_down_or_leave(
    signed_in: FlaskClient, account: Account, owner: User
) -> None:
    second = factories.member(account, Role.OWNER)
    promoted = factories.member(account, Role.VIEWER)
    response = signed_in.post(
        team_url(account, f"/{membership_of(promoted).id}/role"), data={"role": "owner"}
    )
    assert response.status_code == 303
    # Demote the other owner, then leave: the promoted one stays the owner.
    assert (
        signed_in.post(
            team_url(account, f"/{membership_of(second).id}/role"), data={"role": "viewer"}
        ).status_code
        == 303
    )
    left = signed_in.post(team_url(account, f"/{membership_of(owner).id}/remove"), headers=HX)
    assert left.status_code == 200
    assert urlsplit(left.headers["HX-Redirect"]).path == "/"
    owners = db.session.scalars(
        sa.select(Membership.user_id).where(Membership.role == Role.OWNER)
    ).all()
    assert owners == [promoted.id]
    assert signed_in.get(team_url(account)).status_code == 404  # no longer a member


def test_removing_a_member(signed_in: FlaskClient, account: Account, viewer: User) -> None:
    membership = membership_of(viewer)
    response = signed_in.post(team_url(account, f"/{membership.id}/remove"))
    assert response.status_code == 303
    assert (
        db.session.scalar(sa.select(Membership.id).where(Membership.user_id == viewer.id)) is None
    )
    assert db.session.get(User, viewer.id) is not None  # the login stays, for other accounts
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "member.removed")
    ).one()
    assert event.details == {"email": viewer.email, "role": "viewer"}


@pytest.mark.parametrize("role", ["admin", "viewer", "seat_member"])
def test_only_owners_manage_the_team(
    request: pytest.FixtureRequest,
    client: FlaskClient,
    auth: Auth,
    account: Account,
    owner: User,
    role: str,
) -> None:
    user: User = request.getfixturevalue(role)
    auth.login(user)
    target = membership_of(owner)
    assert client.get(team_url(account)).status_code == 403
    assert client.get(team_url(account, f"/{target.id}/edit")).status_code == 403
    for path, data in (
        ("/invite", {"email": "x@x.example", "role": "admin"}),
        (f"/{target.id}/role", {"role": "viewer"}),
        (f"/{target.id}/remove", {}),
    ):
        assert client.post(team_url(account, path), data=data).status_code == 403
    db.session.expire_all()
    assert membership_of(owner).role is Role.OWNER
    nav = text(client.get(f"/a/{account.slug}/seats/"))
    assert team_url(account) not in nav
