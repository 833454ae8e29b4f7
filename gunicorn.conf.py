"""gunicorn's settings for the web processes; gunicorn reads this file from the directory it
starts in (the Procfile's and the benchmarks' is the project's root)."""

from __future__ import annotations

import gc
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Put what the app made while loading (modules, models, templates: ~180,000 objects)
    out of the garbage collector's reach. A full collection walks every tracked object, and
    with those it took 150–330 ms in a web process under load, stalling every request on it;
    without them, 9–16 ms."""
    gc.freeze()
