"""The OpenAPI document at /api/v1/openapi.json describes what the API does: schemathesis sends
generated requests (valid and invalid) to every operation through WSGI and checks that none
fails with a 5xx and that every answer — status, content type, headers, body — is documented."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from app.api.auth import create_api_key
from app.api.schemas import ATTEMPT_FIELDS, LEAD_FIELDS
from app.models import Disposition
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
