"""Tests whose data other processes must see: a database of their own, real worker
processes, and the app served over HTTP for the browser."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

from app import create_app
from app.extensions import db
from tests import environment

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def live_app(name: str, **config: object) -> Iterator[Flask]:
    """An app on an empty, migrated database that is really committed to."""
    url = os.environ["DATABASE_URL"]
    if not environment.is_postgres():
        url = environment.fresh_sqlite(re.sub(r"\W", "_", name)[-60:])
    else:
        environment.truncate_postgres(url)
    app = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "FILES_DIR": str(environment.WORK_DIR / "files"),
            "SQLALCHEMY_DATABASE_URI": url,
            **config,
        }
    )
    app.config["LIVE_DATABASE_URL"] = url
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
        release(app)
        if environment.is_postgres():
            environment.truncate_postgres(url)


def release(app: Flask) -> None:
    """Close the app's database connections (every engine's) and its Redis client: a socket
    left to the garbage collector at the end of the run is a ResourceWarning, which the suite
    treats as an error."""
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()
    connection = app.extensions.pop("seatwise_redis", None)
    if connection is not None:
        connection.close()


def process_env(app: Flask) -> dict[str, str]:
    return {
        **os.environ,
        "SEATWISE_ENV": "test",
        "DATABASE_URL": app.config["LIVE_DATABASE_URL"],
        "REDIS_URL": app.config["REDIS_URL"],
        "SEATWISE_BASE_URL": app.config["SEATWISE_BASE_URL"],
        "FILES_DIR": app.config["FILES_DIR"],
        # The timings a test may shorten: its worker and scheduler processes keep them too.
        "WORKER_ABANDONED_AFTER_SECONDS": str(app.config["WORKER_ABANDONED_AFTER_SECONDS"]),
        "REPORT_SWEEP_SECONDS": str(app.config["REPORT_SWEEP_SECONDS"]),
    }


def worker_command(queues: tuple[str, ...] = (), burst: bool = False) -> list[str]:
    command = [sys.executable, str(ROOT / "worker.py")]
    command += [f"--queue={name}" for name in queues]
    return [*command, "--burst"] if burst else command


def run_worker_burst(
    app: Flask, queues: tuple[str, ...] = (), timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python worker.py --burst`: a real worker process that drains the queues."""
    return subprocess.run(
        worker_command(queues, burst=True),
        env=process_env(app),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )


def start_worker(
    app: Flask, queues: tuple[str, ...] = (), burst: bool = False
) -> subprocess.Popen[str]:
    """Start a worker process (its own process group, so a test can kill it and its horse).

    Its output goes to a log file under the test folder, named in `worker.log_path`.
    """
    log_path = environment.WORK_DIR / f"worker-{time.monotonic_ns()}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            worker_command(queues, burst),
            start_new_session=True,
            env=process_env(app),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    process.log_path = log_path  # type: ignore[attr-defined]
    return process


def empty_queues(app: Flask) -> None:
    """Forget every job, queue, registry and worker record of RQ on the suite's Redis (its own
    database): an earlier test may have left a job half-recorded by a killed worker, which
    RQ's own per-job delete cannot remove."""
    from app.queue import redis_connection

    with app.app_context():
        connection = redis_connection()
        keys = list(connection.scan_iter("rq:*"))
        if keys:
            connection.delete(*keys)


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve `app` on a free loopback port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
