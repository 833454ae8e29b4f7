"""Operator commands (`flask ...`). Each prints a clear error and exits non-zero on bad input."""

from __future__ import annotations

from flask import Flask


def register_cli(app: Flask) -> None:
    from app.api.cli import COMMANDS as API_COMMANDS
    from app.billing_portal.cli import COMMANDS as BILLING_COMMANDS
    from app.calls.cli import calls_cli
    from app.seed import seed_demo_command

    for group in (*BILLING_COMMANDS, *API_COMMANDS):
        app.cli.add_command(group)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(calls_cli)
