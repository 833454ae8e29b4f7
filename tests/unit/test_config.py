"""Settings from the environment: a bad or missing one stops start-up, naming it."""

from __future__ import annotations

import pytest

from app import create_app
from app.config import INSTANCE_DIR, ConfigError, load_settings

PRODUCTION = {
    "SEATWISE_ENV": "production",
    "SECRET_KEY": "x" * 40,
    "REDIS_URL": "redis://cache.example:6379/0",
    "DATABASE_URL": "postgresql://seatwise@db.example/seatwise",
}


@pytest.fixture
def db_session() -> None:
    """Replace the autouse database fixture: settings are pure."""


def test_production_with_every_setting_loads() -> None:
    settings = load_settings(PRODUCTION)
    assert settings.env == "production"
    assert settings.secret_key == "x" * 40
    assert settings.redis_url == "redis://cache.example:6379/0"


@pytest.mark.parametrize("missing", ["SECRET_KEY", "REDIS_URL"])
def test_production_refuses_to_start_without(missing: str) -> None:
    environ = {key: value for key, value in PRODUCTION.items() if key != missing}
    with pytest.raises(ConfigError, match=missing):
        load_settings(environ)


def test_production_refuses_a_blank_secret_key() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({**PRODUCTION, "SECRET_KEY": "   "})


def test_production_refuses_a_short_secret_key() -> None:
    with pytest.raises(ConfigError, match=r"SECRET_KEY.*32"):
        load_settings({**PRODUCTION, "SECRET_KEY": "too-short"})


def test_no_seatwise_env_means_production() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings({})


def test_an_unknown_environment_is_refused() -> None:
    with pytest.raises(ConfigError, match="SEATWISE_ENV"):
        load_settings({**PRODUCTION, "SEATWISE_ENV": "staging"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://db.example/seatwise"),
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "postgresql://db.example:port/seatwise"),
        ("REDIS_URL", "http://cache.example:6379/0"),
        ("REDIS_URL", "localhost:6379"),
        ("REDIS_URL", "redis://cache.example:63x9/0"),
        ("MAIL_URL", "http://mail.example"),
        ("MAIL_URL", "mail.example:25"),
        ("MAIL_URL", "smtp://mail.example:twenty-five"),
        ("SEATWISE_BASE_URL", "portal.example"),
        ("CLOSE_INTERVAL_SECONDS", "ten minutes"),
        ("CLOSE_INTERVAL_SECONDS", "1.5"),
        ("CLOSE_INTERVAL_SECONDS", "5"),
    ],
)
def test_a_malformed_setting_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({**PRODUCTION, name: value})


def test_development_defaults_run_on_one_machine() -> None:
    settings = load_settings({"SEATWISE_ENV": "development"})
    assert settings.database_url == f"sqlite:///{INSTANCE_DIR / 'seatwise.db'}"
    assert settings.redis_url is None
    assert settings.mail_url is None
    assert settings.secret_key == "development-only-secret"
    assert settings.base_url == "http://localhost:5000"
    assert settings.close_interval_seconds == 600
    assert settings.mail_sender.endswith("@seatwise.example>")
    config = settings.flask_config()
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert config["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize(
    "given",
    [
        "postgres://seatwise:pw@db.example:5432/seatwise",
        "postgresql://seatwise:pw@db.example:5432/seatwise",
        "postgresql+psycopg://seatwise:pw@db.example:5432/seatwise",
    ],
)
def test_postgres_urls_use_the_psycopg_driver(given: str) -> None:
    settings = load_settings({**PRODUCTION, "DATABASE_URL": given})
    assert settings.database_url == "postgresql+psycopg://seatwise:pw@db.example:5432/seatwise"


def test_values_are_trimmed_and_a_trailing_slash_dropped() -> None:
    settings = load_settings(
        {**PRODUCTION, "SEATWISE_BASE_URL": " https://portal.example/ ", "MAIL_URL": " "}
    )
    assert settings.base_url == "https://portal.example"
    assert settings.mail_url is None


def test_https_base_url_makes_cookies_secure() -> None:
    config = load_settings({**PRODUCTION, "SEATWISE_BASE_URL": "https://portal.example"})
    flask_config = config.flask_config()
    assert flask_config["SESSION_COOKIE_SECURE"] is True
    assert flask_config["REMEMBER_COOKIE_SECURE"] is True
    assert flask_config["PREFERRED_URL_SCHEME"] == "https"


def test_a_redis_socket_is_spelled_for_the_rate_limiter() -> None:
    settings = load_settings({**PRODUCTION, "REDIS_URL": "unix:///tmp/redis.sock"})
    assert settings.flask_config()["RATELIMIT_STORAGE_URI"] == "redis+unix:///tmp/redis.sock"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"REDIS_URL": None}, "REDIS_URL"),
        ({"DATABASE_URL": "mysql://db.example/seatwise"}, "DATABASE_URL"),
        ({"CLOSE_INTERVAL_SECONDS": "often"}, "CLOSE_INTERVAL_SECONDS"),
    ],
)
def test_create_app_exits_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str | None], named: str
) -> None:
    for key, value in {**PRODUCTION, **environ}.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as stopped:
        create_app()
    message = str(stopped.value.code)
    assert message.startswith("Seatwise configuration error:")
    assert named in message
