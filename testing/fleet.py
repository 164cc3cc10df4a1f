"""A large fleet of apps for benchmarks: ids, and a store seeded with them in one transaction."""

from __future__ import annotations

import pathlib
import sqlite3
from collections.abc import Iterator

from server.store import open_sqlite


def fleet_ids(count: int, per_workspace: int = 100) -> Iterator[tuple[str, str]]:
    """(workspace id, app id) for ``count`` apps spread over workspaces of ``per_workspace`` apps."""
    for i in range(count):
        yield f"ws_{i // per_workspace:04d}", f"app_{i:05d}"


async def seed_fleet_store(path: pathlib.Path, count: int) -> None:
    """A store at ``path`` holding ``count`` apps (512 MiB, 1 core each) and their workspaces."""
    store = await open_sqlite(str(path))  # creates the schema through the migrations
    await store.close()
    # Bulk seeding in one transaction (10,000 separate durable commits would dominate the run).
    with sqlite3.connect(path) as db:
        workspaces = sorted({ws for ws, _ in fleet_ids(count)})
        db.executemany("INSERT INTO workspaces (id, name, created_ns) VALUES (?, ?, 0)", [(w, w) for w in workspaces])
        db.executemany(
            "INSERT INTO apps (id, workspace_id, name, service_name, memory_limit_mib, cpu_limit_cores, created_ns)"
            " VALUES (?, ?, ?, ?, 512, 1, 0)",
            [(app, ws, app, app) for ws, app in fleet_ids(count)],
        )
