"""Writes of the auth feature: flush, never commit."""

from __future__ import annotations

import sqlalchemy as sa

from app.auth.passwords import hash_password, make_token
from app.extensions import db
from app.mail.operations import queue_email
from app.models import User, utcnow


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))


def set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    db.session.flush()


def note_login(user: User) -> None:
    user.last_login_at = utcnow()
    db.session.flush()


def send_invitation(user: User, account_name: str, account_id: int | None) -> None:
    """Email the user a single-use link to set their password and enter the portal."""
    queue_email(
        user.email,
        "invitation",
        account_id=account_id,
        user=user,
        account_name=account_name,
        token=make_token(user, "invite"),
    )


def send_password_reset(user: User) -> None:
    queue_email(user.email, "password_reset", user=user, token=make_token(user, "reset"))
