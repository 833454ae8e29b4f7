"""Seatwise: the client portal of an ISA lead-calling service."""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from app.config import INSTANCE_DIR, ConfigError, load_settings
from app.extensions import csrf, db, htmx, limiter, login_manager, migrate


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment; `test_config` overrides for tests."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise SystemExit(f"Seatwise configuration error: {exc}") from None
    app = Flask(
        __name__,
        template_folder="../templates",
        static_folder="../static",
        instance_path=str(INSTANCE_DIR),
    )
    app.config.update(settings.flask_config())
    app.config.update(RATELIMIT_SWALLOW_ERRORS=True, RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True)
    if test_config:
        app.config.update(test_config)
    INSTANCE_DIR.mkdir(exist_ok=True)
    # The unchanged-poll middleware's engine: the same database, never pinged (a poll that
    # meets a dropped connection leaves the answer to the view, whose connections are pinged
    # after idling), and no transactions: its one statement needs none, and a rollback would
    # make the driver forget the statement it has prepared.
    app.config["SQLALCHEMY_BINDS"] = {
        "polls": {
            "url": app.config["SQLALCHEMY_DATABASE_URI"],
            **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
            "isolation_level": "AUTOCOMMIT",
            "pool_reset_on_return": None,
        }
    }

    db.init_app(app)
    migrate.init_app(app, db, directory=str(INSTANCE_DIR.parent / "migrations"))
    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    _init_login(app)

    from app import models  # noqa: F401  (every model registers on the metadata)
    from app.accounts import bp as accounts_bp
    from app.api import init_api
    from app.auth import bp as auth_bp
    from app.billing_portal import bp as billing_bp
    from app.cli import register_cli
    from app.onboarding import bp as onboarding_bp
    from app.ops import bp as ops_bp
    from app.reports import bp as reports_bp
    from app.seats import bp as seats_bp
    from app.security import init_security
    from app.usage import bp as usage_bp
    from app.web import forget_user_memberships, read_in_autocommit

    app.before_request(read_in_autocommit)
    app.teardown_request(forget_user_memberships)
    for blueprint in (auth_bp, usage_bp, seats_bp, billing_bp, ops_bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(onboarding_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(reports_bp)
    register_cli(app)
    _init_templates(app)
    _init_errors(app)
    init_api(app)
    init_security(app)
    from app.usage.polls import UnchangedPolls

    app.wsgi_app = UnchangedPolls(app)  # type: ignore[method-assign]
    return app


def _init_login(app: Flask) -> None:
    from app.web import login_required_response, signed_in_user

    login_manager.init_app(app)
    login_manager.user_loader(lambda user_id: signed_in_user(int(user_id)))
    login_manager.unauthorized_handler(login_required_response)
    # "basic", not "strong": brokers on phones change networks (and IPs) all day.
    login_manager.session_protection = "basic"


def _init_templates(app: Flask) -> None:
    from app.billing.money import format_cents
    from app.web import can, layout_context

    app.context_processor(layout_context)
    app.jinja_env.globals["can"] = can
    app.jinja_env.filters["money"] = format_cents


def _init_errors(app: Flask) -> None:
    pages = {400, 403, 404, 413, 429, 500}

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int] | HTTPException:
        code = exc.code or 500
        if code not in pages:
            return exc
        return render_template(f"errors/{code}.html", error=exc), code

    @app.errorhandler(500)
    def _server_error(_exc: Exception) -> tuple[str, int]:
        db.session.rollback()
        return render_template("errors/500.html"), 500
