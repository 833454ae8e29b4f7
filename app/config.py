"""Settings read from the environment, with defaults that run on one machine.

A missing or malformed setting stops start-up with a message naming it, so a
misconfigured deployment fails loudly before it serves anyone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"
DEVELOPMENT_ENVS = {"development", "test"}


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


def _url(
    env: dict[str, str], name: str, schemes: tuple[str, ...], default: str | None
) -> str | None:
    value = env.get(name, "").strip() or default
    if value is None:
        return None
    parts = urlsplit(value)
    scheme = parts.scheme.split("+")[0]
    if scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ConfigError(f"{name} must be a URL starting with {allowed} (got {value!r})")
    try:
        parts.port  # noqa: B018 - parsing the port is the check; a bad one fails here, not later
    except ValueError:
        raise ConfigError(f"{name} has a malformed port (got {value!r})") from None
    return value


LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _served_safely(base_url: str) -> bool:
    """HTTPS, or plain HTTP that never leaves the machine."""
    parts = urlsplit(base_url)
    return parts.scheme == "https" or parts.hostname in LOOPBACK_HOSTS


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number (got {raw!r})") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum} (got {value})")
    return value


@dataclass(frozen=True)
class Settings:
    """The parsed environment. `flask_config()` turns it into Flask's config keys."""

    env: str
    database_url: str
    redis_url: str | None
    secret_key: str
    mail_url: str | None
    base_url: str
    mail_sender: str
    close_interval_seconds: int
    files_dir: str
    report_sweep_seconds: int = 60
    worker_abandoned_after_seconds: int = 90
    extra: dict[str, Any] = field(default_factory=dict)

    def flask_config(self) -> dict[str, Any]:
        secure = self.base_url.startswith("https://")
        return {
            "SEATWISE_ENV": self.env,
            "SECRET_KEY": self.secret_key,
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(self.database_url),
            "REDIS_URL": self.redis_url,
            "MAIL_URL": self.mail_url,
            "MAIL_SENDER": self.mail_sender,
            "SEATWISE_BASE_URL": self.base_url,
            "CLOSE_INTERVAL_SECONDS": self.close_interval_seconds,
            "FILES_DIR": self.files_dir,
            "REPORT_SWEEP_SECONDS": self.report_sweep_seconds,
            "WORKER_ABANDONED_AFTER_SECONDS": self.worker_abandoned_after_seconds,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": secure,
            "REMEMBER_COOKIE_HTTPONLY": True,
            "REMEMBER_COOKIE_SAMESITE": "Lax",
            "REMEMBER_COOKIE_SECURE": secure,
            "PREFERRED_URL_SCHEME": "https" if secure else "http",
            "WTF_CSRF_TIME_LIMIT": None,
            "RATELIMIT_STORAGE_URI": limiter_storage(self.redis_url),
            "RATELIMIT_HEADERS_ENABLED": True,
            **self.extra,
        }


def engine_options(database_url: str) -> dict[str, Any]:
    if database_url.startswith("sqlite"):
        # Web, worker and scheduler share the file: wait for a lock instead of failing at once.
        return {"connect_args": {"timeout": 30}}
    # Dropped connections are found by a ping after idling (`app.extensions._ping_after_idle`).
    return {}


def limiter_storage(redis_url: str | None) -> str:
    if redis_url is None:
        return "memory://"
    if redis_url.startswith("unix://"):
        # Flask-Limiter spells a Redis unix socket as redis+unix://
        return "redis+" + redis_url
    return redis_url


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise ConfigError naming the first bad one."""
    env = dict(os.environ if environ is None else environ)
    app_env = env.get("SEATWISE_ENV", "production").strip() or "production"
    if app_env not in {"production", *DEVELOPMENT_ENVS}:
        raise ConfigError(f"SEATWISE_ENV must be production, development or test (got {app_env!r})")
    default_db = f"sqlite:///{INSTANCE_DIR / 'seatwise.db'}"
    database_url = _url(env, "DATABASE_URL", ("sqlite", "postgresql", "postgres"), default_db)
    assert database_url is not None
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url.removeprefix("postgres://")
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    redis_url = _url(env, "REDIS_URL", ("redis", "rediss", "unix"), None)
    if redis_url is None and app_env == "production":
        raise ConfigError("REDIS_URL is required in production (e.g. redis://localhost:6379/0)")
    secret_key = env.get("SECRET_KEY", "").strip()
    if not secret_key:
        if app_env == "production":
            raise ConfigError("SECRET_KEY is required in production: set a long random value")
        secret_key = f"{app_env}-only-secret"
    elif app_env == "production" and len(secret_key) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters long in production")
    base_url = _url(env, "SEATWISE_BASE_URL", ("http", "https"), "http://localhost:5000")
    assert base_url is not None
    if app_env == "production" and not _served_safely(base_url):
        raise ConfigError(
            "SEATWISE_BASE_URL must start with https:// in production: session cookies are "
            f"Secure then, and never cross the network in clear (got {base_url!r}; plain "
            "http:// is for localhost only)"
        )
    return Settings(
        env=app_env,
        database_url=database_url,
        redis_url=redis_url,
        secret_key=secret_key,
        mail_url=_url(env, "MAIL_URL", ("smtp", "smtps"), None),
        base_url=base_url.rstrip("/"),
        mail_sender=env.get("MAIL_SENDER", "").strip() or "Seatwise <billing@seatwise.example>",
        close_interval_seconds=_int(env, "CLOSE_INTERVAL_SECONDS", 600, minimum=10),
        files_dir=env.get("FILES_DIR", "").strip() or str(INSTANCE_DIR / "files"),
        report_sweep_seconds=_int(env, "REPORT_SWEEP_SECONDS", 60, minimum=1),
        worker_abandoned_after_seconds=_int(env, "WORKER_ABANDONED_AFTER_SECONDS", 90, minimum=3),
    )
