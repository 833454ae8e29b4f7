"""The OpenAPI 3.1 document of the API, built from the same field rules that check the items."""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.api.schemas import ATTEMPT_FIELDS, LEAD_FIELDS, MAX_ITEMS, object_schema
from app.calls.batch import ItemStatus
from app.models import Disposition


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(
    description: str, schema: str = "Error", headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {
    "description": "Seconds to wait before sending again.",
    "schema": {"type": "integer"},
}


# How the operations connect (OpenAPI links; schemathesis follows them in its stateful tests):
# the same batch sent again changes nothing, and a recorded lead is then called.
_SEND_AGAIN = {
    "description": (
        "The same batch again, as a dialer retrying after a lost answer: every item answers "
        "`duplicate` (or its error again), nothing is counted twice."
    ),
    "requestBody": "$request.body",
}
_CALL_THE_LEAD = {
    "operationId": "record_attempts",
    "description": "A call attempt on the first lead of the batch, placed when it arrived.",
    "requestBody": {
        "attempts": [
            {
                "event_id": "$response.body#/results/0/external_id",
                "seat": "$request.body#/leads/0/seat",
                "lead_external_id": "$response.body#/results/0/external_id",
                "attempted_at": "$request.body#/leads/0/received_at",
                "disposition": Disposition.LIVE_TRANSFER.value,
                "duration_seconds": 60,
            }
        ]
    },
}


def _batch_links(list_name: str) -> dict[str, Any]:
    links: dict[str, Any] = {"SendAgain": {"operationId": f"record_{list_name}", **_SEND_AGAIN}}
    if list_name == "leads":
        links["CallTheLead"] = _CALL_THE_LEAD
    return links


def _batch_operation(
    summary: str, list_name: str, item: str, result: str, description: str
) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": description,
        "operationId": f"record_{list_name}",
        "security": [{"apiKey": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": [list_name],
                        "properties": {
                            list_name: {
                                "type": "array",
                                "maxItems": MAX_ITEMS,
                                "items": _ref(item),
                            }
                        },
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": (
                    "The body was read: one result per item, in order. Items with errors were "
                    "not recorded; the others were."
                ),
                "content": {"application/json": {"schema": _ref(result)}},
                "links": _batch_links(list_name),
            },
            "400": _error("The body is not valid JSON."),
            "401": _error("The API key is missing, invalid or revoked."),
            "413": _error(
                "The body is larger than the limit (given in `limit_bytes`).", "TooLarge"
            ),
            "415": _error("The body is not sent as application/json."),
            "422": _error(
                f"The body is not an object with an `{list_name}` list of at most {MAX_ITEMS:,} "
                "items."
            ),
            "429": _error(
                "Too many requests with this API key; wait and send again.",
                headers={"Retry-After": _RETRY_AFTER},
            ),
        },
    }


def _results_schema(ident: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["results", "created", "duplicates", "errors"],
        "properties": {
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", ident, "status", "errors"],
                    "properties": {
                        "index": {"type": "integer", "minimum": 0},
                        ident: {"type": ["string", "null"]},
                        "status": {"type": "string", "enum": [s.value for s in ItemStatus]},
                        "errors": {"type": "array", "items": _ref("FieldError")},
                    },
                },
            },
            "created": {"type": "integer", "minimum": 0},
            "duplicates": {"type": "integer", "minimum": 0},
            "errors": {"type": "integer", "minimum": 0},
        },
    }


def openapi_document() -> dict[str, Any]:
    """The document served at /api/v1/openapi.json."""
    limit = current_app.config["API_RATE_LIMIT"]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Seatwise dialer API",
            "version": "1.0.0",
            "description": (
                "Leads and call attempts from the ISA team's dialer. Every item is idempotent: "
                "a lead by (seat, external_id), an attempt by event_id; sending one again "
                "answers `duplicate` and changes nothing. Times are ISO 8601 with an offset and "
                "may not be in the future (5 minutes of clock skew are allowed). Requests are "
                f"limited to {limit} per API key and "
                f"{current_app.config['API_MAX_BODY_BYTES']:,} bytes."
            ),
        },
        "paths": {
            "/api/v1/leads": {
                "post": _batch_operation(
                    "Record leads",
                    "leads",
                    "Lead",
                    "LeadResults",
                    "Leads a seat received; each is stored once per (seat, external_id).",
                )
            },
            "/api/v1/call-attempts": {
                "post": _batch_operation(
                    "Record call attempts",
                    "attempts",
                    "CallAttempt",
                    "CallAttemptResults",
                    "Call attempts; each is stored once per event_id. A lead counts against "
                    "its account's plan once, in the billing period of its first attempt. An "
                    "attempt made after its seat was deactivated is refused.",
                )
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi_document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "429": _error(
                            "Too many requests; wait and send again.",
                            headers={"Retry-After": _RETRY_AFTER},
                        ),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from `flask apikeys create NAME`.",
                }
            },
            "schemas": {
                "Lead": object_schema(LEAD_FIELDS),
                "CallAttempt": object_schema(ATTEMPT_FIELDS),
                "LeadResults": _results_schema("external_id"),
                "CallAttemptResults": _results_schema("event_id"),
                "FieldError": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {
                        "field": {
                            "type": ["string", "null"],
                            "description": "The item's field (lead.phone: nested); null: the "
                            "item as a whole.",
                        },
                        "message": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "TooLarge": {
                    "type": "object",
                    "required": ["error", "limit_bytes"],
                    "properties": {
                        "error": {"type": "string"},
                        "limit_bytes": {"type": "integer"},
                    },
                },
            },
        },
    }
