"""SIGTERM while a GetAppMetrics call waits on a slow Prometheus: the call finishes, then the server exits 0."""

from __future__ import annotations

import asyncio
import pathlib
import signal
import time

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.metrics.app_metrics import RANGE_BATCHES
from testing import metrics_data as data
from testing.metrics_data import seed_apps
from testing.platform import new_tenant
from testing.procs import ServerProcess
from tests.metrics.conftest import Backfilled
from tests.metrics.flaky import Flaky

pytestmark = pytest.mark.timeout(60)


async def _until(condition, within_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_sigterm_lets_an_in_flight_unary_call_finish(
    backfilled: Backfilled, log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    proxy = Flaky(backfilled.prometheus.url, slow_s=1.5)  # well inside the 5 s shutdown grace
    await proxy.start()
    env = {"MONITORING_PROMETHEUS_URL": proxy.url, "MONITORING_EVAL_INTERVAL": "600"}
    server = ServerProcess(log_dir, tmp_path / "monitoring.db", env)
    try:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenant = await new_tenant(channel, data.WORKSPACE)
            await seed_apps(tenant)
            await _until(lambda: proxy.in_flight == 0)  # the start-up tick is done
            proxy.mode = "slow"
            request = pb.GetAppMetricsRequest(workspace_id=data.WORKSPACE, app_id=data.FULL, period=pb.PERIOD_1H)
            call = asyncio.ensure_future(tenant.monitoring.GetAppMetrics(request, metadata=tenant.auth))
            # every request of the call (its range queries, in RANGE_BATCHES requests) is held by the proxy
            await _until(lambda: proxy.in_flight == RANGE_BATCHES)
            server.popen.send_signal(signal.SIGTERM)
            reply = await call
            assert reply.memory.values
        assert await asyncio.to_thread(server.popen.wait, 15) == 0
    finally:
        server.stop()
        await proxy.close()
