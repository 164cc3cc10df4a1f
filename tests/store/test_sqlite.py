"""SQLite only: the file itself, in WAL mode, and writers of two connections (two processes) on one file."""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3

import pytest

from server.store import SqliteStore, open_sqlite, open_store
from server.store.records import ApiKey, App, HealthSnapshot

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


class _Locked:
    """A reader that finds the file locked (or fails otherwise), as sqlite3 says so: an error with its code."""

    def __init__(self, code: int):
        self.code = code

    def execute(self, sql: str, params: object) -> None:
        error = sqlite3.OperationalError("database is locked" if self.code == sqlite3.SQLITE_BUSY else "no such table")
        error.sqlite_errorcode = self.code  # type: ignore[attr-defined]
        raise error

    def close(self) -> None:
        pass


class _Refusing:
    """aiosqlite's connection, failing the test if a statement goes through it."""

    def __init__(self, connection: object):
        self._connection = connection

    def execute_fetchall(self, sql: str, *args: object) -> None:
        raise AssertionError(f"sent through aiosqlite's thread: {sql}")

    def __getattr__(self, name: str) -> object:
        return getattr(self._connection, name)


async def _seeded(path: pathlib.Path) -> SqliteStore:
    store = await open_sqlite(str(path))
    await store.create_workspace("ws_a", "A", 1)
    await store.upsert_app(App("app_a", "ws_a", "api", "api", 512, 1, 1))
    await store.create_api_key(ApiKey("key_a", "ws_a", "ci", "dor_sk_abc", 1, None), b"hash")
    return store


async def _request_reads(store: SqliteStore) -> tuple[object, ...]:
    return (
        await store.find_api_key(b"hash"),
        await store.get_app("ws_a", "app_a"),
        await store.app_health_reads("ws_a", "app_a"),
        await store.list_alerts_with_app_names("ws_a", limit=5),
    )


async def test_the_request_reads_run_on_the_loops_thread(tmp_path: pathlib.Path) -> None:
    store = await _seeded(tmp_path / "m.db")
    try:
        expected = await _request_reads(store)
        aiosqlite_connection = store._db
        store._db = _Refusing(aiosqlite_connection)  # type: ignore[assignment]
        assert await _request_reads(store) == expected
        assert expected[0] == ApiKey("key_a", "ws_a", "ci", "dor_sk_abc", 1, None)
        store._db = aiosqlite_connection
    finally:
        await store.close()


async def test_a_read_that_finds_the_file_locked_is_sent_through_aiosqlites_thread(tmp_path: pathlib.Path) -> None:
    store = await _seeded(tmp_path / "m.db")
    reader = store._reader
    try:
        expected = await _request_reads(store)
        store._reader = _Locked(sqlite3.SQLITE_BUSY)  # type: ignore[assignment]
        assert await _request_reads(store) == expected
        store._reader = _Locked(sqlite3.SQLITE_ERROR)  # type: ignore[assignment]
        with pytest.raises(sqlite3.OperationalError, match="no such table"):  # any other failure is the caller's
            await store.find_api_key(b"hash")
    finally:
        store._reader = reader
        await store.close()
