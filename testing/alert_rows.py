"""Alerts written straight into a server's SQLite file, with the columns of migration 0001 (and, when asked for,
the lifecycle columns of migration 0008).

The rules engine that fires alerts needs Prometheus breaches over time; the edge tests and benchmark only
need alert rows, so they insert them the way the engine's store does (one open alert per app and type).
"""

from __future__ import annotations

import pathlib
import sqlite3
import time


def insert_alert(
    db: pathlib.Path,
    *,
    alert_id: str,
    workspace_id: str,
    app_id: str,
    alert_type: str = "high_memory",
    severity: str = "warning",
    message: str = "Memory usage exceeded 80% threshold",
    triggered_ns: int | None = None,
    resolved_ns: int | None = None,
    **lifecycle: str | int,
) -> None:
    """``lifecycle``: values of migration 0008's columns (``silence_id``, ``held_until_ns``, ``notified_ns``…)."""
    unknown = set(lifecycle) - set(LIFECYCLE_COLUMNS)
    assert not unknown, f"not a lifecycle column of alerts: {sorted(unknown)}"
    columns = ("id", "workspace_id", "app_id", "type", "severity", "message", "triggered_ns", "resolved_ns")
    columns += ("resolved_by", *lifecycle)
    values = (
        alert_id,
        workspace_id,
        app_id,
        alert_type,
        severity,
        message,
        triggered_ns if triggered_ns is not None else time.time_ns(),
        resolved_ns,
        None if resolved_ns is None else "recovery",
        *lifecycle.values(),
    )
    with sqlite3.connect(db, timeout=10) as connection:
        connection.execute(
            f"INSERT INTO alerts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            values,
        )
    connection.close()


# Migration 0008's columns of an alert (its lifecycle), which insert_alert takes by name.
LIFECYCLE_COLUMNS = (
    "resolved_by_key",
    "acknowledged_ns",
    "acknowledged_by",
    "ack_note",
    "ack_until_ns",
    "silence_id",
    "held_until_ns",
    "notified_ns",
)


ALERT_TYPES = ("high_cpu", "high_memory", "high_error_rate", "high_latency")


def alert_history_id(i: int) -> str:
    return f"alr_bench_{i:04d}"


def insert_alert_history(db: pathlib.Path, *, workspace_id: str, app_id: str, count: int, now_ns: int) -> None:
    """``count`` alerts a minute apart up to ``now_ns``, types in turn: resolved by recovery 30 s after they
    fired, except the newest one of each type, still open (the benchmarks' ListAlerts data)."""
    for i in range(count):
        triggered = now_ns - (count - i) * 60 * 10**9
        insert_alert(
            db,
            alert_id=alert_history_id(i),
            workspace_id=workspace_id,
            app_id=app_id,
            alert_type=ALERT_TYPES[i % len(ALERT_TYPES)],
            triggered_ns=triggered,
            resolved_ns=None if i >= count - len(ALERT_TYPES) else triggered + 30 * 10**9,
        )
