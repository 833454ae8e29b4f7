"""The dialer API's batches: leads and call attempts are stored once each, bad items are refused
one by one with a message naming the field, the counters move in the same transaction, and
concurrent deliveries of the same items (20 at once, over HTTP) store them once."""

from __future__ import annotations

import http.client
import itertools
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.api.auth import create_api_key
from app.api.ingest import in_transaction
from app.billing_portal.closing import close_periods
from app.billing_portal.operations import cancel
from app.calls.operations import USAGE_FIELDS, recompute_counters
from app.extensions import db
from app.models import (
    Account,
    BillingPeriod,
    CallAttempt,
    Disposition,
    Lead,
    Seat,
    SeatUsage,
    UsageDay,
    utcnow,
)
from app.seats.operations import deactivate_seat
from app.tenancy import tenant_context
from tests import environment, factories
from tests.live import live_app, serve

_numbers = itertools.count(1)
PHONE = "(415) 555-2671"
PHONE_E164 = "+14155552671"


# -- helpers ------------------------------------------------------------------------------------


def _account(days_ago: int = 10, seats: int = 2) -> Account:
    """An agency subscribed `days_ago` days ago, so recent times fall inside its open M1."""
    zone = ZoneInfo("America/New_York")
    start = (utcnow() - timedelta(days=days_ago)).astimezone(zone).date()
    return factories.subscribed_account(kind="agency", seats=seats, start=start)


def _seats(account: Account) -> list[Seat]:
    with tenant_context(account.id):
        return list(db.session.scalars(sa.select(Seat).order_by(Seat.id)))


def _periods(account: Account) -> list[BillingPeriod]:
    with tenant_context(account.id):
        return list(
            db.session.scalars(
                sa.select(BillingPeriod)
                .order_by(BillingPeriod.month_index)
                .execution_options(populate_existing=True)
            )
        )


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def lead_details(**overrides: Any) -> dict[str, Any]:
    n = next(_numbers)
    return {
        "name": f"Lead {n}",
        "phone": PHONE,
        "email": f"lead{n}@example.com",
        "source": "Zillow",
        "received_at": _iso(utcnow() - timedelta(hours=2)),
        **overrides,
    }


def attempt(on: Seat, **overrides: Any) -> dict[str, Any]:
    """A call attempt item on seat `on`, for a new lead (its details included)."""
    n = next(_numbers)
    return {
        "event_id": f"ev-{n}",
        "seat": on.reference,
        "lead_external_id": f"L-{n}",
        "lead": lead_details(),
        "attempted_at": _iso(utcnow() - timedelta(hours=1)),
        "disposition": "voicemail_no_answer",
        "duration_seconds": 42,
        "isa_agent": "Maya Chen",
        "notes": "",
        **overrides,
    }


def lead(on: Seat, **overrides: Any) -> dict[str, Any]:
    """A lead item on seat `on`."""
    return {"seat": on.reference, "external_id": f"Z-{next(_numbers)}", **lead_details()} | (
        overrides
    )


class Api:
    """The test client with the API key's header."""

    def __init__(self, client: FlaskClient, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    def post(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        if body is not None:
            kwargs["json"] = body
        return self.client.post(f"/api/v1/{path}", headers=self.headers, **kwargs)

    def attempts(self, *items: Any) -> dict[str, Any]:
        response = self.post("call-attempts", {"attempts": list(items)})
        assert response.status_code == 200, response.get_data(as_text=True)
        return dict(response.get_json())

    def leads(self, *items: Any) -> dict[str, Any]:
        response = self.post("leads", {"leads": list(items)})
        assert response.status_code == 200, response.get_data(as_text=True)
        return dict(response.get_json())


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client, create_api_key("dialer").secret)


@pytest.fixture
def agency() -> Account:
    return _account()


def statuses(answer: dict[str, Any]) -> list[str]:
    return [result["status"] for result in answer["results"]]


def errors_of(answer: dict[str, Any], index: int = 0) -> list[tuple[str | None, str]]:
    return [(e["field"], e["message"]) for e in answer["results"][index]["errors"]]


def usage(account: Account, seat: Seat, period: BillingPeriod | None = None) -> dict[str, int]:
    period = period or _periods(account)[-1]
    with tenant_context(account.id):
        row = db.session.scalars(
            sa.select(SeatUsage)
            .where(SeatUsage.period_id == period.id, SeatUsage.seat_id == seat.id)
            .execution_options(populate_existing=True)
        ).one_or_none()
    return {name: getattr(row, name) if row else 0 for name in USAGE_FIELDS}


def stored_attempts(account: Account) -> list[CallAttempt]:
    with tenant_context(account.id):
        return list(
            db.session.scalars(
                sa.select(CallAttempt)
                .order_by(CallAttempt.id)
                .execution_options(populate_existing=True)
            )
        )


def stored_leads(account: Account) -> list[Lead]:
    with tenant_context(account.id):
        return list(
            db.session.scalars(
                sa.select(Lead).order_by(Lead.id).execution_options(populate_existing=True)
            )
        )


# -- leads --------------------------------------------------------------------------------------


def test_leads_are_stored_once_per_seat_and_external_id(api: Api, agency: Account) -> None:
    first, second = _seats(agency)
    received = utcnow() - timedelta(hours=3)
    items = [
        lead(first, external_id="Z-1", received_at=_iso(received), phone="415-555-2671"),
        lead(second, external_id="Z-1"),
        lead(first, external_id="Z-1", name="A repeat in the same batch"),
    ]

    answer = api.leads(*items)
    again = api.leads(*items)

    assert statuses(answer) == ["created", "created", "duplicate"]
    assert (answer["created"], answer["duplicates"], answer["errors"]) == (2, 1, 0)
    assert [r["external_id"] for r in answer["results"]] == ["Z-1", "Z-1", "Z-1"]
    assert statuses(again) == ["duplicate"] * 3
    leads = stored_leads(agency)
    assert [(row.seat_id, row.phone) for row in leads] == [
        (first.id, PHONE_E164),
        (second.id, PHONE_E164),
    ]
    assert leads[0].received_at == received
    assert usage(agency, first)["leads_received"] == 1
    assert usage(agency, second)["leads_received"] == 1
    with tenant_context(agency.id):
        assert db.session.scalar(
            sa.select(Seat.last_lead_at)
            .where(Seat.id == first.id)
            .execution_options(populate_existing=True)
        ) == (received)
    assert recompute_counters(agency.id) == []


def test_a_lead_batch_with_bad_items_stores_the_good_ones(api: Api, agency: Account) -> None:
    seat = _seats(agency)[0]
    answer = api.leads(
        lead(seat, external_id="good-1"),
        lead(seat, seat="ST-NOPE"),
        lead(seat, phone="12345", email="not-an-email"),
        {"seat": seat.reference, "received_at": "2026-11-26T10:00:00"},
        lead(seat, external_id="good-2", email=None, name=None),
    )

    assert statuses(answer) == ["created", "error", "error", "error", "created"]
    assert errors_of(answer, 1) == [("seat", "unknown seat ST-NOPE")]
    assert errors_of(answer, 2) == [
        (
            "phone",
            "is not a valid phone number: '12345' (write it as +1 415 555 2671 or, for North "
            "America, (415) 555-2671)",
        ),
        ("email", "is not an email address: 'not-an-email'"),
    ]
    assert errors_of(answer, 3) == [
        ("external_id", "is required"),
        ("phone", "is required"),
        (
            "received_at",
            "must include a time zone, such as 2026-11-26T14:30:00-05:00 or 2026-11-26T19:30:00Z",
        ),
    ]
    assert answer["results"][3]["external_id"] is None
    assert [row.external_id for row in stored_leads(agency)] == ["good-1", "good-2"]
    assert stored_leads(agency)[1].email == ""
    assert usage(agency, seat)["leads_received"] == 2


# -- call attempts ------------------------------------------------------------------------------


def test_a_first_attempt_creates_its_lead_and_counts_it_once(api: Api, agency: Account) -> None:
    seat = _seats(agency)[0]
    first = attempt(seat, lead_external_id="L-A", disposition="callback_later")
    second = attempt(seat, lead_external_id="L-A", lead=None, disposition="live_transfer")
    third = attempt(seat, lead_external_id="L-A", lead=None, disposition="live_transfer")

    answer = api.attempts(first, second)
    later = api.attempts(third)

    assert statuses(answer) == ["created", "created"]
    assert statuses(later) == ["created"]
    [row] = stored_leads(agency)
    assert (row.external_id, row.phone, row.attempts_count, row.contacted, row.closed) == (
        "L-A",
        PHONE_E164,
        3,
        True,
        True,
    )
    assert row.last_disposition is Disposition.LIVE_TRANSFER
    assert usage(agency, seat) == {
        "leads_received": 1,
        "leads_called": 1,
        "leads_contacted": 1,
        "transfers": 1,
        "appointments": 0,
        "attempts": 3,
        "late_leads": 0,
    }
    assert recompute_counters(agency.id) == []


def test_a_repeated_event_id_is_a_duplicate_and_changes_nothing(api: Api, agency: Account) -> None:
    seat = _seats(agency)[0]
    item = attempt(seat, event_id="dialer-7")
    assert statuses(api.attempts(item, item)) == ["created", "duplicate"]
    before = (usage(agency, seat), [(a.id, a.disposition) for a in stored_attempts(agency)])

    # The same event id again, even with other content, is the same attempt.
    changed = {**item, "disposition": "booked_appointment", "lead_external_id": "other"}
    answer = api.attempts(item, changed)

    assert statuses(answer) == ["duplicate", "duplicate"]
    assert [r["event_id"] for r in answer["results"]] == ["dialer-7", "dialer-7"]
    assert (answer["created"], answer["duplicates"]) == (0, 2)
    after = (usage(agency, seat), [(a.id, a.disposition) for a in stored_attempts(agency)])
    assert after == before
    assert before[0]["attempts"] == before[0]["leads_called"] == 1
    assert len(stored_leads(agency)) == 1


def test_an_attempt_for_a_closed_period_lands_in_the_open_period_flagged_late(
    api: Api,
) -> None:
    account = _account(days_ago=40)
    seat = _seats(account)[0]
    m1 = _periods(account)[0]
    db.session.commit()
    assert close_periods([m1.id], m1.ends_at + timedelta(hours=3), "test").closed == 1
    m1, m2 = _periods(account)
    at = m1.ends_at - timedelta(days=1)

    answer = api.attempts(
        attempt(seat, attempted_at=_iso(at), lead=lead_details(received_at=_iso(at)))
    )

    assert statuses(answer) == ["created"]
    [stored] = stored_attempts(account)
    assert (stored.period_id, stored.late) == (m2.id, True)
    assert usage(account, seat, m2)["late_leads"] == 1
    assert usage(account, seat, m1)["leads_called"] == 0
    assert recompute_counters(account.id) == []


def test_a_partial_batch_stores_the_good_items_and_reports_each_bad_one(
    api: Api, agency: Account
) -> None:
    seat = _seats(agency)[0]
    good = [attempt(seat) for _ in range(3)]
    answer = api.attempts(
        good[0],
        attempt(seat, disposition="hung_up"),
        good[1],
        attempt(seat, seat="ST-NOPE"),
        good[2],
    )

    assert statuses(answer) == ["created", "error", "created", "error", "created"]
    assert [r["index"] for r in answer["results"]] == [0, 1, 2, 3, 4]
    assert (answer["created"], answer["duplicates"], answer["errors"]) == (3, 0, 2)
    assert sorted(a.event_id for a in stored_attempts(agency)) == sorted(
        item["event_id"] for item in good
    )
    assert usage(agency, seat)["leads_called"] == 3
    # The refused items stored nothing, not even their new leads.
    assert len(stored_leads(agency)) == 3


def _future() -> str:
    return _iso(utcnow() + timedelta(minutes=10))


CHOICES = (
    "live_transfer, booked_appointment, callback_later, voicemail_no_answer, "
    "not_interested_dnc, bad_data_dnc"
)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"event_id": None}, [("event_id", "is required")], id="missing event id"),
        pytest.param({"event_id": "  "}, [("event_id", "must not be empty")], id="blank"),
        pytest.param({"event_id": 7}, [("event_id", "must be a string")], id="not a string"),
        pytest.param(
            {"event_id": "e" * 101},
            [("event_id", "must be at most 100 characters")],
            id="too long",
        ),
        pytest.param({"seat": "ST-NOPE"}, [("seat", "unknown seat ST-NOPE")], id="unknown seat"),
        pytest.param(
            {"seat": "ST-\x00", "notes": "a\x00b"},
            [
                ("seat", "must not contain a NUL character (\\u0000)"),
                ("notes", "must not contain a NUL character (\\u0000)"),
            ],
            id="NUL characters",
        ),
        pytest.param(
            {"lead": "__surrogate__"},
            [("lead.name", "must be valid Unicode text (it holds an unpaired surrogate)")],
            id="unpaired surrogate",
        ),
        pytest.param(
            {"attempted_at": "__future__"},
            [("attempted_at", "is in the future: the server's time is")],
            id="future",
        ),
        pytest.param(
            {"attempted_at": "2026-11-26T10:00:00"},
            [("attempted_at", "must include a time zone, such as 2026-11-26T14:30:00-05:00")],
            id="naive time",
        ),
        pytest.param(
            {"attempted_at": "yesterday"},
            [("attempted_at", "is not an ISO 8601 date-time such as 2026-11-26T14:30:00-05:00")],
            id="not a time",
        ),
        pytest.param(
            {"attempted_at": 1764000000},
            [("attempted_at", "must be a date-time string such as 2026-11-26T14:30:00-05:00")],
            id="a number for a time",
        ),
        pytest.param(
            {"attempted_at": "0001-01-01T00:00:00+01:00"},
            [("attempted_at", "is out of range")],
            id="out of range",
        ),
        pytest.param(
            {"disposition": "hung_up"},
            [("disposition", f"unknown disposition 'hung_up'; expected one of {CHOICES}")],
            id="unknown disposition",
        ),
        pytest.param(
            {"disposition": 3},
            [("disposition", f"unknown disposition a non-string value; expected one of {CHOICES}")],
            id="disposition not a string",
        ),
        pytest.param(
            {"duration_seconds": -1},
            [("duration_seconds", "must be between 0 and 86400 seconds")],
            id="negative duration",
        ),
        pytest.param(
            {"duration_seconds": "42"},
            [("duration_seconds", "must be a whole number of seconds")],
            id="duration as text",
        ),
        pytest.param(
            {"duration_seconds": True},
            [("duration_seconds", "must be a whole number of seconds")],
            id="duration as a boolean",
        ),
        pytest.param(
            {"duration_seconds": 4.5},
            [("duration_seconds", "must be a whole number of seconds")],
            id="fractional duration",
        ),
        pytest.param(
            {"notes": "n" * 5001}, [("notes", "must be at most 5000 characters")], id="notes"
        ),
        pytest.param({"lead": "Ann"}, [("lead", "must be an object")], id="lead not an object"),
        pytest.param(
            {"lead": {"name": "Ann", "phone": "(555) 010-0000"}},
            [
                (
                    "lead.phone",
                    "is not a valid phone number: '(555) 010-0000' (write it as +1 415 555 2671 "
                    "or, for North America, (415) 555-2671)",
                ),
                ("lead.received_at", "is required"),
            ],
            id="malformed phone and missing received time",
        ),
        pytest.param(
            {"lead": "__future_lead__"},
            [("lead.received_at", "is in the future: the server's time is")],
            id="lead received in the future",
        ),
        pytest.param(
            {"lead": None, "lead_external_id": "never-seen"},
            [
                (
                    "lead_external_id",
                    'unknown lead never-seen on seat __seat__: send its details in "lead" '
                    "with its first attempt",
                )
            ],
            id="unknown lead without details",
        ),
    ],
)
def test_each_bad_field_is_named_with_its_reason(
    api: Api,
    agency: Account,
    overrides: dict[str, Any],
    expected: list[tuple[str, str]],
) -> None:
    seat = _seats(agency)[0]
    item = attempt(seat)
    for name, value in overrides.items():
        if value is None:
            item.pop(name) if name == "event_id" else item.update({name: None})
        elif value == "__future__":
            item[name] = _future()
        elif value == "__future_lead__":
            item[name] = lead_details(received_at=_future())
        elif value == "__surrogate__":
            item[name] = lead_details(name="Ann \ud800")
        else:
            item[name] = value

    answer = api.attempts(item, attempt(seat))

    assert statuses(answer) == ["error", "created"]
    found = errors_of(answer)
    assert len(found) == len(expected), found
    for (field, message), (want_field, want_message) in zip(found, expected, strict=True):
        assert field == want_field
        assert message.startswith(want_message.replace("__seat__", seat.reference)), message


def test_an_item_that_is_not_an_object_is_refused_alone(api: Api, agency: Account) -> None:
    answer = api.attempts(["not", "an", "object"], attempt(_seats(agency)[0]))

    assert statuses(answer) == ["error", "created"]
    assert answer["results"][0]["event_id"] is None
    assert errors_of(answer) == [(None, "must be an object")]


def test_an_event_id_of_another_account_is_refused(
    api: Api, agency: Account, other_account: Account
) -> None:
    assert statuses(api.attempts(attempt(_seats(other_account)[0], event_id="shared-7"))) == [
        "created"
    ]

    answer = api.attempts(attempt(_seats(agency)[0], event_id="shared-7"))

    assert errors_of(answer) == [("event_id", "is already used by an attempt of another account")]
    assert stored_attempts(agency) == []


def test_an_attempt_after_the_open_period_ends_is_refused_until_its_period_opens(
    api: Api,
) -> None:
    account = _account(days_ago=40)  # M1 has ended, and is not closed yet
    m1 = _periods(account)[0]
    at = m1.ends_at + timedelta(minutes=5)
    answer = api.attempts(attempt(_seats(account)[0], attempted_at=_iso(at)))

    assert errors_of(answer) == [
        (
            "attempted_at",
            "is after the end of the open billing period; its period opens when that one "
            "closes: send the attempt again later",
        )
    ]


def test_an_account_without_an_open_period_takes_no_attempts(api: Api) -> None:
    account = _account(days_ago=20)
    seat = _seats(account)[0]
    with tenant_context(account.id):
        cancel(account)
    m1 = _periods(account)[0]
    db.session.commit()
    # The cancelled plan ends with M1's close: no period is open after it.
    assert close_periods([m1.id], m1.ends_at + timedelta(hours=3), "test").closed == 1
    assert len(_periods(account)) == 1

    answer = api.attempts(attempt(seat))

    assert errors_of(answer) == [
        ("seat", f"the account of seat {seat.reference} has no open billing period")
    ]


def test_a_deactivated_seat_takes_the_attempts_made_before_and_refuses_later_ones(
    api: Api,
) -> None:
    account = _account()
    seat = _seats(account)[0]
    with tenant_context(account.id):
        deactivate_seat(account, seat)
    db.session.commit()
    since = seat.deactivated_at
    assert since is not None
    before = attempt(seat, attempted_at=_iso(since - timedelta(minutes=30)))
    after = attempt(seat, attempted_at=_iso(since + timedelta(seconds=1)))

    answer = api.attempts(before, after)

    assert [result["status"] for result in answer["results"]] == ["created", "error"]
    assert errors_of(answer, 1) == [
        (
            "seat",
            f"seat {seat.reference} is deactivated since {since:%Y-%m-%d %H:%M} UTC: the ISA "
            "team does not work its leads, so attempts made after that are not accepted",
        )
    ]
    assert usage(account, seat)["leads_called"] == 1
    with tenant_context(account.id):
        stored = db.session.scalars(sa.select(CallAttempt.event_id)).all()
    assert stored == [before["event_id"]]


# -- the envelope -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        pytest.param(
            {"data": "{}", "content_type": "text/plain"},
            415,
            "send the body as JSON, with the header Content-Type: application/json",
            id="not JSON",
        ),
        pytest.param(
            {"data": '{"attempts": [', "content_type": "application/json"},
            400,
            "the body is not valid JSON: Expecting value: line 1 column 15 (char 14)",
            id="invalid JSON",
        ),
        pytest.param(
            {"data": b'{"attempts": "\xff"}', "content_type": "application/json"},
            400,
            "the body is not valid JSON: 'utf-8' codec can't decode byte 0xff in position 14: "
            "invalid start byte",
            id="not UTF-8",
        ),
        pytest.param(
            {"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"},
            400,
            "the body is not valid JSON: it is nested too deeply",
            id="nested too deeply",
        ),
        pytest.param(
            {"json": {"leads": []}},
            422,
            'the body must be a JSON object with an "attempts" list',
            id="no attempts list",
        ),
        pytest.param(
            {"json": [{"event_id": "e"}]},
            422,
            'the body must be a JSON object with an "attempts" list',
            id="a list, not an object",
        ),
        pytest.param(
            {"json": {"attempts": {"event_id": "e"}}},
            422,
            'the body must be a JSON object with an "attempts" list',
            id="attempts not a list",
        ),
        pytest.param(
            {"json": {"attempts": [{}] * 1001}},
            422,
            "at most 1,000 attempts per request (got 1,001): split the batch",
            id="too many items",
        ),
    ],
)
def test_a_malformed_envelope_is_refused_whole(
    api: Api, kwargs: dict[str, Any], status: int, message: str
) -> None:
    response = api.post("call-attempts", **kwargs)

    assert response.status_code == status
    assert response.get_json() == {"error": message}


def test_an_empty_batch_is_answered_with_no_results(api: Api) -> None:
    assert api.attempts() == {"results": [], "created": 0, "duplicates": 0, "errors": 0}


def test_a_body_over_the_size_limit_is_refused_with_413_naming_the_limit(
    app: Flask, api: Api, agency: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "API_MAX_BODY_BYTES", 10_000)
    seat = _seats(agency)[0]
    small = {"attempts": [attempt(seat)]}
    large = {"attempts": [attempt(seat) for _ in range(50)]}

    assert api.post("call-attempts", small).status_code == 200
    response = api.post("call-attempts", large)

    assert response.status_code == 413
    assert response.get_json() == {
        "error": "the request body is larger than the limit of 10,000 bytes: send fewer items "
        "per request",
        "limit_bytes": 10_000,
    }
    assert len(stored_attempts(agency)) == 1


def test_the_default_size_limit_takes_a_full_batch(app: Flask, api: Api, agency: Account) -> None:
    seat = _seats(agency)[0]
    batch = [attempt(seat, notes="n" * 1000) for _ in range(1000)]
    body = json.dumps({"attempts": batch})
    assert len(body) < app.config["API_MAX_BODY_BYTES"] == 2 * 1024 * 1024

    answer = api.attempts(*batch)

    assert answer["created"] == 1000


# -- real concurrency: deliveries racing over HTTP ----------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[Flask, str]]:
    with live_app("api_race") as app, serve(app) as base_url:
        yield app, base_url


def _post_json(base_url: str, path: str, key: str, body: Any) -> tuple[int, Any]:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        connection.request(
            "POST",
            f"/api/v1/{path}",
            body=json.dumps(body),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _all_at_once(count: int, deliver: Any) -> list[Any]:
    """Run `deliver(i)` in `count` threads released together; return their answers."""
    barrier = threading.Barrier(count)
    answers: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            answers[i] = deliver(i)
        except BaseException as exc:  # reported to the test thread
            answers[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


@pytest.mark.live
def test_twenty_concurrent_copies_store_one_attempt_and_count_it_once(
    served: tuple[Flask, str],
) -> None:
    app, base_url = served
    with app.app_context():
        account = _account()
        account_id, seat = account.id, _seats(account)[0]
        key = create_api_key("dialer").secret
        db.session.commit()
        item = attempt(seat, event_id="copy-1", disposition="live_transfer")

    answers = _all_at_once(
        20, lambda _: _post_json(base_url, "call-attempts", key, {"attempts": [item]})
    )

    assert all(isinstance(a, tuple) and a[0] == 200 for a in answers), answers
    assert sorted(a[1]["results"][0]["status"] for a in answers) == ["created"] + ["duplicate"] * 19
    with app.app_context(), tenant_context(account_id):
        assert db.session.scalar(sa.select(sa.func.count(CallAttempt.id))) == 1
        assert db.session.scalar(sa.select(sa.func.count(Lead.id))) == 1
        row = db.session.scalars(sa.select(SeatUsage)).one()
        assert (row.leads_received, row.leads_called, row.attempts, row.transfers) == (1, 1, 1, 1)
        assert recompute_counters(account_id) == []


@pytest.mark.live
def test_twenty_concurrent_copies_of_a_lead_store_it_once(served: tuple[Flask, str]) -> None:
    app, base_url = served
    with app.app_context():
        account = _account()
        account_id, seat = account.id, _seats(account)[0]
        key = create_api_key("dialer").secret
        db.session.commit()
        item = lead(seat, external_id="Z-copy")

    answers = _all_at_once(20, lambda _: _post_json(base_url, "leads", key, {"leads": [item]}))

    assert all(isinstance(a, tuple) and a[0] == 200 for a in answers), answers
    assert sorted(a[1]["results"][0]["status"] for a in answers) == ["created"] + ["duplicate"] * 19
    with app.app_context(), tenant_context(account_id):
        assert db.session.scalar(sa.select(sa.func.count(Lead.id))) == 1
        assert db.session.scalars(sa.select(SeatUsage)).one().leads_received == 1


@pytest.mark.live
def test_counters_equal_a_recount_after_concurrent_overlapping_batches(
    served: tuple[Flask, str],
) -> None:
    """Eight senders at once, over two accounts: batches share leads and repeat each other's
    event ids, in different orders; afterwards `flask usage reconcile` finds no drift."""
    app, base_url = served
    with app.app_context():
        accounts = [_account(), _account()]
        slugs, account_ids = [a.slug for a in accounts], [a.id for a in accounts]
        seats = [seat for account in accounts for seat in _seats(account)]
        key = create_api_key("dialer").secret
        db.session.commit()
        now = utcnow()
        dispositions = list(Disposition)
        items = [
            attempt(
                seats[n % len(seats)],
                event_id=f"race-{n}",
                lead_external_id=f"L-race-{n % 13}",
                lead=lead_details(received_at=_iso(now - timedelta(days=2))),
                attempted_at=_iso(now - timedelta(hours=n % 40, minutes=n)),
                disposition=dispositions[n % len(dispositions)].value,
            )
            for n in range(120)
        ]

    def deliver(sender: int) -> tuple[int, Any]:
        # Each sender sends overlapping halves of the items, in its own order.
        mine = items[sender * 10 : sender * 10 + 60]
        ordered = mine if sender % 2 else list(reversed(mine))
        return _post_json(base_url, "call-attempts", key, {"attempts": ordered})

    answers = _all_at_once(8, deliver)

    assert all(isinstance(a, tuple) and a[0] == 200 for a in answers), answers
    assert sum(a[1]["errors"] for a in answers) == 0
    assert sum(a[1]["created"] for a in answers) == len(items)  # each stored once
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["usage", "reconcile"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{slug}: no drift" for slug in slugs]
    with app.app_context():
        for account_id in account_ids:
            with tenant_context(account_id):
                called = db.session.scalar(sa.select(sa.func.sum(SeatUsage.leads_called)))
                leads = db.session.scalar(
                    sa.select(sa.func.count(Lead.id)).where(Lead.attempts_count > 0)
                )
                assert called == leads


# -- flask usage reconcile ----------------------------------------------------------------------


def test_reconcile_reports_and_repairs_drift(app: Flask, api: Api, agency: Account) -> None:
    seat = _seats(agency)[0]
    api.attempts(attempt(seat))
    period = _periods(agency)[-1]
    with tenant_context(agency.id):
        db.session.execute(
            sa.update(SeatUsage)
            .where(SeatUsage.seat_id == seat.id)
            .values(leads_called=SeatUsage.leads_called + 2)
        )
        day = db.session.scalars(sa.select(UsageDay.day).where(UsageDay.seat_id == seat.id)).first()
        db.session.execute(
            sa.update(UsageDay).where(UsageDay.seat_id == seat.id).values(leads_called=5)
        )
    runner = app.test_cli_runner()

    first = runner.invoke(args=["usage", "reconcile", agency.slug])
    second = runner.invoke(args=["usage", "reconcile", agency.slug])

    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [
        f"{agency.slug}: {period.key} {seat.reference} leads_called: 3 → 1",
        f"{agency.slug}: {period.key} {seat.reference} {day} leads_called: 5 → 1",
    ]
    assert second.output == f"{agency.slug}: no drift\n"
    assert usage(agency, seat)["leads_called"] == 1


def test_reconcile_names_an_unknown_account(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["usage", "reconcile", "nobody"])

    assert result.exit_code == 2
    assert "no account 'nobody'" in result.output


def test_times_are_stored_in_utc_whatever_their_offset(api: Api, agency: Account) -> None:
    seat = _seats(agency)[0]
    moment = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
    local = moment.astimezone(ZoneInfo("Asia/Kolkata"))
    answer = api.attempts(attempt(seat, attempted_at=local.isoformat()))

    assert statuses(answer) == ["created"]
    assert stored_attempts(agency)[0].attempted_at == moment.astimezone(UTC)


@pytest.mark.live
@pytest.mark.skipif(environment.is_postgres(), reason="SQLite's write lock")
def test_on_sqlite_a_batch_waits_for_another_writer_instead_of_failing_and_running_again() -> None:
    with live_app("api_sqlite_writer") as app, app.app_context():
        account = _account()
        account_id, seat_id = account.id, _seats(account)[0].id
        db.session.commit()  # no transaction is open when the batch starts
        other = sqlite3.connect(
            environment.sqlite_path(app.config["LIVE_DATABASE_URL"]), check_same_thread=False
        )
        other.isolation_level = None
        other.execute("BEGIN IMMEDIATE")  # another writer: holds the lock for half a second
        other.execute("UPDATE seats SET client_label = 'Held' WHERE id = ?", (seat_id,))
        release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
        runs: list[int] = []

        def record() -> int:
            runs.append(1)
            # A read, then a write: begun as a plain (deferred) transaction, the write would
            # find the snapshot out of date after the other writer commits, fail, and run again.
            db.session.execute(sa.select(Seat.last_lead_at).where(Seat.id == seat_id)).all()
            return db.session.execute(
                sa.update(Seat).where(Seat.id == seat_id).values(client_label="Recorded")
            ).rowcount

        release.start()
        try:
            with tenant_context(account_id):
                assert in_transaction(record) == 1
        finally:
            release.join()
            other.close()

        assert len(runs) == 1
        with tenant_context(account_id):
            label = db.session.scalar(sa.select(Seat.client_label).where(Seat.id == seat_id))
        assert label == "Recorded"
