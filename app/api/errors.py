"""JSON errors of the API: `{"error": "..."}` with the status, for every failure under /api."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    RequestEntityTooLarge,
    TooManyRequests,
)

from app.extensions import db


class ApiError(Exception):
    """A request the API refuses as a whole; the message names the problem."""

    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.details = details


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, **details: Any
) -> Response:
    response = jsonify({"error": message, **details})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def register_error_handlers(bp: Blueprint) -> None:
    """Answer every error of the blueprint's routes in JSON, the app's HTML pages aside."""
    bp.register_error_handler(ApiError, _api_error)
    bp.register_error_handler(HTTPException, http_error)
    # The app's own handler for 500 is registered by status code, which Flask prefers to a
    # handler by class: the blueprint needs one by code too.
    bp.register_error_handler(500, _server_error)


def _api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.message, exc.headers, **exc.details)


def http_error(exc: HTTPException) -> Response:
    """An HTTP error raised by Flask, Werkzeug or Flask-Limiter, in the API's JSON shape."""
    if isinstance(exc, RequestEntityTooLarge):
        limit = request.max_content_length or 0
        return error_response(
            413,
            f"the request body is larger than the limit of {limit:,} bytes: "
            "send fewer items per request",
            limit_bytes=limit,
        )
    if isinstance(exc, TooManyRequests):
        return error_response(
            429,
            f"too many requests with this API key: the limit is {exc.description}; "
            "wait and send the request again",
        )
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return error_response(exc.code or 500, exc.description or exc.name, headers)


def _server_error(exc: InternalServerError) -> Response:
    db.session.rollback()  # Flask has logged the exception already
    return error_response(500, "internal error: send the request again (every item is idempotent)")
