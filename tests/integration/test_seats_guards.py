"""What no route, form or command may do: change a seat's Primary (the database refuses it too,
see test_database_guards.py), or let a viewer or a seat member change anything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from app.extensions import db
from app.models import Account, AuditEvent, Membership, Person, Seat, User
from app.tenancy import tenant_context
from tests import factories
from tests.conftest import Auth
from tests.onboarding_forms import with_backup

# Every way a form could try to name or edit a seat's Primary.
CRAFTED_PRIMARY = {
    "primary_person_id": "",
    "primary_id": "",
    "primary": "",
    "primary-id": "",
    "primary-name": "Hijacker",
    "primary-email": "hijacker@evil.example",
    "primary-mobile": "+13125550999",
    "primary_name": "Hijacker",
    "primary_email": "hijacker@evil.example",
    "swap": "y",
    "backup_person_id": "",
}
MY_BLUEPRINTS = ("seats", "accounts")


def post_rules(app: Flask, blueprints: tuple[str, ...] | None = None) -> list[Rule]:
    return sorted(
        (
            rule
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/a/<account>")
            and "POST" in (rule.methods or set())
            and (blueprints is None or rule.endpoint.split(".")[0] in blueprints)
        ),
        key=lambda rule: rule.rule,
    )


def build(app: Flask, rule: Rule, account: Account, seat: Seat, membership: Membership) -> str:
    values: dict[str, Any] = {"account": account.slug}
    for name in rule.arguments - {"account"}:
        values[name] = {"seat_id": seat.id, "member_id": membership.id}[name]
    return app.url_map.bind("localhost").build(rule.endpoint, values)


def primaries(account: Account) -> dict[int, tuple[Any, ...]]:
    """Each seat's Primary as stored: (person id, name, email, mobile)."""
    with tenant_context(account.id):
        rows = db.session.execute(
            sa.select(Seat.id, Person.id, Person.name, Person.email, Person.mobile).join(
                Person, Person.id == Seat.primary_person_id
            )
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


@pytest.fixture
def inside(account: Account) -> Iterator[None]:
    with tenant_context(account.id):
        yield


def test_no_route_changes_a_primary_whatever_is_posted(
    app: Flask, client: FlaskClient, auth: Auth, owner: User, account: Account, inside: None
) -> None:
    seat = factories.first_seat(account)
    victim = primaries(account)
    membership = db.session.scalars(
        sa.select(Membership).where(Membership.user_id == owner.id)
    ).one()
    crafted = {
        **CRAFTED_PRIMARY,
        "primary_person_id": str(seat.primary_person_id + 1),
        "primary_id": str(seat.primary_person_id + 1),
        "backup_person_id": str(seat.primary_person_id),
    }
    auth.login(owner)
    rules = post_rules(app, MY_BLUEPRINTS)
    assert {rule.endpoint for rule in rules} >= {
        "seats.new",
        "seats.new_primary",
        "seats.save_backup",
        "seats.remove_backup",
        "seats.deactivate",
        "seats.reactivate",
    }
    for rule in rules:
        if rule.endpoint in ("accounts.remove", "accounts.change_member_role"):
            continue  # the owner's own membership: covered by the member tests
        url = build(app, rule, account, seat, membership)
        for headers in ({}, {"HX-Request": "true"}):
            form = {**with_backup(), "name": "Backup Person", "email": "bp@ok.example"}
            client.post(url, data={**form, **crafted, "mobile": "(312) 555-0177"}, headers=headers)
            db.session.expire_all()
            now = primaries(account)
            assert {seat_id: now[seat_id] for seat_id in victim} == victim, (rule.rule, headers)
            # Whatever else happened, the seat's Backup is never its Primary.
            assert db.session.get_one(Seat, seat.id).backup_person_id != seat.primary_person_id
    # The new seats made on the way each got a Primary of their own.
    new_people = {
        value[0] for seat_id, value in primaries(account).items() if seat_id not in victim
    }
    assert new_people
    assert not new_people & {value[0] for value in victim.values()}


def test_no_command_changes_an_existing_seats_primary(
    app: Flask, account: Account, inside: None
) -> None:
    """Operator commands name a Primary only to create a seat, never beside an existing one."""

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")

    def names(command: click.Command) -> set[str]:
        return {(param.name or "").lower() for param in command.params} | {
            opt.lower() for param in command.params for opt in getattr(param, "opts", [])
        }

    naming_a_primary = [
        (path, names(command))
        for name, command in app.cli.commands.items()
        for path, command in walk(command, name)
        if any("primary" in name for name in names(command))
    ]
    assert [path for path, _ in naming_a_primary] == ["seats add"]
    for path, params in naming_a_primary:
        assert not {"seat", "seat_id", "reference", "--seat", "--reference"} & params, path

    before = primaries(account)
    result = app.test_cli_runner().invoke(
        args=[
            "seats",
            "add",
            account.slug,
            "--primary-name",
            "Hijacker",
            "--primary-email",
            before[next(iter(before))][2],  # even an existing Primary's email: a new person
        ]
    )
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    after = primaries(account)
    assert {seat_id: after[seat_id] for seat_id in before} == before
    assert len(after) == len(before) + 1


@pytest.mark.parametrize("role", ["viewer", "seat_member"])
def test_viewers_and_seat_members_cannot_change_anything(
    request: pytest.FixtureRequest,
    app: Flask,
    client: FlaskClient,
    auth: Auth,
    owner: User,
    account: Account,
    role: str,
    inside: None,
) -> None:
    user: User = request.getfixturevalue(role)
    own_seat = factories.first_seat(account)  # a seat member's own seat, the hardest case
    owner_membership = db.session.scalars(
        sa.select(Membership).where(Membership.user_id == owner.id)
    ).one()

    def state() -> tuple[int, ...]:
        counts = (
            sa.select(sa.func.count(model.id)) for model in (Seat, Person, Membership, AuditEvent)
        )
        deactivated = sa.select(sa.func.count(Seat.id)).where(Seat.deactivated_at.is_not(None))
        return tuple(db.session.scalar(query) or 0 for query in (*counts, deactivated))

    before = state()
    auth.login(user)
    for rule in post_rules(app, MY_BLUEPRINTS):
        url = build(app, rule, account, own_seat, owner_membership)
        for headers in ({}, {"HX-Request": "true"}):
            data = {
                **with_backup(),
                "name": "X",
                "email": "x@ok.example",
                "mobile": "(312) 555-0177",
                "role": "owner",
            }
            response = client.post(url, data=data, headers=headers)
            assert response.status_code in (403, 404), (rule.rule, response.status_code)
    for path in ("new", f"{own_seat.id}/backup/edit", f"{own_seat.id}/new-primary"):
        assert client.get(f"/a/{account.slug}/seats/{path}").status_code == 403
    assert client.get(f"/a/{account.slug}/members").status_code == 403
    assert client.get(f"/a/{account.slug}/audit").status_code == 403
    db.session.expire_all()
    assert state() == before
