"""SQLite only: the file itself, in WAL mode, and writers of two connections (two processes) on one file."""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3

import pytest

from server.store import open_sqlite, open_store
from server.store.records import App, HealthSnapshot

pytestmark = pytest.mark.timeout(30)


async def test_the_file_is_in_wal_mode(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "m.db"
    await (await open_store(f"sqlite:///{path}")).close()  # sqlite:////abs/path: the URL form of a path
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_transaction_cancelled_while_waiting_for_the_lock_leaves_no_lock_behind(
    tmp_path: pathlib.Path,
) -> None:
    store = await open_sqlite(str(tmp_path / "s.db"))
    await store.create_workspace("ws_a", "A", 1)
    await store.upsert_app(App("app_a", "ws_a", "api", "api", 512, 1, 1))
    other = sqlite3.connect(str(tmp_path / "s.db"), isolation_level=None)  # another server on the same file
    try:
        other.execute("BEGIN IMMEDIATE")
        snapshot = HealthSnapshot("app_a", "ws_a", 10, "healthy", 1, 1, 0.0, 5.0, ())
        # The loop's timers run in deadline order: the caller's deadline passes while BEGIN waits for the
        # lock, then the other writer commits and the cancelled BEGIN goes through in aiosqlite's thread.
        asyncio.get_running_loop().call_later(0.5, other.execute, "COMMIT")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(store.save_snapshots([snapshot]), 0.3)
        # That BEGIN must not have left a transaction open.
        await store.save_snapshots([snapshot])
        await store.create_workspace("ws_b", "B", 2)  # the other connection can write too
        assert (await store.latest_snapshot("app_a")) == snapshot
    finally:
        other.close()
        await store.close()
