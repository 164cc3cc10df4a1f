"""GetAppHealthHistory end to end: a real server over a crafted month of snapshots (SQLite and PostgreSQL), over
gRPC and through the edge as documented JSON; bad parameters, a missing app, another workspace, the rate limit.

The snapshots are written into the server's database from the test, as the evaluator would. The test holds the
evaluator's lease before the server starts, so the server's own evaluator never adds a snapshot of its own.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from google.protobuf import timestamp_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.cluster.leader import EVALUATOR_LEASE
from server.store import open_store
from testing.edge import running_edge
from testing.platform import Tenant, new_tenant
from testing.procs import ServerProcess, running_server
from tests.metrics.history_data import DAY, EXPECTED, EXPECTED_PERCENT, HOUR, REASONS, TICK_S, D, H, K, U, month
from tests.store.backends import BACKENDS, fresh_database

pytestmark = pytest.mark.timeout(120)


async def hold_the_evaluator(database: str) -> None:
    store = await open_store(database)
    try:
        assert await store.acquire_lease(EVALUATOR_LEASE, "the-test", 3600) is not None
    finally:
        await store.close()


@pytest.fixture(params=BACKENDS)
async def served(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path, log_dir: pathlib.Path
) -> AsyncIterator[tuple[ServerProcess, str]]:
    database = fresh_database(request, tmp_path)
    await hold_the_evaluator(database)
    with running_server(log_dir, database, {"MONITORING_EVAL_INTERVAL": "1"}) as server:  # type: ignore[arg-type]
        yield server, database


@pytest.fixture
async def channel(served: tuple[ServerProcess, str]) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(served[0].addr) as ch:
        yield ch


async def crafted_app(tenant: Tenant, database: str) -> tuple[str, int]:
    """A new app of the tenant with a month of snapshots ending now; its id and the last snapshot's time (s)."""
    app = await tenant.add_app()
    now_s = int(time.time())
    store = await open_store(database)
    try:
        snapshots = month(app.id, tenant.workspace_id, now_s)
        for day in range(0, len(snapshots), 2880):
            await store.save_snapshots(snapshots[day : day + 2880])
    finally:
        await store.close()
    return app.id, now_s


def history_request(tenant: Tenant, app_id: str, **fields: object) -> pb.GetAppHealthHistoryRequest:
    return pb.GetAppHealthHistoryRequest(workspace_id=tenant.workspace_id, app_id=app_id, **fields)  # type: ignore[arg-type]


async def test_the_history_over_grpc_and_through_the_edge(
    served: tuple[ServerProcess, str], channel: grpc.aio.Channel, log_dir: pathlib.Path
) -> None:
    server, database = served
    tenant = await new_tenant(channel)
    app_id, now_s = await crafted_app(tenant, database)
    reply = await tenant.monitoring.GetAppHealthHistory(history_request(tenant, app_id), metadata=tenant.auth)
    # Each window ends at the call: the counts are those of the crafted ticks as long as it came within a tick.
    assert reply.end_time.seconds - now_s < TICK_S, "the call came too late for the crafted windows"
    for window, name in zip(reply.uptime, ("24h", "7d", "30d"), strict=True):
        counts = EXPECTED[name]
        assert (window.uptime_percent, window.healthy, window.degraded, window.unhealthy, window.unknown) == (
            EXPECTED_PERCENT[name],
            counts[H],
            counts[D],
            counts[U],
            counts[K],
        ), name
    assert [(now_s - t.at.seconds, list(t.reasons)) for t in reply.transitions] == [
        (6 * HOUR - TICK_S, []),
        (7 * HOUR - TICK_S, list(REASONS[D])),
        (8 * HOUR - TICK_S, list(REASONS[K])),
        (10 * HOUR - TICK_S, list(REASONS[U])),
    ]

    with running_edge(log_dir, server.addr) as edge:
        async with httpx.AsyncClient(base_url=edge.url, headers={"authorization": f"Bearer {tenant.key}"}) as http:
            path = f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/apps/{app_id}/health/history"
            start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_s - 31 * DAY))
            end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_s - 6 * HOUR))
            answer = await http.get(path, params={"startTime": start, "endTime": end, "limit": "2"})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert set(body) == {"appId", "startTime", "endTime", "transitions", "truncated", "uptime"}
            assert (body["appId"], body["startTime"], body["endTime"], body["truncated"]) == (app_id, start, end, True)
            newest = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_s - 7 * HOUR + TICK_S))
            assert body["transitions"][0] == {
                "at": newest,
                "status": "degraded",
                "previousStatus": "unknown",
                "reasons": list(REASONS[D]),
            }
            assert len(body["transitions"]) == 2
            assert body["uptime"][0] == {
                "period": "24h",
                "uptimePercent": EXPECTED_PERCENT["24h"],
                "evaluations": 2880,
                "healthy": 2400,
                "degraded": 120,
                "unhealthy": 240,
                "unknown": 120,
            }
            assert [window["period"] for window in body["uptime"]] == ["24h", "7d", "30d"]
            # The window inside a run: the status it starts in.
            later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_s - 5 * HOUR))
            inside = await http.get(path, params={"startTime": later})
            assert inside.json()["statusAtStart"] == "healthy" and inside.json()["transitions"] == []
            bad = await http.get(path, params={"limit": "1001"})
            assert bad.status_code == 400 and "limit" in bad.text


async def test_bad_parameters_a_missing_app_and_another_workspace_are_refused(
    served: tuple[ServerProcess, str], channel: grpc.aio.Channel
) -> None:
    tenant, other = await new_tenant(channel), await new_tenant(channel)
    app = await tenant.add_app()
    foreign = await other.add_app()
    now_s = int(time.time())

    async def refused(request: pb.GetAppHealthHistoryRequest, key: Tenant = tenant) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await key.monitoring.GetAppHealthHistory(request, metadata=key.auth)
        return caught.value.code(), caught.value.details() or ""

    bad = {
        "limit": history_request(tenant, app.id, limit=1001),
        "start_time": history_request(tenant, app.id, start_time=timestamp_pb2.Timestamp(seconds=now_s + 60)),
        "end_time": history_request(tenant, app.id, end_time=timestamp_pb2.Timestamp(seconds=1, nanos=-5)),
        "app_id": history_request(tenant, "not an id"),
    }
    for field, request in bad.items():
        code, details = await refused(request)
        assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, field), details
    too_long = history_request(
        tenant,
        app.id,
        start_time=timestamp_pb2.Timestamp(seconds=now_s - 32 * DAY),
        end_time=timestamp_pb2.Timestamp(seconds=now_s),
    )
    assert await refused(too_long) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "start_time: may be at most 31 days before end_time",
    )
    # A missing app and another workspace's app are the same NOT_FOUND; another workspace's key is refused.
    missing = await refused(history_request(tenant, "app_never_registered"))
    alien = await refused(history_request(tenant, foreign.id))
    assert missing[0] == alien[0] == grpc.StatusCode.NOT_FOUND
    assert missing[1].replace("app_never_registered", "<id>") == alien[1].replace(foreign.id, "<id>")
    assert (await refused(history_request(tenant, app.id), key=other))[0] == grpc.StatusCode.PERMISSION_DENIED
    # An app never evaluated: no transitions, no share.
    reply = await tenant.monitoring.GetAppHealthHistory(history_request(tenant, app.id), metadata=tenant.auth)
    assert list(reply.transitions) == [] and [w.evaluations for w in reply.uptime] == [0, 0, 0]


async def test_calls_are_rate_limited_per_key(log_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    config = tmp_path / "monitoring.toml"
    config.write_text("[api]\nrate_per_key = 0.1\nburst_per_key = 2\n")
    with running_server(log_dir, tmp_path / "monitoring.db", {"MONITORING_CONFIG_FILE": str(config)}) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenant = await new_tenant(channel)
            app = await tenant.add_app()
            for _ in range(2):
                await tenant.monitoring.GetAppHealthHistory(history_request(tenant, app.id), metadata=tenant.auth)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await tenant.monitoring.GetAppHealthHistory(history_request(tenant, app.id), metadata=tenant.auth)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
