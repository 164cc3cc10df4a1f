"""A supervisor of worker processes: ``monitoring-server --workers N`` with N > 1.

As in gRPC's own multiprocessing example, the parent forks the workers before any gRPC object exists in it:
it creates no channel and no server, so gRPC's fork support is never relied on. Each worker runs its own
grpc.aio server on the same address with SO_REUSEPORT, and the kernel spreads new connections over them.

The parent restarts a worker that dies unexpectedly (after a short backoff that grows while a slot keeps
crashing), gives up and stops everything when workers crash in a tight loop, and on SIGTERM or SIGINT sends
SIGTERM to every worker, waits for their graceful drain and SIGKILLs any straggler. It knows nothing about
what a worker serves: the worker is a callable.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import signal
import socket
import time
from collections.abc import Callable

__all__ = ["Policy", "Supervisor", "worker_count"]

log = logging.getLogger("server.cluster.workers")

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Fork, not spawn: a worker inherits the loaded configuration and code, and the parent has no gRPC state yet.
_FORK = multiprocessing.get_context("fork")


def worker_count(requested: int) -> int:
    """``requested`` workers, or one per core this process may run on when it is 0."""
    # os.process_cpu_count() would say the same, but it is Python 3.13+.
    return requested or len(os.sched_getaffinity(0))


@dataclasses.dataclass(frozen=True)
class Policy:
    """How the supervisor restarts and stops its workers."""

    # A worker's drain on SIGTERM (the server's shutdown_grace_s).
    grace_s: float = 5.0
    # Beyond the grace before a straggler is killed: closing the backends and the store takes a moment.
    kill_margin_s: float = 5.0
    # The delay before a restart doubles with each quick death of the same slot, up to the maximum.
    backoff_initial_s: float = 0.25
    backoff_max_s: float = 5.0
    # A worker that lived this long was healthy: its slot's backoff starts over.
    stable_after_s: float = 10.0
    # More than count * restarts_per_worker restarts within the window is a crash loop: give up.
    restart_window_s: float = 60.0
    restarts_per_worker: int = 5


@dataclasses.dataclass
class _Slot:
    """One of the N places a worker runs in; a restarted worker takes its predecessor's slot."""

    index: int
    process: multiprocessing.process.BaseProcess | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None


class Supervisor:
    """Starts ``count`` processes running ``target`` and keeps them running until SIGTERM or SIGINT."""

    def __init__(self, count: int, target: Callable[[], None], policy: Policy | None = None) -> None:
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        self._count = count
        self._target = target
        self._policy = policy or Policy()
        self._slots = [_Slot(index) for index in range(1, count + 1)]
        self._restarts: collections.deque[float] = collections.deque()
        self._signalled: int | None = None
        # The signal handler only records the signal; the wakeup socket interrupts the wait at once.
        self._wakeup_r, self._wakeup_w = socket.socketpair()

    def run(self) -> int:
        """Supervises until SIGTERM/SIGINT (then 0) or a crash loop (then 1); every worker has exited."""
        for sock in (self._wakeup_r, self._wakeup_w):
            sock.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(self._wakeup_w.fileno())
        previous_handlers = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        code = 1
        try:
            for slot in self._slots:
                self._start(slot)
            code = self._supervise()
        finally:
            self._stop_all()
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            self._wakeup_r.close()
            self._wakeup_w.close()
        return code

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._signalled = signum

    def _supervise(self) -> int:
        while self._signalled is None:
            live = [slot.process for slot in self._slots if slot.process is not None]
            multiprocessing.connection.wait([self._wakeup_r, *(p.sentinel for p in live)], self._until_restart())
            self._drain_wakeup()
            now = time.monotonic()
            for slot in self._slots:
                if slot.process is not None and not slot.process.is_alive() and self._signalled is None:
                    self._reap(slot)
                    if not self._schedule_restart(slot, now):
                        return 1
            for slot in self._slots:
                if slot.restart_at is not None and slot.restart_at <= now and self._signalled is None:
                    self._start(slot)
        log.info("%s: stopping %d workers", signal.Signals(self._signalled).name, self._count)
        return 0

    def _until_restart(self) -> float | None:
        """Seconds until the next pending restart, or None (wait for an exit or a signal)."""
        pending = [slot.restart_at for slot in self._slots if slot.restart_at is not None]
        return max(0.0, min(pending) - time.monotonic()) if pending else None

    def _drain_wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wakeup_r.recv(512):
                pass

    def _schedule_restart(self, slot: _Slot, now: float) -> bool:
        """Sets the slot's restart time; False when the restart budget is spent (a crash loop)."""
        policy = self._policy
        while self._restarts and self._restarts[0] <= now - policy.restart_window_s:
            self._restarts.popleft()
        budget = self._count * policy.restarts_per_worker
        if len(self._restarts) >= budget:
            log.error("workers crash in a loop (%d restarts within %.0f s): giving up", budget, policy.restart_window_s)
            return False
        self._restarts.append(now)
        slot.quick_deaths = slot.quick_deaths + 1 if now - slot.started_at < policy.stable_after_s else 0
        delay = min(policy.backoff_max_s, policy.backoff_initial_s * 2 ** max(slot.quick_deaths - 1, 0))
        slot.restart_at = now + delay
        log.info("worker %d: restarting in %.2f s", slot.index, delay)
        return True

    def _start(self, slot: _Slot) -> None:
        process = _FORK.Process(target=self._worker_main, name=f"monitoring-worker-{slot.index}")
        # Blocked across the fork, so a signal cannot reach the child before it has reset our handler.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        slot.process, slot.started_at, slot.restart_at = process, time.monotonic(), None
        log.info("worker %d started (pid %d)", slot.index, process.pid)

    def _worker_main(self) -> None:
        """In the child: the default signal dispositions again (the target installs its own), then the target."""
        signal.set_wakeup_fd(-1)
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        self._wakeup_r.close()
        self._wakeup_w.close()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        self._target()

    def _reap(self, slot: _Slot) -> None:
        process = slot.process
        assert process is not None
        process.join()
        log.info("worker %d (pid %d) exited: %s", slot.index, process.pid, _describe(process.exitcode))
        process.close()
        slot.process = None

    def _stop_all(self) -> None:
        """SIGTERM to every live worker, a wait for their drain, then SIGKILL for the stragglers."""
        for slot in self._slots:
            slot.restart_at = None
        live = [slot for slot in self._slots if slot.process is not None]
        for slot in live:
            assert slot.process is not None and slot.process.pid is not None
            # The worker may have just exited; its sentinel reports that below.
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._policy.grace_s + self._policy.kill_margin_s
        while live and (remaining := deadline - time.monotonic()) > 0:
            multiprocessing.connection.wait([slot.process.sentinel for slot in live if slot.process], remaining)
            for slot in [slot for slot in live if slot.process is not None and not slot.process.is_alive()]:
                self._reap(slot)
                live.remove(slot)
        for slot in live:
            assert slot.process is not None
            log.warning("worker %d (pid %d) still running after the grace: SIGKILL", slot.index, slot.process.pid)
            slot.process.kill()
            self._reap(slot)


def _describe(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"status {exitcode}"
