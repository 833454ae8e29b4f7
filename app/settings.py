"""Operator settings: stored in the `settings` table, with defaults that need no set-up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import Setting, User, utcnow


@dataclass(frozen=True)
class SettingSpec:
    key: str
    label: str
    default: Any
    help: str


SPECS: dict[str, SettingSpec] = {
    spec.key: spec
    for spec in (
        SettingSpec("seat_fee_cents", "Seat fee", 5700, "One-time fee per new seat."),
        SettingSpec(
            "overage_grace_leads", "Overage grace (leads)", 0, "Leads over plan not billed."
        ),
        SettingSpec(
            "close_grace_minutes",
            "Close grace window (minutes)",
            120,
            "How long after a period ends late call data is still awaited before closing.",
        ),
        SettingSpec(
            "dashboard_refresh_seconds",
            "Dashboard refresh (seconds)",
            15,
            "How often an open dashboard polls for new numbers.",
        ),
        SettingSpec("slack_webhook_url", "Slack webhook URL", "", "Where the ISA team is told."),
        SettingSpec(
            "sender_address",
            "Sender address",
            "",
            "The From of every mail; empty: the server's MAIL_SENDER.",
        ),
    )
}


def get_setting(key: str) -> Any:
    """The stored value of a setting, or its default. Raises KeyError for an unknown key."""
    spec = SPECS[key]
    value = db.session.scalar(sa.select(Setting.value).where(Setting.key == key))
    return spec.default if value is None else value


@dataclass(frozen=True)
class SettingState:
    """A setting as operators see it: its value, and who last changed it and when."""

    spec: SettingSpec
    value: Any
    changed_by: str | None
    changed_at: datetime | None


def setting_states() -> list[SettingState]:
    """Every setting with its current value; `changed_by` is None while it is the default."""
    stored = {
        row.key: (row, email)
        for row, email in db.session.execute(
            sa.select(Setting, User.email).outerjoin(User, User.id == Setting.updated_by_id)
        ).all()
    }
    states = []
    for key, spec in SPECS.items():
        row, email = stored.get(key, (None, None))
        if row is None:
            states.append(SettingState(spec, spec.default, None, None))
        else:
            states.append(SettingState(spec, row.value, email or "system", row.updated_at))
    return states


def set_setting(key: str, value: Any, user_id: int | None) -> None:
    """Store a setting (flushes; the caller commits and audits)."""
    if key not in SPECS:
        raise KeyError(key)
    row = db.session.get(Setting, key)
    if row is None:
        db.session.add(Setting(key=key, value=value, updated_by_id=user_id))
    else:
        row.value, row.updated_by_id, row.updated_at = value, user_id, utcnow()
    db.session.flush()
