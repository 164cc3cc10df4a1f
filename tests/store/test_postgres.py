"""PostgreSQL only: the URL's pool bound and pass-through parameters, and a database that is not there —
at startup (bounded retries, a clear error without the password) and during a call (UNAVAILABLE)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from server.errors import Unavailable
from server.store import open_store
from server.store import postgres as postgres_store
from server.store.records import App, Fence
from testing.postgres import PostgresCluster, running_postgres
from testing.procs import free_port
from tests.store.backends import raw_sql

pytestmark = pytest.mark.timeout(60)

PASSWORD = "s3cret-pa55"


async def test_pool_max_bounds_the_connections_and_other_parameters_reach_asyncpg(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.create_database("t_pool")
    store = await open_store(f"{url}?application_name=replica_a&pool_max=2")
    try:
        await store.create_workspace("ws_1", "ws_1", 1)
        await asyncio.gather(*(store.list_apps("ws_1") for _ in range(20)))
        async with raw_sql(url) as sql:
            rows = await sql("SELECT application_name FROM pg_stat_activity WHERE datname = 't_pool'")
    finally:
        await store.close()
    names = [name for (name,) in rows]
    assert 1 <= names.count("replica_a") <= 2


@pytest.mark.parametrize("value", ["0", "-1", "ten", "100000"])
async def test_a_bad_pool_max_is_refused_before_connecting(value: str) -> None:
    with pytest.raises(ValueError, match="pool_max") as raised:
        await open_store(f"postgresql://monitor:{PASSWORD}@127.0.0.1:9/db?pool_max={value}")
    assert PASSWORD not in str(raised.value)


async def test_a_refused_connection_is_retried_briefly_then_named_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres_store, "_CONNECT_WINDOW_S", 0.5)
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(Unavailable) as raised:
        await open_store(f"postgresql://monitor:{PASSWORD}@127.0.0.1:{port}/monitoring")
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert f"127.0.0.1:{port}/monitoring" in message and "attempts" in message
    assert PASSWORD not in message and "monitor:" not in message


async def test_a_missing_database_fails_at_once_without_the_password(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.database_url("t_never_created").replace("postgres@", f"postgres:{PASSWORD}@")
    started = time.monotonic()
    with pytest.raises(Unavailable, match="t_never_created") as raised:
        await open_store(url)
    assert time.monotonic() - started < 2
    assert PASSWORD not in str(raised.value)


async def test_a_database_gone_during_calls_answers_unavailable_in_plain_words() -> None:
    with running_postgres() as cluster:
        store = await open_store(cluster.create_database("t_gone"))
        try:
            await store.create_workspace("ws_1", "ws_1", 1)
            cluster.stop()
            calls = (store.list_all_apps, lambda: store.upsert_app(App("app_1", "ws_1", "a", "a", 1, 1, 1)))
            for call in calls:
                with pytest.raises(Unavailable) as raised:
                    await call()
                assert raised.value.backend == "store"
                assert "127.0.0.1" not in raised.value.message and str(cluster.port) not in raised.value.message
        finally:
            await store.close()


async def test_a_leader_stalled_inside_a_fenced_write_cannot_block_the_takeover(
    postgres_cluster: PostgresCluster,
) -> None:
    """The fence check holds the lease row FOR SHARE until the write commits. A process paused mid-write would
    hold it for good: PostgreSQL ends a transaction idle for a second, and the takeover goes through."""
    url = postgres_cluster.create_database("t_stalled")
    stalled, standby = await open_store(url), await open_store(url)
    try:
        lease = await stalled.acquire_lease("evaluator", "replica-a", 0.5)
        assert lease is not None
        fence = Fence("evaluator", "replica-a", lease.epoch)
        entered = asyncio.Event()

        async def stalled_write() -> None:
            async with stalled._transaction(fence):  # type: ignore[attr-defined]
                entered.set()
                await asyncio.sleep(4)  # paused between two statements of its transaction

        writer = asyncio.create_task(stalled_write())
        await entered.wait()
        started = time.monotonic()
        taken = None
        while taken is None and time.monotonic() - started < 5:
            with contextlib.suppress(Unavailable):  # the row is locked: the standby's attempt gives up in time
                taken = await standby.acquire_lease("evaluator", "replica-b", 0.5)
            await asyncio.sleep(0.05)
        assert taken is not None and taken.epoch == lease.epoch + 1
        assert time.monotonic() - started < 3
        with pytest.raises(Unavailable):  # the stalled write never commits
            await writer
    finally:
        await stalled.close()
        await standby.close()
