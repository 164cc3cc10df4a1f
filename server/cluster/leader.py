"""One evaluator among N replicas: a lease in the shared store, renewed by its holder, taken over on expiry.

Every replica runs a :class:`Leadership`. Every ``ttl_s / 3`` it asks the store for the lease
(:meth:`~server.store.base.Store.acquire_lease`): the holder renews it; the others get it only once it has
expired. While this replica holds it, ``work`` runs with the lease's :class:`~server.store.records.Fence`;
the store refuses every fenced write whose epoch is no longer current, so a leader that stalled past its
lease (a long pause, a partition) cannot raise or resolve an alert after another replica took over.

A leader that cannot renew in time (the store down or slow: each attempt is bounded by a third of the lease)
cancels its work when the lease it last held runs out by its own clock, counted from before its last
successful renewal was sent, so no later than the store's expiry (a slow clock here is the one case fencing
alone covers). A process that is paused as a whole cannot stop anything: its late writes are refused by the
fence. A graceful stop releases the lease, so another replica takes over at its next attempt instead of
after the expiry. A leader killed with ``kill -9`` is replaced within ``ttl_s + ttl_s / 3``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable

from server.convert import NS_PER_S
from server.store import Store
from server.store.records import Fence, Lease

log = logging.getLogger("server.cluster.leader")

EVALUATOR_LEASE = "evaluator"


def new_replica_id() -> str:
    """``<host>-<pid>-<6 hex digits>``: readable in logs, and new at every start (a restarted process with a
    reused PID is another holder)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclasses.dataclass(frozen=True)
class LeaseView:
    """What this replica knows of the lease (for GetEvaluatorLease and logs)."""

    replica_id: str
    leading: bool
    lease: Lease | None


class Leadership:
    """Runs ``work(fence)`` only while this replica holds the lease ``name``."""

    def __init__(
        self,
        store: Store,
        replica_id: str,
        work: Callable[[Fence], Awaitable[None]],
        *,
        ttl_s: float,
        name: str = EVALUATOR_LEASE,
    ):
        self._store = store
        self.replica_id = replica_id
        self._work = work
        self._ttl_s = ttl_s
        self._name = name
        self._lease: Lease | None = None  # the lease as this replica holds it, None when it does not
        self._valid_until = 0.0  # monotonic time past which our lease may have passed to another replica
        self._task: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def leading(self) -> bool:
        return self._task is not None and not self._task.done()

    async def view(self) -> LeaseView:
        """The lease as the store has it now (it may be held by another replica)."""
        return LeaseView(self.replica_id, self.leading, await self._store.current_lease(self._name))

    async def run(self) -> None:
        """Tries for the lease every third of its time, forever; cancelled on shutdown (then call stop())."""
        period = self._ttl_s / 3
        while True:
            started = time.monotonic()
            try:
                # Bounded: a store that hangs must not keep the work running past our lease.
                lease = await asyncio.wait_for(
                    self._store.acquire_lease(self._name, self.replica_id, self._ttl_s), period
                )
            except Exception as error:  # the store is down or slow: keep our work only while our lease holds
                log.warning("lease %s: no answer from the store: %s", self._name, error or type(error).__name__)
                lease = self._lease if time.monotonic() < self._valid_until else None
            else:
                if lease is not None:
                    self._valid_until = started + self._ttl_s
            await self._follow(lease)
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    async def stop(self) -> None:
        """Stops the work and hands the lease over at once (a graceful stop: no wait for the expiry)."""
        if self._expiry is not None:
            self._expiry.cancel()
        await self._follow(None)
        with contextlib.suppress(Exception):
            await self._store.release_lease(self._name, self.replica_id)

    async def _follow(self, lease: Lease | None) -> None:
        held = self._lease
        if lease is not None:
            self._arm_expiry()
        if lease is not None and (held is None or held.epoch != lease.epoch or not self.leading):
            if self._task is not None:
                await self._end_work()  # a new epoch (taken again after an expiry), or the work died: start anew
            expires_in = (lease.expires_ns - time.time_ns()) / NS_PER_S
            log.info(
                "replica %s leads (lease %s, epoch %d, expires in %.1f s)",
                self.replica_id,
                self._name,
                lease.epoch,
                expires_in,
            )
            fence = Fence(self._name, self.replica_id, lease.epoch)
            self._task = asyncio.create_task(self._work(fence), name=f"lease {self._name} epoch {lease.epoch}")
        elif lease is None and held is not None:
            log.warning("replica %s no longer leads (lease %s, epoch %d)", self.replica_id, self._name, held.epoch)
            await self._end_work()
        self._lease = lease

    def _arm_expiry(self) -> None:
        """Ends the work when our lease runs out by our own clock, even while a renewal is still waiting."""
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().call_at(self._loop_time_of(self._valid_until), self._expire)

    def _loop_time_of(self, monotonic: float) -> float:
        loop = asyncio.get_running_loop()
        return loop.time() + (monotonic - time.monotonic())

    def _expire(self) -> None:
        if self.leading and time.monotonic() >= self._valid_until:
            log.warning("replica %s: lease %s ran out before it could be renewed", self.replica_id, self._name)
            assert self._task is not None
            self._task.cancel()  # the next round of run() sees the ended work and the lease as it is

    async def _end_work(self) -> None:
        task = self._task
        if task is None:
            return
        task.cancel()
        # wait(), not await: a cancellation of our caller (shutdown) must propagate, not be swallowed here;
        # the task stays ours until it has ended, so stop() can still wait for it then.
        await asyncio.wait({task})
        self._task = None
        if not task.cancelled() and task.exception() is not None:
            log.error("lease %s: the work ended with an error", self._name, exc_info=task.exception())
