from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from app.auth import bp
from app.auth.forms import LoginForm, ResetRequestForm, SetPasswordForm
from app.auth.operations import (
    find_user_by_email,
    note_login,
    send_password_reset,
    set_password,
)
from app.auth.passwords import TokenPurpose, check_password, read_token, token_is_current
from app.extensions import db, limiter
from app.models import User
from app.web import user_account_choices


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: an open redirect would make our login page a phishing aid."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _login_email_key() -> str:
    return (request.form.get("email") or "").strip().lower() or "-"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
@limiter.limit("10 per 10 minutes", methods=["POST"], key_func=_login_email_key)
def login() -> Response | str:
    if current_user.is_authenticated:
        return redirect(url_for("auth.home"))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        user = find_user_by_email(form.email.data or "")
        if check_password(user, form.password.data or "") and user is not None and user.is_active:
            login_user(user, remember=bool(form.remember.data))
            note_login(user)
            db.session.commit()
            return redirect(_safe_next(form.next.data) or url_for("auth.home"))
        form.password.errors.append("That email and password do not match an account.")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
def logout() -> Response:
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/")
@login_required
def home() -> Response | str:
    """Send the user where their work is: one account, the switcher, or the console."""
    accounts = user_account_choices(current_user)
    if len(accounts) == 1 and not current_user.is_operator:
        return redirect(accounts[0].url)
    if not accounts and current_user.is_operator:
        return redirect(url_for("ops.index"))
    return render_template("auth/choose_account.html", accounts=accounts)


def _user_for_token(token: str, purpose: TokenPurpose) -> User:
    claims = read_token(token, purpose)
    user = db.session.get(User, claims[0]) if claims else None
    if claims is None or user is None or not token_is_current(claims[1], user):
        abort(404)
    return user


def _set_password_page(token: str, purpose: TokenPurpose, heading: str) -> Response | str:
    user = _user_for_token(token, purpose)
    form = SetPasswordForm()
    if form.validate_on_submit():
        set_password(user, form.password.data or "")
        login_user(user)
        note_login(user)
        db.session.commit()
        flash("Your password is set. Welcome to Seatwise.", "success")
        return redirect(url_for("auth.home"))
    return render_template("auth/set_password.html", form=form, heading=heading, email=user.email)


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> Response | str:
    return _set_password_page(token, "invite", "Set your password")


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit("5 per minute", methods=["POST"])
def reset_request() -> Response | str:
    form = ResetRequestForm()
    if form.validate_on_submit():
        user = find_user_by_email(form.email.data or "")
        if user is not None and user.is_active:
            send_password_reset(user)
            db.session.commit()
        # The same answer either way, so the form does not reveal who has an account.
        return render_template("auth/reset_sent.html", email=form.email.data)
    return render_template("auth/reset_request.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Response | str:
    return _set_password_page(token, "reset", "Choose a new password")
