"""The operator console: the service's own staff, across every tenant."""

from flask import Blueprint, abort
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from app.web import login_required_response

bp = Blueprint("ops", __name__, url_prefix="/ops")


@bp.before_request
def _operators_only() -> BaseResponse | None:
    if not current_user.is_authenticated:
        return login_required_response()
    if not current_user.is_operator:
        abort(404)  # a client learns nothing, not even that the console exists
    return None


from app.ops import (  # noqa: E402, F401
    billing_runs,
    call_data,
    jobs,
    outbox,
    plans,
    settings_views,
    tenants,
)
