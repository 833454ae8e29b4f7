"""Signup: choose a plan, describe the account, and onboard its first seat(s)."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    FieldList,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
)
from wtforms.validators import Email, InputRequired, Length, NumberRange, Optional

from app.models import AccountKind, Plan
from app.seats.forms import SeatFields, choices

MAX_SIGNUP_SEATS = 20
# Where the service's clients are; the account's periods start at local midnight there.
TIME_ZONES = (
    ("America/New_York", "Eastern time (New York)"),
    ("America/Chicago", "Central time (Chicago)"),
    ("America/Denver", "Mountain time (Denver)"),
    ("America/Phoenix", "Arizona (Phoenix)"),
    ("America/Los_Angeles", "Pacific time (Los Angeles)"),
    ("America/Anchorage", "Alaska (Anchorage)"),
    ("Pacific/Honolulu", "Hawaii (Honolulu)"),
    ("America/Puerto_Rico", "Atlantic time (Puerto Rico)"),
)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class SignupForm(FlaskForm):
    plan = RadioField("Plan", validators=[InputRequired("Choose a plan.")])
    kind = RadioField(
        "Account type",
        choices=choices((kind.value, kind.label) for kind in AccountKind),
        coerce=AccountKind,
        validators=[InputRequired("Choose the kind of account.")],
    )
    company = StringField(
        "Company or team name",
        [InputRequired(), Length(max=200)],
        filters=[_strip],
        description="Solo agents: your name, or the name you work under.",
    )
    owner_name = StringField("Your name", [InputRequired(), Length(max=200)], filters=[_strip])
    owner_email = EmailField(
        "Your email",
        [InputRequired(), Length(max=254), Email()],
        filters=[_strip, _lower],
        description="We email you a link to set your password and open your portal.",
    )
    billing_email = EmailField(
        "Billing email",
        [Optional(), Length(max=254), Email()],
        filters=[_strip, _lower],
        description="Where invoices go, if not to you.",
    )
    timezone = SelectField(
        "Time zone",
        choices=choices(TIME_ZONES),
        default="America/New_York",
        description="Your billing months start at midnight here.",
    )
    seats = FieldList(FormField(SeatFields), min_entries=1, max_entries=MAX_SIGNUP_SEATS)

    def __init__(self, *args: Any, plans: list[Plan], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plan.choices = choices((plan.code, plan.name) for plan in plans)
        self.plans = {plan.code: plan for plan in plans}

    @property
    def chosen_plan(self) -> Plan | None:
        return self.plans.get(self.plan.data or "")

    @property
    def chosen_kind(self) -> AccountKind | None:
        return self.kind.data if isinstance(self.kind.data, AccountKind) else None

    def validate(self, extra_validators: Any = None) -> bool:
        agency = self.chosen_kind is AccountKind.AGENCY
        for entry in self.seats:
            entry.form.client_label_required = agency
        valid = bool(super().validate(extra_validators))
        if self.chosen_kind is AccountKind.SOLO and len(self.seats.entries) > 1:
            self.kind.errors = [
                *self.kind.errors,
                "A solo account has one seat. Choose brokerage or agency to onboard several, "
                "or remove the extra seats.",
            ]
            valid = False
        return valid

    def change_seats(self, action: str) -> None:
        """Apply an "add-seat" or "remove-seat-<index>" button (the others keep their field
        names and values); anything else changes nothing."""
        entries = self.seats.entries
        if action == "add-seat" and len(entries) < MAX_SIGNUP_SEATS:
            self.seats.append_entry()
        index = action.removeprefix("remove-seat-")
        removable = action.startswith("remove-seat-") and index.isdigit() and len(entries) > 1
        if removable and int(index) < len(entries):
            del entries[int(index)]

    def new_account(self) -> dict[str, Any]:
        """The validated form as `create_account`'s arguments."""
        return {
            "name": self.company.data or "",
            "kind": self.chosen_kind,
            "plan": self.chosen_plan,
            "owner_email": self.owner_email.data or "",
            "owner_name": self.owner_name.data or "",
            "billing_email": self.billing_email.data or "",
            "timezone": self.timezone.data or TIME_ZONES[0][0],
            "seats": tuple(entry.form.seat_details() for entry in self.seats),
        }


class ChooserForm(FlaskForm):
    """The pricing page's "which plan" question."""

    class Meta:
        csrf = False  # a GET form that changes nothing

    leads = IntegerField(
        "Leads you expect a month",
        [InputRequired("Type a number of leads."), NumberRange(0, 100_000)],
    )
