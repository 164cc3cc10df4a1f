"""The SQLite store on a real file: migrations, WAL, and the one-open-alert constraint."""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3

import pytest

from server.store import open_sqlite
from server.store.records import App, HealthSnapshot

pytestmark = pytest.mark.timeout(30)


async def test_migrations_apply_once_and_are_recorded(tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "m.db")
    for _ in range(2):
        store = await open_sqlite(path)
        await store.close()
    with sqlite3.connect(path) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == sorted(set(versions))
        assert versions[0] == 1
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def _store_with_app(tmp_path: pathlib.Path):
    store = await open_sqlite(str(tmp_path / "s.db"))
    await store.create_workspace("ws_a", "A", 1)
    await store.upsert_app(App("app_a", "ws_a", "api", "api", 512, 1, 1))
    return store


async def test_latest_snapshot_per_app(tmp_path: pathlib.Path) -> None:
    store = await _store_with_app(tmp_path)
    try:
        older = HealthSnapshot("app_a", "ws_a", 10, "unknown", None, None, None, None, ())
        newer = HealthSnapshot("app_a", "ws_a", 20, "degraded", 5, 2, 7.5, 40.0, ("error rate 7.5% ≥ 5%",))
        await store.save_snapshots([older, newer])
        assert await store.latest_snapshot("app_a") == newer
        assert await store.latest_snapshots("ws_a") == [newer]
    finally:
        await store.close()


async def test_at_most_one_open_alert_per_app_and_type(tmp_path: pathlib.Path) -> None:
    store = await _store_with_app(tmp_path)
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        row = (
            "INSERT INTO alerts (id, workspace_id, app_id, type, severity, message, triggered_ns)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        db.execute(row, ("alr_1", "ws_a", "app_a", "high_cpu", "warning", "m", 1))
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(row, ("alr_2", "ws_a", "app_a", "high_cpu", "warning", "m", 2))
        db.execute("UPDATE alerts SET resolved_ns = 3 WHERE id = 'alr_1'")
        db.execute(row, ("alr_2", "ws_a", "app_a", "high_cpu", "warning", "m", 4))


async def test_stores_opening_a_fresh_file_together_apply_each_migration_once(tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "race.db")
    stores = await asyncio.gather(*(open_sqlite(path) for _ in range(4)))
    for store in stores:
        await store.close()
    with sqlite3.connect(path) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations")]
    assert len(versions) == len(set(versions)) > 1


async def test_a_transaction_cancelled_while_waiting_for_the_lock_leaves_no_lock_behind(
    tmp_path: pathlib.Path,
) -> None:
    store = await _store_with_app(tmp_path)
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


async def test_snapshots_of_an_app_deleted_during_the_tick_do_not_sink_the_others(tmp_path: pathlib.Path) -> None:
    store = await _store_with_app(tmp_path)
    try:
        await store.upsert_app(App("app_b", "ws_a", "web", "web", 512, 1, 1))
        await store.delete_app("ws_a", "app_b")  # between the tick listing the apps and storing its results
        kept = HealthSnapshot("app_a", "ws_a", 10, "healthy", 1, 1, 0.0, 5.0, ())
        await store.save_snapshots([kept, HealthSnapshot("app_b", "ws_a", 10, "healthy", 1, 1, 0.0, 5.0, ())])
        assert await store.latest_snapshot("app_a") == kept
        assert await store.latest_snapshot("app_b") is None
    finally:
        await store.close()


async def test_upserting_an_id_another_workspace_owns_changes_nothing_and_says_so(tmp_path: pathlib.Path) -> None:
    store = await _store_with_app(tmp_path)
    try:
        await store.create_workspace("ws_b", "B", 1)
        # PlatformService checks first, but two calls can pass that check together: the store decides.
        assert await store.upsert_app(App("app_a", "ws_b", "taken", "taken", 256, 2, 5)) is None
        assert await store.get_app("ws_a", "app_a") == App("app_a", "ws_a", "api", "api", 512, 1, 1)
    finally:
        await store.close()
