"""The dialer's HTTP API, v1 (`/api/v1`): batches of leads and call attempts.

Requests authenticate with an operator API key (`flask apikeys create NAME`), are rate-limited
per key and limited in size, and every answer — errors included — is JSON. The OpenAPI document
at `/api/v1/openapi.json` describes it exactly; the test suite checks it with schemathesis.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import cast

from flask import Blueprint, Flask, current_app, request
from flask.typing import ResponseReturnValue
from limits import parse as parse_rate_limit
from werkzeug.exceptions import HTTPException

from app.api.errors import http_error, register_error_handlers
from app.config import ConfigError
from app.extensions import csrf

API_PREFIX = "/api/v1"
DEFAULT_RATE_LIMIT = "600/minute"
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024

bp = Blueprint("api", __name__, url_prefix=API_PREFIX)
register_error_handlers(bp)

from app.api import views  # noqa: E402, F401  (the routes register on `bp`)


def init_api(app: Flask) -> None:
    """Register the API on `app`, with its settings (`API_RATE_LIMIT`, e.g. "600/minute" per
    key, and `API_MAX_BODY_BYTES`, from the config or the environment).

    CSRF protection does not apply: the API reads no cookies, every request carries its key.
    Raises `ConfigError` for a malformed setting.
    """
    app.config.setdefault(
        "API_RATE_LIMIT", os.environ.get("API_RATE_LIMIT", "").strip() or DEFAULT_RATE_LIMIT
    )
    app.config.setdefault(
        "API_MAX_BODY_BYTES",
        os.environ.get("API_MAX_BODY_BYTES", "").strip() or DEFAULT_MAX_BODY_BYTES,
    )
    try:
        parse_rate_limit(app.config["API_RATE_LIMIT"])
    except ValueError:
        raise ConfigError(
            f"API_RATE_LIMIT must read like 600/minute (got {app.config['API_RATE_LIMIT']!r})"
        ) from None
    try:
        app.config["API_MAX_BODY_BYTES"] = int(app.config["API_MAX_BODY_BYTES"])
    except ValueError:
        raise ConfigError(
            "API_MAX_BODY_BYTES must be a whole number of bytes "
            f"(got {app.config['API_MAX_BODY_BYTES']!r})"
        ) from None
    app.register_blueprint(bp)
    csrf.exempt(bp)
    # An unknown URL or method under /api matches no route, so the blueprint's handlers never
    # see it: answer those in JSON too.
    for code in (404, 405):
        app.register_error_handler(code, _routing_error)


def _routing_error(exc: HTTPException) -> ResponseReturnValue:
    if request.path.startswith("/api/"):
        return http_error(exc)
    # Elsewhere, the app's own page for the error (its handler for every HTTPException).
    page = current_app.error_handler_spec[None][None].get(HTTPException)
    if page is None:
        return exc
    return cast(Callable[[HTTPException], ResponseReturnValue], page)(exc)
