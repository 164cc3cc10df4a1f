"""server/cluster/leader.py against a store that grants, refuses, fails or hangs on command (no processes).

The lease time is 0.3 s, so a round (a third of it) is 0.1 s; every wait below is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from server.cluster.leader import Leadership
from server.errors import Unavailable
from server.store.records import Fence, Lease

TTL_S = 0.3


class _Store:
    """The lease part of the Store protocol, with the answer chosen by the test."""

    def __init__(self) -> None:
        self.mode = "grant"  # grant | deny | fail | hang
        self.epoch = 1
        self.released: list[str] = []

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.mode == "fail":
            raise Unavailable("store", "the database connection was refused or lost")
        if self.mode == "deny":
            return None
        return Lease(name, holder, self.epoch, time.time_ns() + int(ttl_s * 1e9))

    async def release_lease(self, name: str, holder: str) -> None:
        self.released.append(holder)

    async def current_lease(self, name: str) -> Lease | None:
        return None


class _Work:
    """The evaluator stand-in: records each term's fence, runs until cancelled (or crashes on request)."""

    def __init__(self) -> None:
        self.fences: list[Fence] = []
        self.running = 0
        self.crash = False
        self.slow_exit = False  # takes a while to wind down when cancelled, like a tick mid-write

    async def __call__(self, fence: Fence) -> None:
        self.fences.append(fence)
        self.running += 1
        try:
            if self.crash:
                self.crash = False
                raise RuntimeError("evaluator bug")
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if self.slow_exit:
                await asyncio.sleep(0.3)
            raise
        finally:
            self.running -= 1


async def _until(condition: object, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def leading() -> tuple[_Store, _Work, Leadership, asyncio.Task[None]]:
    store, work = _Store(), _Work()
    leadership = Leadership(store, "replica-a", work, ttl_s=TTL_S)  # type: ignore[arg-type]
    task = asyncio.create_task(leadership.run())
    await _until(lambda: leadership.leading)
    yield store, work, leadership, task  # type: ignore[misc]
    task.cancel()
    await asyncio.wait({task})
    await leadership.stop()


async def test_the_holder_runs_one_work_per_term_with_its_fence(leading: tuple) -> None:
    store, work, _, _ = leading
    await asyncio.sleep(4 * TTL_S)  # a dozen renewals
    assert work.fences == [Fence("evaluator", "replica-a", 1)] and work.running == 1
    store.epoch = 2  # lost and taken again between two rounds: a new term
    await _until(lambda: len(work.fences) == 2)
    assert work.fences[-1].epoch == 2 and work.running == 1


@pytest.mark.parametrize("mode", ["fail", "hang"])
async def test_a_store_that_fails_or_hangs_stops_the_work_when_the_lease_runs_out(leading: tuple, mode: str) -> None:
    store, work, leadership, _ = leading
    store.mode = mode
    stopped_at = time.monotonic()
    await _until(lambda: not leadership.leading, within=3 * TTL_S)
    assert time.monotonic() - stopped_at <= TTL_S + 0.1  # never past the lease it last held
    assert work.running == 0
    store.mode = "grant"
    await _until(lambda: leadership.leading)  # and it leads again once the store answers


async def test_another_holder_ends_the_work_at_the_next_round(leading: tuple) -> None:
    store, work, leadership, _ = leading
    store.mode = "deny"
    await _until(lambda: not leadership.leading, within=2 * TTL_S)
    assert work.running == 0


async def test_a_crashed_work_is_logged_and_started_again(leading: tuple, caplog: pytest.LogCaptureFixture) -> None:
    _, work, leadership, _ = leading
    work.crash = True
    terms = len(work.fences)
    # Make the current term crash: end it, the next round starts a new one that crashes, then one more.
    leadership._task.cancel()  # type: ignore[union-attr]
    with caplog.at_level(logging.ERROR, logger="server.cluster.leader"):
        await _until(lambda: len(work.fences) >= terms + 2 and work.running == 1)
    assert "the work ended with an error" in caplog.text


async def test_shutdown_is_not_swallowed_while_a_term_ends(leading: tuple) -> None:
    store, work, leadership, task = leading
    work.slow_exit = True
    store.epoch = 2  # the next round ends the term and waits for the work to wind down ...
    await _until(lambda: leadership._task is not None and leadership._task.cancelling() > 0, within=1.0)
    task.cancel()  # ... and shutdown comes right then
    done, _ = await asyncio.wait({task}, timeout=1.0)
    assert done, "run() swallowed its cancellation"
    await leadership.stop()
    assert store.released == ["replica-a"] and work.running == 0
