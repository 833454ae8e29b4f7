"""Forms of the team page: invite a member, change a member's role."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.validators import Email, InputRequired, Length, Optional

from app.models import Role
from app.seats.forms import choices

INVITABLE_ROLES = (Role.ADMIN, Role.VIEWER, Role.SEAT_MEMBER)
ROLE_HELP = {
    Role.OWNER: "Everything, including the plan, billing and the team.",
    Role.ADMIN: "Adds and manages seats, reads every report and the audit log.",
    Role.VIEWER: "Reads seats, usage and reports; changes nothing.",
    Role.SEAT_MEMBER: "Sees one seat's usage and call report, nothing else.",
}


def _optional_int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(value)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class _SeatChoice(FlaskForm):
    seat = SelectField(
        "Seat",
        coerce=_optional_int,
        validators=[Optional()],
        description="Only for a seat member: the one seat they see.",
    )

    def __init__(self, *args: Any, seats: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seat.choices = choices(
            [("", "Choose a seat…"), *((str(i), label) for i, label in seats)]
        )


class InviteForm(_SeatChoice):
    email = EmailField("Email", [InputRequired(), Length(max=254), Email()], filters=[_strip])
    name = StringField("Name", [Optional(), Length(max=200)], filters=[_strip])
    role = SelectField(
        "Role",
        choices=choices((role.value, role.label) for role in INVITABLE_ROLES),
        coerce=Role,
        default=Role.VIEWER,
    )


class RoleForm(_SeatChoice):
    role = SelectField(
        "Role", choices=choices((role.value, role.label) for role in Role), coerce=Role
    )
