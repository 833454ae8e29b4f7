"""Logging in and out, invitations, password resets and the account switcher."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from app.auth import views  # noqa: E402, F401  (routes register on bp)
