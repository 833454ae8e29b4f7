"""Signup and onboarding: the public pricing page, and from choosing a plan to an account with
working seats."""

from flask import Blueprint

bp = Blueprint("onboarding", __name__)

from app.onboarding import views  # noqa: E402, F401  (routes register on bp)
