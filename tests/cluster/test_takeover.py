"""Three replicas on one PostgreSQL database behind an edge: the evaluator leader is killed with kill -9.

A new leader takes the lease within two evaluation intervals, health snapshots keep coming, the open alert
is neither raised again nor lost, a resolution acknowledged just before the kill stays resolved, and the
lease is visible through GetEvaluatorLease. Tokens and streams cross replicas: a page token from one replica
pages on another, and an SSE stream resumed through another replica's edge delivers each line exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc, platform_pb2_grpc
from dooor.monitoring.v1 import platform_pb2 as ppb
from testing.edge import running_edge
from testing.loki import LokiDouble, running_loki
from testing.platform import ADMIN, Tenant, new_tenant
from testing.postgres import PostgresCluster
from testing.procs import ServerProcess
from testing.prometheus import Series, running_prometheus

pytestmark = pytest.mark.timeout(120)

# The lease is one interval, renewed every third: 3 s leaves a renewal 2 s of slack on a loaded machine.
EVAL_INTERVAL_S = 3.0
MIB = 1048576
OPEN, MANUAL = "rep_open", "rep_manual"  # memory at 90 % of the limit all along: both alert
CONFIG = """
[alerts]
resolution_s = 1

[alerts.defaults.high_memory]
hold_seconds = 2
"""


def _series(now: int, workspace_id: str) -> Iterator[Series]:
    times = range(now - 300, now + 600)
    for app in (OPEN, MANUAL):
        labels = {"workspace_id": workspace_id, "app_id": app}
        yield Series("up", {**labels, "instance": f"{app}-0"}, [(t, 1.0) for t in times])
        yield Series(
            "container_memory_working_set_bytes",
            {**labels, "pod": f"{app}-0", "container": "app"},
            [(t, 0.9 * 512 * MIB) for t in times],
        )


class _Cluster:
    def __init__(self, workspace_id: str, replicas: list[ServerProcess], loki: LokiDouble, log_dir: pathlib.Path):
        self.workspace_id = workspace_id
        self.replicas = replicas
        self.loki = loki
        self.log_dir = log_dir

    def alive(self) -> list[ServerProcess]:
        return [r for r in self.replicas if r.alive()]


@pytest.fixture
def cluster(postgres_cluster: PostgresCluster, tmp_path: pathlib.Path, log_dir: pathlib.Path) -> Iterator[_Cluster]:
    workspace_id = "ws_takeover"
    db = postgres_cluster.create_database(f"takeover_{secrets.token_hex(4)}")
    (tmp_path / "monitoring.toml").write_text(CONFIG)
    with (
        running_prometheus(tmp_path, _series(int(time.time()), workspace_id)) as prometheus,
        running_loki(log_dir) as loki,
    ):
        env = {
            "MONITORING_PROMETHEUS_URL": prometheus.url,
            "MONITORING_LOKI_URL": loki.url,
            "MONITORING_EVAL_INTERVAL": str(EVAL_INTERVAL_S),
            "MONITORING_CONFIG_FILE": str(tmp_path / "monitoring.toml"),
        }
        replicas: list[ServerProcess] = []
        try:
            for name in ("r0", "r1", "r2"):
                (tmp_path / name).mkdir()
                replicas.append(ServerProcess(tmp_path / name, db, env))
            yield _Cluster(workspace_id, replicas, loki, log_dir)
        finally:
            for replica in replicas:
                replica.stop()


@contextlib.asynccontextmanager
async def _tenant_on(replica: ServerProcess, tenant: Tenant) -> AsyncIterator[Tenant]:
    async with grpc.aio.insecure_channel(replica.addr) as channel:
        yield Tenant(
            tenant.workspace_id,
            tenant.key,
            platform_pb2_grpc.PlatformServiceStub(channel),
            monitoring_pb2_grpc.MonitoringServiceStub(channel),
        )


async def _lease(replica: ServerProcess) -> ppb.EvaluatorLease:
    async with grpc.aio.insecure_channel(replica.addr) as channel:
        stub = platform_pb2_grpc.PlatformServiceStub(channel)
        return await stub.GetEvaluatorLease(ppb.GetEvaluatorLeaseRequest(), metadata=ADMIN, timeout=5)


def _pid(replica_id: str) -> int:
    return int(replica_id.rsplit("-", 2)[1])  # <host>-<pid>-<hex>; the host may hold dashes


async def _until(what: str, probe: object, within: float, interval: float = 0.1) -> object:
    deadline = time.monotonic() + within
    while True:
        found = await probe()  # type: ignore[operator]
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(interval)


async def _alerts(tenant: Tenant, app_id: str) -> list[pb.Alert]:
    request = pb.ListAlertsRequest(workspace_id=tenant.workspace_id, app_id=app_id)
    return list((await tenant.monitoring.ListAlerts(request, metadata=tenant.auth)).alerts)


async def test_kill_9_of_the_leader_hands_over_within_two_intervals_and_loses_nothing(cluster: _Cluster) -> None:
    first = cluster.replicas[0]
    async with grpc.aio.insecure_channel(first.addr) as channel:
        tenant = await new_tenant(channel, cluster.workspace_id)
        for app in (OPEN, MANUAL):
            await tenant.add_app(app)

    addresses = ",".join(r.addr for r in cluster.replicas)
    with running_edge(cluster.log_dir, addresses) as edge:
        async with _tenant_on(first, tenant) as on_first, httpx.AsyncClient(base_url=edge.url, timeout=10) as http:

            async def both_open() -> dict[str, pb.Alert] | None:
                found = {app: await _alerts(on_first, app) for app in (OPEN, MANUAL)}
                return {app: alerts[0] for app, alerts in found.items()} if all(found.values()) else None

            fired: dict[str, pb.Alert] = await _until("both alerts to fire", both_open, 30)  # type: ignore[assignment]
            before = await _lease(first)
            assert before.holder_id and before.epoch >= 1
            leader = next(r for r in cluster.replicas if r.pid == _pid(before.holder_id))
            assert "leads (lease evaluator" in leader.log()

            # A resolve acknowledged through the edge, then the leader dies at once.
            path = f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts/{fired[MANUAL].id}/resolve"
            resolved = await http.patch(path, headers={"authorization": f"Bearer {tenant.key}"})
            assert resolved.status_code == 200 and resolved.json()["resolved"] is True
            killed_at, killed_wall = time.monotonic(), time.time()
            leader.kill()

            survivor = next(r for r in cluster.alive() if r is not leader)

            async def new_leader() -> ppb.EvaluatorLease | None:
                lease = await _lease(survivor)
                return lease if lease.holder_id != before.holder_id and lease.epoch > before.epoch else None

            after: ppb.EvaluatorLease = await _until("a new leader", new_leader, 4 * EVAL_INTERVAL_S)  # type: ignore[assignment]
            takeover_s = time.monotonic() - killed_at
            assert takeover_s <= 2 * EVAL_INTERVAL_S, f"takeover took {takeover_s:.2f} s"
            assert after.epoch == before.epoch + 1
            assert any(r.alive() and r.pid == _pid(after.holder_id) for r in cluster.replicas)

            async with _tenant_on(survivor, tenant) as on_survivor:

                async def fresh_health() -> bool:
                    request = pb.GetAppHealthRequest(workspace_id=tenant.workspace_id, app_id=OPEN)
                    reply = await on_survivor.monitoring.GetAppHealth(request, metadata=tenant.auth)
                    return reply.last_checked_at.seconds > killed_wall + EVAL_INTERVAL_S

                await _until("health snapshots from the new leader", fresh_health, 4 * EVAL_INTERVAL_S)
                await asyncio.sleep(2 * EVAL_INTERVAL_S)  # more ticks of the new leader over the same breach
                assert await _alerts(on_survivor, OPEN) == [fired[OPEN]]  # still open, not raised again
                (manual,) = await _alerts(on_survivor, MANUAL)
                assert manual.id == fired[MANUAL].id and manual.resolved  # the resolution survived the kill
                # The edge still answers: the dead replica left its round_robin.
                for _ in range(6):
                    listed = await http.get(
                        f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts",
                        headers={"authorization": f"Bearer {tenant.key}"},
                    )
                    assert listed.status_code == 200


async def test_page_tokens_and_stream_cursors_cross_replicas(cluster: _Cluster) -> None:
    one, two = cluster.replicas[0], cluster.replicas[1]
    async with grpc.aio.insecure_channel(one.addr) as channel:
        tenant = await new_tenant(channel, cluster.workspace_id)
        await tenant.add_app(OPEN)
    stream = {"workspace_id": tenant.workspace_id, "app_id": OPEN, "level": "info"}
    now = time.time_ns()
    await asyncio.to_thread(
        cluster.loki.push, [{"stream": stream, "values": [[now + i, f"page {i}"] for i in range(30)]}]
    )

    # Pages alternate between the two replicas; the token is signed with the secret they share in the store.
    lines: list[str] = []
    token = ""
    async with _tenant_on(one, tenant) as on_one, _tenant_on(two, tenant) as on_two:
        for page in range(3):
            replica = (on_one, on_two)[page % 2]
            request = pb.ListAppLogsRequest(workspace_id=tenant.workspace_id, app_id=OPEN, limit=10, page_token=token)
            reply = await replica.monitoring.ListAppLogs(request, metadata=tenant.auth)
            lines += [entry.message for entry in reply.logs]
            token = reply.next_page_token
    assert lines == [f"page {i}" for i in reversed(range(30))]

    # A stream read through replica one's edge, broken, then resumed through replica two's edge.
    path = f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/apps/{OPEN}/logs/stream"
    headers = {"authorization": f"Bearer {tenant.key}", "accept": "text/event-stream"}
    with running_edge(cluster.log_dir, one.addr) as edge_one, running_edge(cluster.log_dir, two.addr) as edge_two:
        async with httpx.AsyncClient(timeout=20) as http:
            async with http.stream("GET", edge_one.url + path, headers=headers) as response:
                assert response.status_code == 200
                await asyncio.sleep(1.0)  # the replica's tail is open (it also back-fills what it missed)
                await asyncio.to_thread(_push, cluster.loki, stream, ["live 0", "live 1", "live 2"])
                seen = await _events(response, lambda got: "live 2" in [m for _, m in got])
            last_id = seen[-1][0]
            # Written while no client is connected: the resumed stream must replay exactly these.
            await asyncio.to_thread(_push, cluster.loki, stream, ["gap 0", "gap 1"])
            async with http.stream("GET", edge_two.url + path, headers={**headers, "last-event-id": last_id}) as again:
                assert again.status_code == 200
                await asyncio.sleep(1.0)
                await asyncio.to_thread(_push, cluster.loki, stream, ["live 3"])
                resumed = await _events(again, lambda got: "live 3" in [m for _, m in got])
    assert [m for _, m in resumed] == ["gap 0", "gap 1", "live 3"]


def _push(loki: LokiDouble, stream: dict[str, str], lines: list[str]) -> None:
    now = time.time_ns()
    loki.push([{"stream": stream, "values": [[now + i, line] for i, line in enumerate(lines)]}])


async def _events(response: httpx.Response, done: object, within: float = 15.0) -> list[tuple[str, str]]:
    """(id, message) of the SSE entry events until ``done(events)`` holds."""
    found: list[tuple[str, str]] = []
    event_id = ""
    async with asyncio.timeout(within):
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if "message" in data:
                    found.append((event_id, data["message"]))
                if done(found):  # type: ignore[operator]
                    return found
    return found


async def test_a_stalled_leader_is_replaced_and_steps_down_when_it_wakes(cluster: _Cluster) -> None:
    """Replacement and stepping down, end to end. That its late writes are refused is the fence, proven where
    it can be timed exactly: tests/store/test_leases.py and test_postgres.py."""
    first = cluster.replicas[0]
    async with grpc.aio.insecure_channel(first.addr) as channel:
        tenant = await new_tenant(channel, cluster.workspace_id)
        await tenant.add_app(OPEN)
    async with _tenant_on(first, tenant) as on_first:

        async def fired() -> list[pb.Alert] | None:
            return await _alerts(on_first, OPEN) or None

        alerts = await _until("the alert to fire", fired, 30)
        before = await _lease(first)
        leader = next(r for r in cluster.replicas if r.pid == _pid(before.holder_id))
        survivor = next(r for r in cluster.replicas if r is not leader)
        os.kill(leader.pid, signal.SIGSTOP)  # a pause longer than the lease: the process does not know it
        try:
            stopped_at = time.monotonic()

            async def new_leader() -> ppb.EvaluatorLease | None:
                lease = await _lease(survivor)
                return lease if lease.epoch > before.epoch else None

            await _until("a new leader", new_leader, 4 * EVAL_INTERVAL_S)
            assert time.monotonic() - stopped_at <= 2 * EVAL_INTERVAL_S
        finally:
            os.kill(leader.pid, signal.SIGCONT)
        # The old leader wakes mid-term: it must notice, stop evaluating, and none of its writes may land.
        await _until("the old leader to step down", _stepped_down(leader), 4 * EVAL_INTERVAL_S)
        await asyncio.sleep(2 * EVAL_INTERVAL_S)
        assert await _alerts(on_first, OPEN) == alerts
        assert (await _lease(leader)).leading is False


def _stepped_down(replica: ServerProcess) -> object:
    async def probe() -> bool:
        log = replica.log()
        return "no longer leads" in log or "passed to another replica" in log

    return probe
