"""The OpenAPI document at /api/v1/openapi.json describes what the API does: schemathesis sends
generated requests (valid and invalid) to every operation through WSGI and checks that none
fails with a 5xx and that every answer — status, content type, headers, body — is documented."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, settings

from app.api.auth import create_api_key
from app.api.schemas import ATTEMPT_FIELDS, LEAD_FIELDS
from app.extensions import db
from app.models import CallAttempt, Disposition, Lead
from app.tenancy import tenant_context
from tests import factories


@pytest.fixture
def api_key(app: Flask) -> str:
    return create_api_key("schemathesis").secret


@pytest.fixture
def api_schema(app: Flask, api_key: str, request: pytest.FixtureRequest) -> Any:
    # schemathesis 4.32's pytest integration still reads the node id from pytest's old private
    # attribute, gone in pytest 9: give it one.
    request.node._nodeid = request.node.nodeid
    # A real seat, so that some generated items can also be recorded, not only refused.
    factories.subscribed_account(kind="agency", seats=1)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.config.generation.update(max_examples=25)
    schema.config.checks.update(
        # An item that breaks its schema is refused on its own, in a 200 answer that lists its
        # errors (the rest of the batch is recorded): the API is meant to accept such bodies.
        # A malformed envelope is refused whole; test_api_ingest covers each of those answers.
        excluded_check_names=["negative_data_rejection"]
    )
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_does_what_its_openapi_document_says(case: Any, api_key: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"})


def test_the_document_is_openapi_3_1_with_every_field(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()

    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/api/v1/leads",
        "/api/v1/call-attempts",
        "/api/v1/openapi.json",
    }
    components = document["components"]["schemas"]
    assert set(components["Lead"]["properties"]) == set(LEAD_FIELDS)
    assert set(components["CallAttempt"]["properties"]) == set(ATTEMPT_FIELDS)
    assert components["CallAttempt"]["properties"]["disposition"]["enum"] == [
        member.value for member in Disposition
    ]
    responses = document["paths"]["/api/v1/call-attempts"]["post"]["responses"]
    assert set(responses) == {"200", "400", "401", "413", "415", "422", "429"}


# --- stateful: sequences of calls along the document's links -------------------------------


def realistic(body: Any, seat_reference: str, now: datetime) -> None:
    """Point generated items at a real seat, with a real phone and a past time, so that some
    are recorded and the links lead somewhere; every other field stays as generated."""
    if not isinstance(body, dict):
        return
    for list_name in ("leads", "attempts"):
        items = body.get(list_name)
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            item["seat"] = seat_reference
            lead = item.get("lead") if list_name == "attempts" else item
            if isinstance(lead, dict):
                lead.update(
                    phone="+14155550123", received_at=(now - timedelta(hours=1)).isoformat()
                )
            if list_name == "attempts":
                item["attempted_at"] = (now - timedelta(minutes=30)).isoformat()


def test_sequences_of_calls_never_fail_and_a_batch_sent_again_counts_nothing(
    app: Flask, api_key: str
) -> None:
    seat = factories.first_seat(factories.subscribed_account(kind="agency", seats=1))
    reference = seat.reference
    db.session.commit()  # a step that rolls back must not take the seat with it
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # Every step here sends the valid key (refusals are the stateless test's and test_api_auth's
    # business), which ignored_auth would take for a key the API failed to check.
    schema.config.checks.update(excluded_check_names=["negative_data_rejection", "ignored_auth"])
    followed: set[str] = set()

    class Dialer(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Bodies whose every item was recorded or a duplicate: sent again, none is new.
            self.recorded: set[tuple[str, str]] = set()

        def before_call(self, case: Any) -> None:
            realistic(case.body, reference, datetime.now(UTC))

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": {"Authorization": f"Bearer {api_key}"}}

        def after_call(self, response: Any, case: Any) -> None:
            assert response.status_code < 500, response.text
            if response.status_code != 200 or case.method != "POST":
                return
            followed.add(case.operation.path)
            answer = response.json()
            sent = (case.operation.path, json.dumps(case.body, sort_keys=True))
            if sent in self.recorded:
                assert answer["created"] == 0, (sent, answer)
            if answer["errors"] == 0:
                self.recorded.add(sent)

    Dialer.run(
        settings=settings(
            max_examples=6,
            stateful_step_count=4,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert {"/api/v1/leads", "/api/v1/call-attempts"} <= followed
    with tenant_context(seat.account_id):
        assert db.session.scalar(sa.select(sa.func.count(Lead.id))), "no lead was ever recorded"
        assert db.session.scalar(sa.select(sa.func.count(CallAttempt.id))), "nor any attempt"


def test_the_links_connect_the_operations(app: Flask) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    paths = schema.raw_schema["paths"]
    leads = paths["/api/v1/leads"]["post"]["responses"]["200"]["links"]
    attempts = paths["/api/v1/call-attempts"]["post"]["responses"]["200"]["links"]
    assert {name: link["operationId"] for name, link in leads.items()} == {
        "SendAgain": "record_leads",
        "CallTheLead": "record_attempts",
    }
    assert {name: link["operationId"] for name, link in attempts.items()} == {
        "SendAgain": "record_attempts"
    }
    # schemathesis resolves every link into a transition of its state machine.
    assert schema.as_state_machine() is not None
