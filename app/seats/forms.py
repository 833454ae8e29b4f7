"""Seat forms: the onboarding form (used by signup and by "add a seat"), and the Backup form.

The onboarding form never has a field that could change an existing seat's Primary: it only
ever creates a new seat, and the Backup form only names a Backup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import time
from typing import Any

import phonenumbers
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    Field,
    Form,
    FormField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from app.calls.queries import format_phone
from app.models import Profession, Seat
from app.seats.operations import PersonDetails, SeatDetails

DEFAULT_PHONE_REGION = "US"

LEAD_SOURCES = (
    ("zillow", "Zillow"),
    ("realtor", "Realtor.com"),
    ("facebook", "Facebook"),
    ("website", "Website"),
    ("google", "Google Ads"),
    ("other", "Other"),
)
LEAD_DELIVERY = (
    ("crm", "A CRM, such as Follow Up Boss"),
    ("email", "Email forwarding"),
    ("webhook", "A webhook"),
)
WEEKDAYS = (
    ("mon", "Mon"),
    ("tue", "Tue"),
    ("wed", "Wed"),
    ("thu", "Thu"),
    ("fri", "Fri"),
    ("sat", "Sat"),
    ("sun", "Sun"),
)
TRANSFER_NUMBERS = 3


def choices(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    """(value, label) pairs as WTForms select choices."""
    return [SelectChoice(value, label) for value, label in pairs]


def e164(text: str, region: str = DEFAULT_PHONE_REGION) -> str | None:
    """`text` as an E.164 number ("+14155550134"), or None when it is no valid phone number.

    Numbers without a country code are read as `region`'s (US by default).
    """
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class PhoneNumber:
    """Validator: a valid phone number; the field's data becomes its E.164 form."""

    message = "Enter a valid phone number, like (415) 555-0134 (or +44 20 7946 0958 abroad)."

    def __call__(self, _form: Form, field: Field) -> None:
        if not field.data:
            return
        normalised = e164(field.data)
        if normalised is None:
            raise ValidationError(self.message)
        field.data = normalised


class PhoneField(TelField):
    """A phone number: `data` is its E.164 form once validated (see PhoneNumber); the input
    shows what was typed or, prefilled from a stored number, its national format."""

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        return format_phone(self.data) if self.data else ""


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class PersonFields(Form):
    """A Primary's (or a Backup's) details."""

    name = StringField("Full name", [InputRequired(), Length(max=200)], filters=[_strip])
    email = EmailField(
        "Email", [InputRequired(), Length(max=254), Email()], filters=[_strip, _lower]
    )
    mobile = PhoneField("Mobile", [InputRequired(), PhoneNumber()], filters=[_strip])
    profession = SelectField(
        "Works as",
        choices=choices((p.value, p.label) for p in Profession),
        coerce=Profession,
        default=Profession.AGENT,
    )
    licence = StringField("Licence or NMLS number", [Optional(), Length(max=64)], filters=[_strip])

    def details(self) -> PersonDetails:
        return PersonDetails(
            name=self.name.data or "",
            email=self.email.data or "",
            mobile=self.mobile.data or "",
            profession=self.profession.data or Profession.AGENT,
            licence=self.licence.data or "",
        )


class OptionalPersonFields(PersonFields):
    """A Backup inside the onboarding form: all empty means no Backup."""

    name = StringField("Full name", [Optional(), Length(max=200)], filters=[_strip])
    email = EmailField("Email", [Optional(), Length(max=254), Email()], filters=[_strip, _lower])
    mobile = PhoneField("Mobile", [Optional(), PhoneNumber()], filters=[_strip])

    @property
    def is_empty(self) -> bool:
        return not any((self.name.data, self.email.data, self.mobile.data, self.licence.data))

    def validate(self, extra_validators: Any = None) -> bool:
        if self.is_empty:
            return True
        valid = bool(super().validate(extra_validators))
        for needed in (self.name, self.email, self.mobile):
            if not needed.data and not needed.errors:
                needed.errors = [*needed.errors, "Needed for a Backup (or leave all empty)."]
                valid = False
        return valid


class SeatFields(Form):
    """The onboarding form of one seat: its people and how the ISA team works its leads."""

    # Set by the enclosing form: agencies label every seat with the client it is for.
    client_label_required = False

    client_label = StringField(
        "Client",
        [Length(max=200)],
        filters=[_strip],
        description="Agencies: the client this seat is for. Others: a team or office, if any.",
    )
    primary = FormField(PersonFields, label="Primary")
    backup = FormField(OptionalPersonFields, label="Backup")
    lead_sources = SelectMultipleField(
        "Lead sources worked",
        choices=choices(LEAD_SOURCES),
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validators=[DataRequired("Choose at least one lead source.")],
    )
    lead_delivery = RadioField(
        "How leads reach us",
        choices=choices(LEAD_DELIVERY),
        validators=[InputRequired("Choose how the leads reach us.")],
    )
    crm_name = StringField(
        "Which CRM",
        [Length(max=100)],
        filters=[_strip],
        description="For example Follow Up Boss, kvCORE or Lofty.",
    )
    transfer_1 = PhoneField(
        "First number",
        [InputRequired("Give at least one number for live transfers."), PhoneNumber()],
        filters=[_strip],
    )
    transfer_2 = PhoneField("Second number", [Optional(), PhoneNumber()], filters=[_strip])
    transfer_3 = PhoneField("Third number", [Optional(), PhoneNumber()], filters=[_strip])
    transfer_days = SelectMultipleField(
        "Days",
        choices=choices(WEEKDAYS),
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        default=["mon", "tue", "wed", "thu", "fri"],
        validators=[DataRequired("Choose at least one day for transfers.")],
    )
    transfer_from = TimeField("From", [InputRequired()], default=time(9, 0))
    transfer_to = TimeField("Until", [InputRequired()], default=time(18, 0))
    notes = TextAreaField(
        "Anything the ISA team should know",
        [Length(max=2000)],
        filters=[_strip],
        description="Scripts, markets, price ranges, languages, anything that helps a call.",
    )

    def validate_client_label(self, field: Field) -> None:
        if self.client_label_required and not field.data:
            raise ValidationError("Name the client this seat is for.")

    def validate_crm_name(self, field: Field) -> None:
        if self.lead_delivery.data == "crm" and not field.data:
            raise ValidationError("Name the CRM your leads come from.")

    def validate_transfer_to(self, field: Field) -> None:
        start = self.transfer_from.data
        if start is not None and field.data is not None and field.data <= start:
            raise ValidationError("Transfers must end after they start.")

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        backup = self.backup.form
        same = backup.email.data and backup.email.data == self.primary.form.email.data
        if same and not backup.email.errors:
            backup.email.errors = ["The Backup must be someone other than the Primary."]
            valid = False
        return valid

    def transfer_numbers(self) -> list[str]:
        return [f.data for f in (self.transfer_1, self.transfer_2, self.transfer_3) if f.data]

    def seat_details(self, **more_onboarding: Any) -> SeatDetails:
        """The validated form as the seat operations take it."""
        backup = self.backup.form
        start, end = self.transfer_from.data, self.transfer_to.data
        onboarding: dict[str, Any] = {
            "lead_sources": list(self.lead_sources.data or []),
            "lead_delivery": self.lead_delivery.data,
            "crm_name": self.crm_name.data if self.lead_delivery.data == "crm" else "",
            "transfer_numbers": self.transfer_numbers(),
            "transfer_days": list(self.transfer_days.data or []),
            "transfer_hours": [
                start.strftime("%H:%M") if start else "",
                end.strftime("%H:%M") if end else "",
            ],
            "notes": self.notes.data or "",
            **more_onboarding,
        }
        return SeatDetails(
            primary=self.primary.form.details(),
            backup=None if backup.is_empty else backup.details(),
            client_label=self.client_label.data or "",
            onboarding=onboarding,
        )


def seat_form_data(seat: Seat) -> dict[str, Any]:
    """A seat's details as onboarding-form data, Primary left empty: the start of a new seat
    for a different Primary. Tolerates onboarding data from older forms or imports."""
    onboarding = seat.onboarding or {}
    numbers = _strings(onboarding.get("transfer_numbers"))
    hours = _strings(onboarding.get("transfer_hours"))
    data: dict[str, Any] = {
        "client_label": seat.client_label,
        "primary": {"profession": seat.primary.profession},
        "lead_sources": _strings(onboarding.get("lead_sources")),
        "lead_delivery": onboarding.get("lead_delivery"),
        "crm_name": onboarding.get("crm_name", ""),
        "notes": onboarding.get("notes", ""),
    }
    for n, number in enumerate(numbers[:TRANSFER_NUMBERS], start=1):
        data[f"transfer_{n}"] = number
    days = _strings(onboarding.get("transfer_days"))
    if days:
        data["transfer_days"] = days
    for key, text in zip(("transfer_from", "transfer_to"), hours, strict=False):
        parsed = _time(text)
        if parsed is not None:
            data[key] = parsed
    if seat.backup is not None:
        backup = seat.backup
        data["backup"] = {
            "name": backup.name,
            "email": backup.email,
            "mobile": backup.mobile,
            "profession": backup.profession,
            "licence": backup.licence,
        }
    return data


def _strings(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list | tuple) else []


def _time(text: str) -> time | None:
    try:
        return time.fromisoformat(text)
    except ValueError:
        return None


class NewSeatForm(SeatFields, FlaskForm):
    """Add a seat: the onboarding form again."""

    def __init__(self, *args: Any, client_label_required: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_label_required = client_label_required


class NewPrimaryForm(NewSeatForm):
    """A new seat for a different Primary, started from an existing seat's details."""

    deactivate_old = BooleanField(
        "Deactivate the old seat once the new one is added",
        default=True,
        description="It stays on the plan and can be reactivated; the ISA team stops calling its "
        "leads, and no call is counted meanwhile.",
    )


class BackupForm(PersonFields, FlaskForm):
    """Add or replace a seat's Backup."""


@dataclass(frozen=True)
class OnboardingSummary:
    """A seat's onboarding details, read back for people (the seat page)."""

    lead_sources: list[str]
    lead_delivery: str
    transfer_numbers: list[str]
    transfer_days: str
    transfer_hours: str
    notes: str
    started_from: str

    @property
    def is_empty(self) -> bool:
        return not any((self.lead_sources, self.lead_delivery, self.transfer_numbers, self.notes))


def _days_label(days: list[str]) -> str:
    """["mon", ..., "fri"] -> "Mon–Fri"; scattered days are listed."""
    order = [key for key, _label in WEEKDAYS]
    labels = dict(WEEKDAYS)
    chosen = sorted(order.index(day) for day in days if day in labels)
    if len(chosen) > 2 and chosen == list(range(chosen[0], chosen[-1] + 1)):
        return f"{labels[order[chosen[0]]]}–{labels[order[chosen[-1]]]}"
    return ", ".join(labels[order[index]] for index in chosen)


def onboarding_summary(onboarding: dict[str, Any]) -> OnboardingSummary:
    """What the onboarding form recorded, labelled; unknown or missing keys read as empty."""
    sources = dict(LEAD_SOURCES)
    delivery = dict(LEAD_DELIVERY).get(str(onboarding.get("lead_delivery") or ""), "")
    if onboarding.get("lead_delivery") == "crm" and onboarding.get("crm_name"):
        delivery = f"CRM: {onboarding['crm_name']}"
    hours = _strings(onboarding.get("transfer_hours"))
    return OnboardingSummary(
        lead_sources=[sources.get(key, key) for key in _strings(onboarding.get("lead_sources"))],
        lead_delivery=delivery,
        transfer_numbers=_strings(onboarding.get("transfer_numbers")),
        transfer_days=_days_label(_strings(onboarding.get("transfer_days"))),
        transfer_hours="–".join(hours) if len(hours) == 2 and all(hours) else "",
        notes=str(onboarding.get("notes") or ""),
        started_from=str(onboarding.get("started_from") or ""),
    )
