"""The app as gunicorn serves it for `bench/load.py`. Not part of the product.

The one difference from production: sign-in is exempt from the rate limiter. The product
allows 20 sign-ins a minute per address and 10 per 10 minutes per email, by design, and a
load run comes from one address; the API keeps its limiter (raised by the run's
API_RATE_LIMIT), so its Redis round trips are in the figures.
"""

from __future__ import annotations

from flask import request

from app import create_app
from app.extensions import limiter

app = create_app()


@limiter.request_filter
def _sign_in_is_not_limited() -> bool:
    return request.endpoint == "auth.login"
