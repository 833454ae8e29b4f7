"""Security headers on every response: a strict Content-Security-Policy, no sniffing, no
framing, a referrer policy, and HSTS when the request came over HTTPS. And limits on request
bodies, so no form can make a worker read an unbounded body into memory.

The policy allows no inline script or style and no eval: the pages load their script and style
from /static only, htmx is configured for it (static/js/app.js), and bars are sized from
`data-pct` by a script rather than by style attributes.
"""

from __future__ import annotations

from flask import Flask, Request, Response, request

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Two years, the preload list's minimum; browsers only honour it over HTTPS.
STRICT_TRANSPORT_SECURITY = "max-age=63072000; includeSubDomains"

# Uploads (multipart: the operators' call-data import) may be this large; any other body, a
# form's fields above all, much less. Werkzeug bounds only multipart text parts by itself: an
# url-encoded form would otherwise be read whole, whatever its size. The dialer API sets its
# own limit (API_MAX_BODY_BYTES) and answers in JSON.
MAX_UPLOAD_BYTES = 24 * 1024 * 1024
MAX_FORM_BYTES = 1024 * 1024

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def add_security_headers(response: Response) -> Response:
    """Set the security headers on `response` (a view's own value for a header is kept)."""
    return set_security_headers(response, request.is_secure)


def set_security_headers(response: Response, secure: bool) -> Response:
    """`add_security_headers` for a response made outside Flask's request handling, to a
    request that came over HTTPS (`secure`) or not."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if secure:
        response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    return response


class BoundedRequest(Request):
    """A request whose body may be MAX_CONTENT_LENGTH bytes for an upload and `MAX_FORM_BYTES`
    otherwise, unless a view set its own limit; a larger body is refused with 413 when read.

    A request class, not a before_request hook: the CSRF check reads the form before any hook
    of ours would run.
    """

    @property
    def max_content_length(self) -> int | None:
        limit = super().max_content_length
        if self._max_content_length is not None or self.mimetype == "multipart/form-data":
            return limit
        return MAX_FORM_BYTES if limit is None else min(limit, MAX_FORM_BYTES)

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


def init_security(app: Flask) -> None:
    """Add the security headers to every response of `app` (error pages and static files
    too) and limit the size of request bodies."""
    if app.config["MAX_CONTENT_LENGTH"] is None:  # Flask's default: no limit at all
        app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    app.request_class = BoundedRequest
    app.after_request(add_security_headers)
