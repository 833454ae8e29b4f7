"""Form posts for the onboarding form (signup and "add a seat"), as a browser would send them."""

from __future__ import annotations

from typing import Any

from app.models import Plan


def seat_form(prefix: str = "", **changes: Any) -> dict[str, Any]:
    """A valid onboarding form of one seat; `prefix` is "seats-0-" inside the signup form.

    Keys of `changes` are field names without the prefix ("primary-name"); None drops one.
    """
    fields: dict[str, Any] = {
        "client_label": "Summit Home Team",
        "primary-name": "Avery Stone",
        "primary-email": "avery@summit.example",
        "primary-mobile": "(312) 555-0141",
        "primary-profession": "agent",
        "primary-licence": "RE-123456",
        "backup-name": "",
        "backup-email": "",
        "backup-mobile": "",
        "backup-profession": "agent",
        "backup-licence": "",
        "lead_sources": ["zillow", "realtor"],
        "lead_delivery": "crm",
        "crm_name": "Follow Up Boss",
        "transfer_1": "(312) 555-0141",
        "transfer_2": "",
        "transfer_3": "",
        "transfer_days": ["mon", "tue", "wed", "thu", "fri"],
        "transfer_from": "09:00",
        "transfer_to": "18:00",
        "notes": "Spanish speakers welcome.",
    }
    fields.update(changes)
    return {prefix + key: value for key, value in fields.items() if value is not None}


def with_backup(prefix: str = "", **changes: Any) -> dict[str, Any]:
    return seat_form(
        prefix,
        **{
            "backup-name": "Drew Patel",
            "backup-email": "drew@summit.example",
            "backup-mobile": "(312) 555-0142",
            **changes,
        },
    )


def signup_form(
    plan: Plan, kind: str = "agency", /, seats: int = 1, **changes: Any
) -> dict[str, Any]:
    """A valid signup: the account's fields and `seats` seats (different people each)."""
    form: dict[str, Any] = {
        "action": "signup",
        "plan": plan.code,
        "kind": kind,
        "company": "BrightPath Marketing",
        "owner_name": "Morgan Ellis",
        "owner_email": "morgan@brightpath.example",
        "billing_email": "",
        "timezone": "America/Chicago",
    }
    for n in range(seats):
        form.update(
            seat_form(
                f"seats-{n}-",
                client_label=f"Client {n}",
                **{
                    "primary-name": f"Agent {n}",
                    "primary-email": f"agent{n}@brightpath.example",
                    "primary-mobile": f"(312) 555-01{n:02d}",
                    "transfer_1": f"(312) 555-01{n:02d}",
                },
            )
        )
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}
