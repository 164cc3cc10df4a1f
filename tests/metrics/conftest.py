"""One real server reading the session's backfilled Prometheus (``backfilled``, tests/conftest.py)."""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing import metrics_data as data
from testing.metrics_data import Backfilled, seed_apps
from testing.platform import Tenant, new_tenant
from testing.procs import ServerProcess, running_server

EVAL_INTERVAL_S = 0.5


@pytest.fixture(scope="session")
def metrics_server(
    backfilled: Backfilled, log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {"MONITORING_PROMETHEUS_URL": backfilled.prometheus.url, "MONITORING_EVAL_INTERVAL": str(EVAL_INTERVAL_S)}
    with running_server(log_dir, tmp_path_factory.mktemp("metrics-db") / "monitoring.db", env) as process:
        yield process


@pytest.fixture(scope="session")
async def metrics_channel(metrics_server: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(metrics_server.addr) as channel:
        yield channel


async def wait_evaluated(tenant: Tenant, apps: list[str], after_ns: int, within_s: float = 15.0) -> None:
    """Until every app has a snapshot from a tick that started after ``after_ns`` (bounded)."""
    deadline = time.monotonic() + within_s
    pending = list(apps)
    while pending and time.monotonic() < deadline:
        request = pb.GetAppHealthRequest(workspace_id=tenant.workspace_id, app_id=pending[0])
        reply = await tenant.monitoring.GetAppHealth(request, metadata=tenant.auth)
        checked = reply.last_checked_at.seconds * 10**9 + reply.last_checked_at.nanos
        if reply.HasField("last_checked_at") and checked > after_ns:
            pending.pop(0)
        else:
            await asyncio.sleep(0.1)
    assert not pending, f"not evaluated within {within_s} s: {pending}"


@pytest.fixture(scope="session")
async def metrics_tenant(metrics_channel: grpc.aio.Channel) -> Tenant:
    tenant = await new_tenant(metrics_channel, data.WORKSPACE)
    await seed_apps(tenant)
    await wait_evaluated(tenant, list(data.HEALTH_CASES), time.time_ns())
    return tenant
