"""Forms of the operator console: the plan catalogue and the settings."""

from __future__ import annotations

import re
from decimal import Decimal
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from flask_wtf import FlaskForm
from wtforms import Field, IntegerField, StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

_DOLLARS = re.compile(r"^\$?\s*(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class MoneyField(StringField):
    """Dollars typed by a person ("57", "$1,250.00"), held as integer cents in `.data`."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        typed = str(valuelist[0]).strip() if valuelist else ""
        self.data = None
        if not typed:
            return
        if not _DOLLARS.match(typed):
            raise ValueError("Enter an amount in dollars, such as 57 or 1,250.00.")
        # Decimal, not float: "0.29" is exactly 29 cents.
        self.data = int(Decimal(typed.lstrip("$").replace(",", "").strip()) * 100)

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        if self.data is None:
            return ""
        return f"{self.data // 100}.{self.data % 100:02d}"


def _positive_cents(_form: FlaskForm, field: Field) -> None:
    if field.data is not None and field.data <= 0:
        raise ValidationError("Must be more than $0.00.")


class PlanForm(FlaskForm):
    """A catalogue plan. The code is fixed once created (periods and invoices name it);
    the catalogue rules (price = leads × CPL, ...) are checked by `app.ops.catalogue`."""

    code = StringField(
        "Code",
        validators=[DataRequired(), Length(max=32)],
        description="Short and unique, e.g. G200. Letters, digits and dashes; fixed once created.",
        filters=[_strip, _upper],
    )
    name = StringField("Name", validators=[DataRequired(), Length(max=100)])
    allowance = IntegerField(
        "Leads a month",
        validators=[
            InputRequired(message="Enter the number of leads."),
            NumberRange(min=1, max=100_000, message="Between 1 and 100,000 leads."),
        ],
    )
    cpl = MoneyField(
        "Cost per lead",
        validators=[InputRequired(message="Enter the cost per lead."), _positive_cents],
        description="Strictly lower for bigger plans.",
    )
    price = MoneyField(
        "Price a month",
        validators=[InputRequired(message="Enter the price."), _positive_cents],
        description="Exactly leads × cost per lead.",
    )

    def validate_code(self, field: Field) -> None:
        if field.data and not re.fullmatch(r"[A-Z0-9][A-Z0-9-]*", field.data):
            raise ValidationError("Letters, digits and dashes only.")


class SettingsForm(FlaskForm):
    """Every operator setting at once; only the values that differ are saved."""

    seat_fee_cents = MoneyField(
        "Seat fee",
        validators=[InputRequired(message="Enter the seat fee (0 for none).")],
        description="In dollars, charged once per new seat of a brokerage or agency.",
    )
    overage_grace_leads = IntegerField(
        "Overage grace (leads)",
        validators=[
            InputRequired(message="Enter the grace (0 for none)."),
            NumberRange(min=0, max=1_000, message="Between 0 and 1,000 leads."),
        ],
    )
    close_grace_minutes = IntegerField(
        "Close grace window (minutes)",
        validators=[
            InputRequired(message="Enter the minutes to wait."),
            NumberRange(min=1, max=2_880, message="Between 1 minute and 48 hours (2,880)."),
        ],
    )
    dashboard_refresh_seconds = IntegerField(
        "Dashboard refresh (seconds)",
        validators=[
            InputRequired(message="Enter the seconds between refreshes."),
            NumberRange(min=2, max=600, message="Between 2 and 600 seconds."),
        ],
    )
    slack_webhook_url = StringField(
        "Slack webhook URL", validators=[Optional(), Length(max=500)], filters=[_strip]
    )
    sender_address = StringField(
        "Sender address", validators=[Optional(), Length(max=254)], filters=[_strip]
    )

    def validate_seat_fee_cents(self, field: Field) -> None:
        if field.data is not None and not 0 <= field.data <= 1_000_000:
            raise ValidationError("Between $0 and $10,000.")

    def validate_slack_webhook_url(self, field: Field) -> None:
        if not field.data:
            return
        parts = urlsplit(field.data)
        if parts.scheme != "https" or not parts.hostname:
            raise ValidationError("An https:// address, such as https://hooks.slack.com/...")

    def validate_sender_address(self, field: Field) -> None:
        if not field.data:
            return
        name, address = parseaddr(field.data)
        if any(c in field.data for c in "\r\n") or not _EMAIL.match(address):
            raise ValidationError(
                "An email address, optionally with a name: Seatwise <billing@seatwise.example>."
            )
        if name and not field.data.rstrip().endswith(">"):
            raise ValidationError("Put the address in angle brackets after the name.")

    def values(self) -> dict[str, Any]:
        """The settings as stored (cents, whole numbers, text)."""
        return {name: self[name].data for name in SETTING_FIELDS}


SETTING_FIELDS = (
    "seat_fee_cents",
    "overage_grace_leads",
    "close_grace_minutes",
    "dashboard_refresh_seconds",
    "slack_webhook_url",
    "sender_address",
)
