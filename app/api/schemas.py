"""The dialer API's items: each field's rules, used both to check an item and to describe it in
the OpenAPI document, so the two cannot disagree.

An item that breaks a rule is refused on its own (its result lists every bad field); the batch
around it is still recorded. Text is stored as sent; phone numbers are stored in E.164.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, ClassVar, Generic, TypeVar

from app.calls.batch import AttemptItem, FieldError, LeadDetails, LeadItem
from app.calls.importer import DEFAULT_REGION, normalise_phone
from app.models import Disposition

ItemT = TypeVar("ItemT", LeadItem, AttemptItem)

MAX_ITEMS = 1000
# Times may be this far ahead of the server's clock (the dialer's clock may run fast).
CLOCK_SKEW = timedelta(minutes=5)
MAX_DURATION_SECONDS = 86_400
TIME_EXAMPLE = "2026-11-26T14:30:00-05:00"


# A NUL character cannot be stored (PostgreSQL refuses it in text): no string may hold one.
_NO_NUL = r"^[^\x00]*$"
_NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"


class Invalid(Exception):
    """A value that breaks its field's rule; the message completes "<field> ..."."""

    def __init__(self, message: str, errors: tuple[FieldError, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class Field(ABC):
    """One field of an item: how to check a value, and its JSON Schema."""

    required: bool = True
    default: ClassVar[Any] = None  # the value of an optional field that is absent or null
    description: str = ""

    @abstractmethod
    def parse(self, value: Any, now: datetime, name: str) -> Any:
        """The value to store; raises `Invalid`. `value` is never None here."""

    @abstractmethod
    def value_schema(self) -> dict[str, Any]:
        """The JSON Schema of a present value."""

    def json_schema(self) -> dict[str, Any]:
        schema = self.value_schema()
        if not self.required:
            schema["type"] = [schema["type"], "null"]
        return {**schema, "description": self.description} if self.description else schema


@dataclass(frozen=True)
class Text(Field):
    max_length: int
    required: bool = False
    description: str = ""
    default: ClassVar[Any] = ""

    def parse(self, value: Any, now: datetime, name: str) -> str:
        if not isinstance(value, str):
            raise Invalid("must be a string")
        if self.required and not value.strip():
            raise Invalid("must not be empty")
        if len(value) > self.max_length:
            raise Invalid(f"must be at most {self.max_length} characters")
        return value

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "maxLength": self.max_length}
        if self.required:
            schema.update(minLength=1, pattern=_NOT_BLANK)
        else:
            schema["pattern"] = _NO_NUL
        return schema


@dataclass(frozen=True)
class Moment(Field):
    """An ISO 8601 date-time with an offset, not in the future (beyond `CLOCK_SKEW`)."""

    description: str = ""

    def parse(self, value: Any, now: datetime, name: str) -> datetime:
        if not isinstance(value, str):
            raise Invalid(f"must be a date-time string such as {TIME_EXAMPLE}")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(f"is not an ISO 8601 date-time such as {TIME_EXAMPLE}") from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise Invalid(
                f"must include a time zone, such as {TIME_EXAMPLE} or 2026-11-26T19:30:00Z"
            )
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            raise Invalid("is out of range") from None
        if moment > now + CLOCK_SKEW:
            raise Invalid(
                f"is in the future: the server's time is {now:%Y-%m-%dT%H:%M:%SZ} and clocks may "
                f"differ by {CLOCK_SKEW.seconds // 60} minutes at most"
            )
        return moment

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


@dataclass(frozen=True)
class Phone(Field):
    """A phone number the `phonenumbers` library finds valid; stored in E.164."""

    description: str = ""

    def parse(self, value: Any, now: datetime, name: str) -> str:
        if not isinstance(value, str):
            raise Invalid("must be a string")
        if len(value) > 32:
            raise Invalid("must be at most 32 characters")
        normalised = e164(value)
        if normalised is None:
            raise Invalid(
                f"is not a valid phone number: {value!r} (write it as +1 415 555 2671 or, for "
                "North America, (415) 555-2671)"
            )
        return normalised

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": 32, "pattern": _NO_NUL}


# The CSV import's rule, so that both ways in accept the same numbers. Cached: a dialer sends
# the same lead's number with each of its attempts.
e164 = lru_cache(maxsize=65_536)(normalise_phone)


# The lead's email is kept for the reports only (Seatwise never writes to leads), so a shape
# check is enough; it keeps a 1,000-item batch fast.
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Email(Field):
    required: bool = False
    description: str = ""
    default: ClassVar[Any] = ""

    def parse(self, value: Any, now: datetime, name: str) -> str:
        if not isinstance(value, str):
            raise Invalid("must be a string")
        if len(value) > 254:
            raise Invalid("must be at most 254 characters")
        if value and not _EMAIL_SHAPE.fullmatch(value):
            raise Invalid(f"is not an email address: {value!r}")
        return value

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": 254, "pattern": _NO_NUL}


@dataclass(frozen=True)
class Choice(Field):
    choices: tuple[str, ...]
    what: str
    description: str = ""

    def parse(self, value: Any, now: datetime, name: str) -> str:
        if not isinstance(value, str) or value not in self.choices:
            shown = repr(value) if isinstance(value, str) else "a non-string value"
            raise Invalid(f"unknown {self.what} {shown}; expected one of {', '.join(self.choices)}")
        return value

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices)}


@dataclass(frozen=True)
class Seconds(Field):
    maximum: int
    description: str = ""

    def parse(self, value: Any, now: datetime, name: str) -> int:
        # JSON has one number type: 42.0 is a whole number, true is not a number.
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole:
            raise Invalid("must be a whole number of seconds")
        if not 0 <= value <= self.maximum:
            raise Invalid(f"must be between 0 and {self.maximum} seconds")
        return int(value)

    def value_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 0, "maximum": self.maximum}


@dataclass(frozen=True)
class Nested(Field):
    fields: Mapping[str, Field]
    required: bool = False
    description: str = ""

    def parse(self, value: Any, now: datetime, name: str) -> dict[str, Any]:
        values, errors = parse_object(value, self.fields, now, prefix=f"{name}.")
        if errors:
            raise Invalid("has errors", tuple(errors))
        return values

    def value_schema(self) -> dict[str, Any]:
        return object_schema(self.fields)


def parse_object(
    data: Any, fields: Mapping[str, Field], now: datetime, prefix: str = ""
) -> tuple[dict[str, Any], list[FieldError]]:
    """Check every field of `data`; return the values and the errors (all of them, so the
    sender can fix an item in one go). Unknown fields are ignored."""
    if not isinstance(data, dict):
        return {}, [FieldError(prefix.rstrip(".") or None, "must be an object")]
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, spec in fields.items():
        value = data.get(name)
        if value is None:
            if spec.required:
                errors.append(FieldError(prefix + name, "is required"))
            values[name] = spec.default
            continue
        try:
            if isinstance(value, str):
                _check_storable(value)
            values[name] = spec.parse(value, now, prefix + name)
        except Invalid as exc:
            errors.extend(exc.errors or [FieldError(prefix + name, exc.message)])
    return values, errors


def _check_storable(value: str) -> None:
    """Refuse text the database cannot store: NUL characters, unpaired surrogates (JSON can
    carry both)."""
    if "\x00" in value:
        raise Invalid("must not contain a NUL character (\\u0000)")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise Invalid("must be valid Unicode text (it holds an unpaired surrogate)") from None


def object_schema(fields: Mapping[str, Field]) -> dict[str, Any]:
    """The JSON Schema of an object with `fields`."""
    return {
        "type": "object",
        "properties": {name: spec.json_schema() for name, spec in fields.items()},
        "required": [name for name, spec in fields.items() if spec.required],
    }


SEAT = Text(16, required=True, description="The seat's reference, as shown in the portal.")
LEAD_DETAILS: dict[str, Field] = {
    "name": Text(200, description="The lead's name."),
    "phone": Phone(
        description=(
            "The lead's phone number; stored in E.164. Numbers without a country code are "
            f"read as {DEFAULT_REGION} numbers."
        )
    ),
    "email": Email(description="The lead's email address."),
    "source": Text(64, description="Where the lead came from: Zillow, Realtor.com, Facebook..."),
    "received_at": Moment(description="When the seat received the lead, with its offset."),
}
LEAD_FIELDS: dict[str, Field] = {
    "seat": SEAT,
    "external_id": Text(
        100, required=True, description="The lead's id at its source; unique per seat."
    ),
    **LEAD_DETAILS,
}
ATTEMPT_FIELDS: dict[str, Field] = {
    "event_id": Text(100, required=True, description="The dialer's id of this attempt; unique."),
    "seat": SEAT,
    "lead_external_id": Text(100, required=True, description="The lead's id at its source."),
    "lead": Nested(
        LEAD_DETAILS,
        description="The lead's details: needed only when the lead is not known yet.",
    ),
    "attempted_at": Moment(description="When the call was placed, with its offset."),
    "disposition": Choice(
        tuple(member.value for member in Disposition),
        what="disposition",
        description="The outcome of the call.",
    ),
    "duration_seconds": Seconds(MAX_DURATION_SECONDS, description="How long the call took."),
    "isa_agent": Text(100, description="The ISA agent who called."),
    "notes": Text(5000, description="The agent's notes."),
}


@dataclass(frozen=True)
class Parsed(Generic[ItemT]):
    """One item after the checks: `value` when it passed, else `errors`; `ident` echoes the
    item's own id (event id or external id) when it sent one."""

    value: ItemT | None
    errors: tuple[FieldError, ...]
    ident: str | None


def _ident(data: Any, name: str) -> str | None:
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _details(values: dict[str, Any]) -> LeadDetails:
    return LeadDetails(
        name=values["name"],
        phone=values["phone"],
        email=values["email"],
        source=values["source"],
        received_at=values["received_at"],
    )


def parse_lead(data: Any, now: datetime) -> Parsed[LeadItem]:
    """Check one item of `POST /leads`."""
    values, errors = parse_object(data, LEAD_FIELDS, now)
    if errors:
        return Parsed(None, tuple(errors), _ident(data, "external_id"))
    item = LeadItem(values["seat"], values["external_id"], _details(values))
    return Parsed(item, (), item.external_id)


def parse_attempt(data: Any, now: datetime) -> Parsed[AttemptItem]:
    """Check one item of `POST /call-attempts`."""
    values, errors = parse_object(data, ATTEMPT_FIELDS, now)
    if errors:
        return Parsed(None, tuple(errors), _ident(data, "event_id"))
    lead = values["lead"]
    item = AttemptItem(
        event_id=values["event_id"],
        seat_reference=values["seat"],
        lead_external_id=values["lead_external_id"],
        lead=_details(lead) if lead is not None else None,
        attempted_at=values["attempted_at"],
        disposition=Disposition(values["disposition"]),
        duration_seconds=values["duration_seconds"],
        isa_agent=values["isa_agent"],
        notes=values["notes"],
    )
    return Parsed(item, (), item.event_id)
