"""gRPC health follows the store: NOT_SERVING while the store cannot answer, SERVING again once it does."""

from __future__ import annotations

import asyncio
import pathlib
import time

import grpc
import pytest
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.api.serving import STORE_PROBE_INTERVAL_S, STORE_PROBE_TIMEOUT_S, watch_store
from server.main import SERVICE_NAMES
from testing.postgres import PostgresCluster, bindir, running_postgres
from testing.procs import running_server

pytestmark = pytest.mark.timeout(120)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# A failing store is noticed within one interval plus one probe's timeout; a little slack for a busy machine.
_NOTICED_WITHIN_S = STORE_PROBE_INTERVAL_S + STORE_PROBE_TIMEOUT_S + 3.0


def _statuses(addr: str) -> dict[str, int]:
    """Health/Check of the server as a whole and of each service."""
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return {name: stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=2).status
                for name in ("", *SERVICE_NAMES)}  # fmt: skip


def _wait_for(addr: str, status: int, within_s: float) -> float:
    """Seconds until every name reports ``status``; fails after ``within_s``."""
    started = time.monotonic()
    seen: dict[str, int] = {}
    while time.monotonic() - started < within_s:
        seen = _statuses(addr)
        if set(seen.values()) == {status}:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"health still {seen} after {within_s} s, expected {status} everywhere")


def _start_again(cluster: PostgresCluster) -> None:
    """pg_ctl start on the stopped cluster's existing data directory, same port (start() would run initdb)."""
    options = f"-c listen_addresses=127.0.0.1 -c port={cluster.port} -c unix_socket_directories='{cluster.directory}'"
    cluster._run([bindir() / "pg_ctl", "-D", cluster.data, "-l", cluster.log_path, "-o", options, "-w", "-t", "60",
                  "start"])  # fmt: skip


def test_health_is_not_serving_while_postgresql_is_down_and_serving_after(log_dir: pathlib.Path) -> None:
    with running_postgres() as cluster:
        url = cluster.create_database("t_store_health")
        with running_server(log_dir, url) as server:  # type: ignore[arg-type]
            assert set(_statuses(server.addr).values()) == {_SERVING}
            cluster.stop()
            _wait_for(server.addr, _NOT_SERVING, _NOTICED_WITHIN_S)
            assert server.alive()
            _start_again(cluster)
            # A pooled connection the restart closed may fail one more probe before a fresh one answers.
            _wait_for(server.addr, _SERVING, _NOTICED_WITHIN_S + STORE_PROBE_INTERVAL_S)
            log = server.log()
            assert log.count("store unusable, health NOT_SERVING: store unavailable") == 1
            assert log.count("store answers again: health SERVING") == 1
            assert log.index("health NOT_SERVING") < log.index("health SERVING")


class _HangingStore:
    """Answers get_workspace until told to hang, as a store behind a dead network path would."""

    def __init__(self) -> None:
        self.hanging = False

    async def get_workspace(self, workspace_id: str) -> None:
        if self.hanging:
            await asyncio.sleep(3600)


async def test_a_store_that_stops_answering_turns_health_not_serving_within_the_timeout() -> None:
    store, health = _HangingStore(), health_async.HealthServicer()
    for name in ("", *SERVICE_NAMES):
        await health.set(name, _SERVING)
    watcher = asyncio.create_task(watch_store(store, health, ("", *SERVICE_NAMES), interval_s=0.05, timeout_s=0.2))  # type: ignore[arg-type]
    try:

        async def status(name: str) -> int:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name), None)  # type: ignore[arg-type]
            return reply.status

        async def wait_for(expected: int) -> float:
            started = time.monotonic()
            while {await status(name) for name in ("", *SERVICE_NAMES)} != {expected}:
                assert time.monotonic() - started < 5, f"still not {expected}"
                await asyncio.sleep(0.01)
            return time.monotonic() - started

        await asyncio.sleep(0.2)
        assert await status("") == _SERVING
        store.hanging = True
        assert await wait_for(_NOT_SERVING) < 1.0  # one interval plus one timeout, and slack
        store.hanging = False
        assert await wait_for(_SERVING) < 1.0
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
