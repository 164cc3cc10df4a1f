"""GetAppHealth: each of the four statuses from data crafted to produce it, through the real evaluator."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing import metrics_data as data
from testing.metrics_data import DEPLOYED_NS
from testing.platform import Tenant
from tests.metrics.conftest import EVAL_INTERVAL_S, Backfilled, wait_evaluated

pytestmark = pytest.mark.timeout(60)

STATUS = {
    "healthy": pb.HEALTH_STATUS_HEALTHY,
    "degraded": pb.HEALTH_STATUS_DEGRADED,
    "unhealthy": pb.HEALTH_STATUS_UNHEALTHY,
    "unknown": pb.HEALTH_STATUS_UNKNOWN,
}


async def health(tenant: Tenant, app_id: str) -> pb.GetAppHealthResponse:
    request = pb.GetAppHealthRequest(workspace_id=tenant.workspace_id, app_id=app_id)
    return await tenant.monitoring.GetAppHealth(request, metadata=tenant.auth)


@pytest.mark.parametrize("app_id", list(data.HEALTH_CASES))
async def test_status_and_reasons_follow_the_data(metrics_tenant: Tenant, backfilled: Backfilled, app_id: str) -> None:
    traffic, status, reasons = data.HEALTH_CASES[app_id]
    reply = await health(metrics_tenant, app_id)

    assert reply.app_id == app_id
    assert pb.HealthStatus.Name(reply.status) == pb.HealthStatus.Name(STATUS[status])
    assert tuple(reply.reasons) == reasons
    checked = reply.last_checked_at.seconds + reply.last_checked_at.nanos / 1e9
    assert time.time() - 10 < checked <= time.time()

    if status == "unknown":
        for field in ("uptime", "instance_count", "error_rate", "avg_latency_ms"):
            assert not reply.HasField(field), field
        return
    assert traffic is not None
    assert reply.instance_count == traffic.up
    assert math.isclose(reply.error_rate, traffic.error_percent, abs_tol=1e-6)
    assert math.isclose(reply.avg_latency_ms, traffic.latency_ms, abs_tol=1e-6)
    if traffic.up:
        # Read from Prometheus's history at the default 10-minute resolution, then counted by the evaluator.
        elapsed = int(time.time()) - backfilled.now
        assert traffic.up_for_s - 600 <= reply.uptime - elapsed <= traffic.up_for_s + 60
    else:
        # The contract: a number whenever the app has data; 0 while no instance is up (was null: issue 14, item 4).
        assert reply.HasField("uptime")
        assert reply.uptime == 0


async def test_every_status_occurs(metrics_tenant: Tenant) -> None:
    seen = {pb.HealthStatus.Name((await health(metrics_tenant, app)).status) for app in data.HEALTH_CASES}
    assert seen == {pb.HealthStatus.Name(s) for s in STATUS.values()}


async def test_last_deployed_at_is_the_latest_successful_deploy(metrics_tenant: Tenant) -> None:
    reply = await health(metrics_tenant, "app_healthy")
    # dep_2 (later) failed; dep_1 succeeded.
    assert reply.last_deployed_at.seconds * 10**9 + reply.last_deployed_at.nanos == DEPLOYED_NS
    assert not (await health(metrics_tenant, "app_erroring")).HasField("last_deployed_at")


async def test_snapshots_are_refreshed_every_interval_and_uptime_grows(metrics_tenant: Tenant) -> None:
    first = await health(metrics_tenant, "app_healthy")
    deadline = time.monotonic() + 10
    later = first
    while later.last_checked_at == first.last_checked_at and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # a poll, not a flood (the key's rate limit is 50 calls/s)
        later = await health(metrics_tenant, "app_healthy")
    assert later.last_checked_at.ToNanoseconds() > first.last_checked_at.ToNanoseconds()
    assert later.last_checked_at.ToNanoseconds() - first.last_checked_at.ToNanoseconds() < 5 * EVAL_INTERVAL_S * 1e9
    # Uptime counts from a fixed start, so it grows exactly as the check time does (whole seconds).
    grown = later.last_checked_at.ToSeconds() - first.last_checked_at.ToSeconds()
    assert later.uptime - first.uptime in {grown - 1, grown, grown + 1}


async def test_an_app_registered_later_is_evaluated_by_a_following_tick(metrics_tenant: Tenant) -> None:
    registered_ns = time.time_ns()
    await metrics_tenant.add_app("app_late")
    await wait_evaluated(metrics_tenant, ["app_late"], registered_ns)
    reply = await health(metrics_tenant, "app_late")
    assert reply.status == pb.HEALTH_STATUS_UNKNOWN
    assert list(reply.reasons) == [data.HEALTH_CASES["app_new"][2][0]]


async def test_uptime_of_an_app_up_for_a_month_is_capped_at_the_history_lookback(
    metrics_tenant: Tenant, backfilled: Backfilled
) -> None:
    # app_full always has one instance up; the history read at the server's start looks back 7 days (one 10 min
    # step short at most), and the run has grown since. The server started after the backfill, at most `elapsed`
    # ago (the backfilled Prometheus is the session's, shared with tests that may run before these).
    reply = await health(metrics_tenant, data.FULL)
    elapsed = int(time.time()) - backfilled.now
    assert 7 * 86400 - 600 <= reply.uptime <= 7 * 86400 + elapsed + 60
