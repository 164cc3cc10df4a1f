"""Leases and fenced writes, on both backends: one holder at a time, the epoch, and a stale leader's writes
refused inside their own transaction."""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import AsyncIterator

import pytest

from server.store import LeaseLost, Store, open_store
from server.store.records import Alert, AlertChanges, App, Fence, HealthSnapshot, Lease
from tests.store.backends import BACKENDS, fresh_database

pytestmark = pytest.mark.timeout(30)

NAME = "evaluator"
SHORT_S = 0.05  # a lease that has expired by the time the test sleeps PAST_S
PAST_S = 0.15


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    return fresh_database(request, tmp_path)


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    store = await open_store(database)
    try:
        await store.create_workspace("ws_1", "ws_1", 1)
        await store.upsert_app(App("app_1", "ws_1", "api", "api", 512, 1, 1))
        yield store
    finally:
        await store.close()


def fence(lease: Lease | None) -> Fence:
    assert lease is not None
    return Fence(lease.name, lease.holder, lease.epoch)


def snapshot(checked_ns: int) -> HealthSnapshot:
    return HealthSnapshot("app_1", "ws_1", checked_ns, "healthy", 1, 1, 0.0, 5.0, ())


def alert(alert_id: str) -> Alert:
    return Alert(alert_id, "ws_1", "app_1", "high_cpu", "warning", "CPU usage exceeded 80% threshold", 5, None, None)


async def test_a_renewal_keeps_the_epoch_and_moves_the_expiry(store: Store) -> None:
    first = await store.acquire_lease(NAME, "r1", 10)
    assert first is not None and (first.holder, first.epoch) == ("r1", 1)
    # On the store's clock, which here is this machine's: expiry ≈ now + ttl.
    assert abs(first.expires_ns - time.time_ns() - 10e9) < 2e9
    renewed = await store.acquire_lease(NAME, "r1", 20)
    assert renewed is not None and (renewed.holder, renewed.epoch) == ("r1", 1)
    assert renewed.expires_ns > first.expires_ns
    assert await store.current_lease(NAME) == renewed


async def test_another_holder_is_refused_while_the_lease_stands(store: Store) -> None:
    held = await store.acquire_lease(NAME, "r1", 10)
    assert await store.acquire_lease(NAME, "r2", 10) is None
    assert await store.current_lease(NAME) == held
    assert await store.current_lease("other") is None


async def test_a_takeover_after_expiry_bumps_the_epoch(store: Store) -> None:
    await store.acquire_lease(NAME, "r1", SHORT_S)
    await asyncio.sleep(PAST_S)
    taken = await store.acquire_lease(NAME, "r2", 10)
    assert taken is not None and (taken.holder, taken.epoch) == ("r2", 2)
    assert await store.acquire_lease(NAME, "r1", 10) is None


async def test_an_expired_lease_taken_again_by_its_holder_keeps_the_epoch(store: Store) -> None:
    await store.acquire_lease(NAME, "r1", SHORT_S)
    await asyncio.sleep(PAST_S)
    again = await store.acquire_lease(NAME, "r1", 10)
    assert again is not None and again.epoch == 1  # nobody else held it meanwhile: its fences stay good


async def test_a_release_hands_over_at_once(store: Store) -> None:
    await store.acquire_lease(NAME, "r1", 60)
    await store.release_lease(NAME, "r2")  # not the holder: nothing happens
    assert await store.acquire_lease(NAME, "r2", 60) is None
    await store.release_lease(NAME, "r1")
    taken = await store.acquire_lease(NAME, "r2", 60)
    assert taken is not None and (taken.holder, taken.epoch) == ("r2", 2)
    await store.release_lease(NAME, "r1")  # a late release by the former holder leaves the new one alone
    assert await store.current_lease(NAME) == taken


async def test_five_replicas_racing_for_the_lease_elect_exactly_one(store: Store, database: str) -> None:
    holders = [f"r{n}" for n in range(5)]
    replicas = dict(zip(holders, await asyncio.gather(*(open_store(database) for _ in holders)), strict=True))
    try:

        async def race(holders: list[str]) -> Lease:
            won = await asyncio.gather(*(replicas[holder].acquire_lease(NAME, holder, 1) for holder in holders))
            winners = [lease for lease in won if lease is not None]
            assert len(winners) == 1
            assert await store.current_lease(NAME) == winners[0]
            return winners[0]

        first = await race(list(replicas))
        assert first.epoch == 1
        await asyncio.sleep(1.1)
        # The others race for the expired lease (its holder taking it again would keep epoch 1).
        second = await race([holder for holder in replicas if holder != first.holder])
        assert second.epoch == 2
    finally:
        for replica in replicas.values():
            await replica.close()


async def test_a_stale_leaders_fenced_writes_raise_and_write_nothing(store: Store) -> None:
    stale = fence(await store.acquire_lease(NAME, "r1", SHORT_S))
    await store.save_snapshots([snapshot(1)], fence=stale)
    await asyncio.sleep(PAST_S)
    current = fence(await store.acquire_lease(NAME, "r2", 10))

    with pytest.raises(LeaseLost):
        await store.save_snapshots([snapshot(2)], fence=stale)
    with pytest.raises(LeaseLost):
        await store.apply_alert_changes(AlertChanges(5, fire=[alert("alr_1")]), fence=stale)
    with pytest.raises(LeaseLost):
        await store.delete_snapshots_before(10, fence=stale)
    assert (await store.latest_snapshot("app_1")) == snapshot(1)
    assert await store.open_alerts() == []

    # The current holder's fenced writes land; so do unfenced ones (a single process has no lease).
    assert [a.id for a in await store.apply_alert_changes(AlertChanges(5, fire=[alert("alr_2")]), fence=current)] == [
        "alr_2"
    ]
    await store.save_snapshots([snapshot(3)], fence=current)
    assert await store.delete_snapshots_before(2, fence=current) == 1
    await store.save_snapshots([snapshot(4)])
    assert (await store.latest_snapshot("app_1")) == snapshot(4)


async def test_an_expired_lease_nobody_took_still_accepts_its_fence(store: Store) -> None:
    held = fence(await store.acquire_lease(NAME, "r1", SHORT_S))
    await asyncio.sleep(PAST_S)
    await store.save_snapshots([snapshot(1)], fence=held)
    assert (await store.latest_snapshot("app_1")) == snapshot(1)


async def test_a_fence_for_a_lease_that_was_never_taken_is_refused(store: Store) -> None:
    with pytest.raises(LeaseLost):
        await store.save_snapshots([snapshot(1)], fence=Fence(NAME, "r1", 1))
    assert await store.latest_snapshot("app_1") is None
