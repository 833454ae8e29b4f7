"""How fast this machine is today, printed by the benchmarks beside their figures.

The benchmarks' goals are absolute (attempts/s, ms at p95) on "this machine", but the machines
the project runs on differ from session to session: on one the same code ran at twice the CPU
cost per request of another. Two readings, taken before a benchmark's load starts, let figures
of different days be compared:

- Python: CPU time of a fixed pure-Python loop (two million additions), best of three;
- PostgreSQL round trip: `SELECT 1` on a psycopg connection over loopback, wall time and the
  client's CPU time per round trip, best of three runs of 1,000. Every query the app sends
  costs at least this on the client side.
"""

from __future__ import annotations

import time

import psycopg

_LOOP = 2_000_000
_TRIPS = 1_000


def _python_loop_ms() -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        total = 0
        for number in range(_LOOP):
            total += number
        best = min(best, time.process_time() - started)
    return best * 1000


def _round_trip_us(database_url: str) -> tuple[float, float]:
    """Wall time and client CPU time of one `SELECT 1`, in microseconds."""
    best_wall = best_cpu = float("inf")
    with psycopg.connect(database_url, autocommit=True) as connection:
        cursor = connection.cursor()
        for _ in range(3):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(_TRIPS):
                cursor.execute("SELECT 1").fetchall()
            best_wall = min(best_wall, time.perf_counter() - wall)
            best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall / _TRIPS * 1e6, best_cpu / _TRIPS * 1e6


def describe(database_url: str) -> str:
    """One line: the machine's readings."""
    loop = _python_loop_ms()
    wall, cpu = _round_trip_us(database_url)
    return (
        f"machine: Python loop {loop:.0f} ms (2M additions); PostgreSQL round trip "
        f"{wall:.0f} µs wall, {cpu:.0f} µs client CPU (SELECT 1)"
    )
