"""Password hashing with argon2id, and the single-use links that set a password."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.models import User

_hasher = PasswordHasher()
# Verified when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = _hasher.hash("not a real password")

TokenPurpose = Literal["invite", "reset"]
TOKEN_MAX_AGE = {"invite": 7 * 24 * 3600, "reset": 2 * 3600}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User | None, password: str) -> bool:
    """True when `password` is the user's. Rehashes in place when the parameters aged."""
    if user is None or user.password_hash is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        return False
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return True


def _serializer(purpose: TokenPurpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"seatwise-{purpose}")


def _fingerprint(user: User) -> str:
    # Changes when the password does, which is what makes each link single-use.
    return hashlib.sha256((user.password_hash or "unset").encode()).hexdigest()[:16]


def make_token(user: User, purpose: TokenPurpose) -> str:
    return _serializer(purpose).dumps({"u": user.id, "f": _fingerprint(user)})


def read_token(token: str, purpose: TokenPurpose) -> tuple[int, str] | None:
    """The (user id, password fingerprint) a valid, unexpired token carries, or None."""
    try:
        data = _serializer(purpose).loads(token, max_age=TOKEN_MAX_AGE[purpose])
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    return int(data["u"]), str(data.get("f"))


def token_is_current(fingerprint: str, user: User) -> bool:
    """False once the password changed since the token was made (it was used)."""
    return fingerprint == _fingerprint(user)
