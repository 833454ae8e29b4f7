"""Operator settings in the console: current values, who changed each and when, and a
validated form that saves (and audits) only the values that changed."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, flash, redirect, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from app.audit import record_operator_action
from app.extensions import db
from app.ops import bp
from app.ops.forms import SETTING_FIELDS, SettingsForm
from app.settings import SPECS, get_setting, set_setting, setting_states
from app.web import render, render_invalid


def _page(form: SettingsForm, invalid: bool = False) -> Response:
    answer = render_invalid if invalid else render
    return answer(
        "ops/settings.html",
        form=form,
        states=setting_states(),
        server_sender=current_app.config["MAIL_SENDER"],
    )


@bp.get("/settings")
def settings() -> Response:
    """Every setting with its current value, ready to edit."""
    current: dict[str, Any] = {key: get_setting(key) for key in SETTING_FIELDS}
    return _page(SettingsForm(data=current))


@bp.post("/settings")
def setting_save() -> Response | BaseResponse:
    """Save the settings that changed, each audited with its old and new value."""
    form = SettingsForm()
    if not form.validate_on_submit():
        return _page(form, invalid=True)
    changed = []
    for key, value in form.values().items():
        before = get_setting(key)
        if value == before:
            continue
        set_setting(key, value, current_user.id)
        record_operator_action("setting.changed", details={"key": key, "from": before, "to": value})
        changed.append(key)
    db.session.commit()
    if changed:
        flash(f"Saved: {', '.join(_label(key) for key in changed)}.", "success")
    else:
        flash("Nothing changed.", "info")
    return redirect(url_for("ops.settings"), 303)


def _label(key: str) -> str:
    return SPECS[key].label
