"""One edge over two real monitoring-server replicas sharing one SQLite file: balancing and losing a replica.

Which replica answered a call is read from the replicas' own logs: a call for an unknown app is a
NOT_FOUND that the server logs with the app id, so each probe carries an id of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest

from testing.edge import running_edge
from testing.platform import Tenant, new_tenant
from testing.procs import BIN, ServerProcess, free_port, running_server, unmetered

pytestmark = pytest.mark.timeout(60)

_PROBE = re.compile(r"GetAppHealth -> NOT_FOUND: app '(app_p\d+)' not found")


@dataclasses.dataclass
class _Call:
    started: float
    ended: float
    ok: bool
    probe: str | None  # the unknown app id a probe asked for; None for a ListAlerts call
    outcome: str


@pytest.fixture
def replicas(tmp_path: pathlib.Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    db = tmp_path / "monitoring.db"
    # One log directory each: the log file is named after the command, not the port.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # Four clients call as fast as they can with one key: the per-key rate limit would answer most of them.
    env = unmetered(tmp_path)
    with running_server(tmp_path / "a", db, env) as a, running_server(tmp_path / "b", db, env) as b:
        yield a, b


@pytest.fixture
async def tenant(replicas: tuple[ServerProcess, ServerProcess]) -> AsyncIterator[Tenant]:
    async with grpc.aio.insecure_channel(replicas[0].addr) as channel:
        yield await new_tenant(channel)


class _Caller:
    """Calls through the edge, each recorded; probes carry a unique unknown app id."""

    def __init__(self, http: httpx.AsyncClient, tenant: Tenant) -> None:
        self.http = http
        self.base = f"/api/v1/workspaces/{tenant.workspace_id}/monitoring"
        self.calls: list[_Call] = []
        self._probes = 0

    async def probe(self) -> _Call:
        self._probes += 1
        app_id = f"app_p{self._probes:05d}"
        return await self._call(f"{self.base}/apps/{app_id}/health", app_id, 404, f"app '{app_id}' not found")

    async def list_alerts(self) -> _Call:
        return await self._call(f"{self.base}/alerts", None, 200, None)

    async def _call(self, path: str, probe: str | None, status: int, message: str | None) -> _Call:
        started = time.monotonic()
        try:
            response = await self.http.get(path)
            body = response.json()
            ok = response.status_code == status and (message is None or body["error"]["message"] == message)
            outcome = f"{response.status_code} {body}"
        except httpx.HTTPError as error:
            ok, outcome = False, repr(error)
        call = _Call(started, time.monotonic(), ok, probe, outcome)
        self.calls.append(call)
        return call


def _answered_by(server: ServerProcess) -> set[str]:
    return set(_PROBE.findall(server.log()))


async def test_calls_are_balanced_and_survive_losing_a_replica(
    replicas: tuple[ServerProcess, ServerProcess], tenant: Tenant, tmp_path: pathlib.Path
) -> None:
    a, b = replicas
    with running_edge(tmp_path, f"{a.addr},{b.addr}") as edge:
        headers = {"authorization": f"Bearer {tenant.key}"}
        async with httpx.AsyncClient(base_url=edge.url, headers=headers, timeout=10) as http:
            caller = _Caller(http, tenant)

            # (a) Both replicas answer: round_robin once both connections are up (bounded warm-up).
            for _ in range(50):
                await caller.probe()
                if _answered_by(a) and _answered_by(b):
                    break
            warm = len(caller.calls)
            for _ in range(20):
                await caller.probe()
            balanced = [c.probe for c in caller.calls[warm:]]
            on_a, on_b = _answered_by(a), _answered_by(b)
            assert all(c.ok for c in caller.calls), [c.outcome for c in caller.calls if not c.ok]
            assert len(on_a & set(balanced)) >= 5 and len(on_b & set(balanced)) >= 5, (on_a, on_b)
            assert not on_a & on_b  # each call reached exactly one replica

            # (b) Stop B while four clients keep calling; the edge is never restarted.
            caller.calls.clear()
            stop = asyncio.Event()

            async def load() -> None:
                while not stop.is_set():
                    await caller.probe()
                    await caller.list_alerts()

            workers = [asyncio.create_task(load()) for _ in range(4)]
            await asyncio.sleep(0.5)
            terminated = time.monotonic()
            b.popen.send_signal(signal.SIGTERM)
            for _ in range(300):  # ≤ 15 s for B's graceful stop (its drain)
                if not b.alive():
                    break
                await asyncio.sleep(0.05)
            exited = time.monotonic()
            await asyncio.sleep(1.0)  # calls after B is gone
            stop.set()
            await asyncio.gather(*workers)
            ready = await http.get("/readyz")

    assert b.stop() == 0  # B had exited gracefully (stop() only collects the status here)
    during = [c for c in caller.calls if c.started >= terminated]
    by_b = _answered_by(b)
    last_on_b = max((c.ended for c in during if c.probe in by_b), default=terminated)
    # The edge has noticed once B gets no more calls; from then on every call succeeds, on A.
    after_notice = [c for c in during if c.started > last_on_b]
    failed = [c for c in during if not c.ok]
    print(
        f"\nB answered {len([c for c in during if c.probe in by_b])} probes after SIGTERM; edge noticed within "
        f"{last_on_b - terminated:.3f} s; B exited after {exited - terminated:.3f} s; {len(during)} calls after "
        f"SIGTERM, {len(after_notice)} after noticing, {len(failed)} failed: {[c.outcome for c in failed]}"
    )
    assert last_on_b - terminated < 5.0
    assert len(after_notice) >= 40
    assert [c.outcome for c in after_notice if not c.ok] == []
    assert all(c.probe in _answered_by(a) for c in after_notice if c.probe)
    assert [c for c in during if c.started > exited] and all(c.ok for c in during if c.started > exited)
    assert (ready.status_code, ready.json()) == (200, {"status": "SERVING"})


def test_a_bad_upstream_is_refused_at_start_naming_the_setting(tmp_path: pathlib.Path) -> None:
    env = {"MONITORING_EDGE_ADDR": f"127.0.0.1:{free_port()}", "MONITORING_UPSTREAM": "edge-a:50051,edge-b:50051"}
    refused = subprocess.run(
        [str(BIN / "monitoring-edge")], env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert refused.returncode != 0
    assert refused.stderr.startswith(
        "monitoring-edge: invalid value for upstream (MONITORING_UPSTREAM or --upstream): "
        "'edge-a:50051,edge-b:50051': a list may hold only IP addresses"
    )
    assert "dns:///" in refused.stderr
