"""API keys of the dialer: `Authorization: Bearer sw_<prefix>_<secret>`.

A key is 256 random bits; only an HMAC-SHA256 of it (keyed with SECRET_KEY) is stored, next to
its public prefix, which finds the row. A fast keyed hash is right here: it is checked on every
request, and a random key of that size cannot be guessed from its hash, so a slow password hash
would only cost time. Rotating SECRET_KEY therefore invalidates every API key.

A process trusts a key it verified for `VERIFIED_FOR` before it reads the key's row again, which
spares a query per request to a busy dialer: a revoked key is refused at once by the process
that revoked it, and by every other one within those seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from time import monotonic

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.models import ApiKey

_SCHEME = "sw"
# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
VERIFIED_FOR = 5.0  # seconds


class ApiKeyRefused(Exception):
    """The request's key is missing, unknown or revoked; the message says which."""


class ApiKeyNotFound(Exception):
    """No key matches what an operator named; the message says why."""


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    secret: str  # the whole `Authorization` credential, shown once


def key_hash(secret: str) -> str:
    """The stored form of a key: HMAC-SHA256 keyed with the app's SECRET_KEY, hex."""
    pepper = current_app.config["SECRET_KEY"].encode()
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def prefix_of(secret: str) -> str | None:
    """The public prefix of a well-formed key (`sw_<prefix>_<secret>`), else None."""
    scheme, _, rest = secret.partition("_")
    prefix, _, token = rest.partition("_")
    if scheme != _SCHEME or not prefix or not token or len(prefix) > 16:
        return None
    return prefix


def bearer_token(authorization: str | None) -> str | None:
    """The credential of an `Authorization: Bearer ...` header, else None."""
    scheme, _, credential = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def create_api_key(name: str) -> NewApiKey:
    """Add a key named `name` (flushed, not committed); its secret is returned, never stored."""
    prefix = secrets.token_hex(4)
    secret = f"{_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(name=name, prefix=prefix, key_hash=key_hash(secret))
    db.session.add(key)
    db.session.flush()
    return NewApiKey(key, secret)


def revoke_api_key(name_or_prefix: str, now: datetime) -> ApiKey:
    """Revoke the one active key with this prefix, or else with this name (flushed).

    Raises `ApiKeyNotFound` when none matches, or when several active keys share the name.
    """
    active = list(
        db.session.scalars(
            sa.select(ApiKey)
            .where(
                ApiKey.revoked_at.is_(None),
                sa.or_(ApiKey.prefix == name_or_prefix, ApiKey.name == name_or_prefix),
            )
            .order_by(ApiKey.id)
        )
    )
    by_prefix = [key for key in active if key.prefix == name_or_prefix]
    matches = by_prefix or active
    if not matches:
        raise ApiKeyNotFound(f"no active API key is named or prefixed {name_or_prefix!r}")
    if len(matches) > 1:
        prefixes = ", ".join(key.prefix for key in matches)
        raise ApiKeyNotFound(
            f"{len(matches)} active API keys are named {name_or_prefix!r} (prefixes {prefixes}): "
            "revoke one by its prefix"
        )
    [key] = matches
    key.revoked_at = now
    db.session.flush()
    _forget(key.id)
    return key


@dataclass(frozen=True)
class KeyInUse:
    """The key a request authenticated with."""

    id: int
    prefix: str
    last_used_at: datetime | None

    def use_to_note(self, now: datetime) -> bool:
        """Whether `last_used_at` is due a write: at most once per `LAST_USED_RESOLUTION`, so
        a busy dialer does not write the same row on every request."""
        return self.last_used_at is None or self.last_used_at <= now - LAST_USED_RESOLUTION


# The keys this process verified, by their stored hash: until when (monotonic) it trusts each.
_verified: dict[str, tuple[float, KeyInUse]] = {}


def _digests_of(key_id: int) -> list[str]:
    return [digest for digest, (_, key) in list(_verified.items()) if key.id == key_id]


def _forget(key_id: int) -> None:
    for digest in _digests_of(key_id):
        _verified.pop(digest, None)


def authenticate(authorization: str | None) -> KeyInUse:
    """The key of an `Authorization: Bearer ...` header. Raises `ApiKeyRefused`."""
    secret = bearer_token(authorization)
    if secret is None:
        raise ApiKeyRefused("missing API key: send the header Authorization: Bearer <API key>")
    prefix = prefix_of(secret)
    if prefix is None:
        raise ApiKeyRefused("invalid API key")
    digest = key_hash(secret)
    trusted = _verified.get(digest)
    clock = monotonic()
    if trusted is not None and trusted[0] > clock:
        return trusted[1]
    row = db.session.execute(
        sa.select(ApiKey.id, ApiKey.key_hash, ApiKey.revoked_at, ApiKey.last_used_at).where(
            ApiKey.prefix == prefix
        )
    ).one_or_none()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise ApiKeyRefused("invalid API key")
    if row.revoked_at is not None:
        _verified.pop(digest, None)
        raise ApiKeyRefused("this API key has been revoked")
    key = KeyInUse(row.id, prefix, row.last_used_at)
    _verified[digest] = (clock + VERIFIED_FOR, key)
    return key


def note_use(key: KeyInUse, now: datetime) -> None:
    """Set the key's `last_used_at` to `now` unless a request racing this one at the same
    minute's turn already did (flushed, not committed)."""
    for digest in _digests_of(key.id):
        until, known = _verified.get(digest, (0.0, key))
        _verified[digest] = (until, replace(known, last_used_at=now))
    stale = now - LAST_USED_RESOLUTION
    db.session.execute(
        sa.update(ApiKey)
        .where(
            ApiKey.id == key.id,
            sa.or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= stale),
        )
        .values(last_used_at=now)
    )
