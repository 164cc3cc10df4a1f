"""GetWorkspaceOverview: exact numbers for a seeded workspace over the real Prometheus and the real store."""

from __future__ import annotations

import datetime
import pathlib
import time

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import config
from server.config import CostSettings
from server.metrics.overview import WorkspaceOverview, day_start_ns, estimate_cost, month_bounds
from server.metrics.prometheus import PrometheusClient
from server.metrics.promql import Queries
from server.store import open_sqlite
from server.store.records import App, HealthSnapshot
from testing.platform import Tenant, new_tenant
from tests.alerts import data
from tests.alerts.conftest import Stage, list_alerts, poll, ticked_after

pytestmark = pytest.mark.timeout(60)

S = 10**9
COST = CostSettings(instance_hour_usd=0.5, memory_gib_hour_usd=0.25, sample_interval_s=1)  # as in data.CONFIG
HEALTH_FIELDS = {
    pb.HEALTH_STATUS_HEALTHY: "healthy",
    pb.HEALTH_STATUS_DEGRADED: "degraded",
    pb.HEALTH_STATUS_UNHEALTHY: "unhealthy",
    pb.HEALTH_STATUS_UNKNOWN: "unknown",
}


@pytest.fixture(scope="module")
async def seeded(stage: Stage, alerts_channel: grpc.aio.Channel) -> tuple[Tenant, int]:
    """ws_overview: four apps, deploys and builds either side of 00:00 UTC today. Returns (tenant, today_ns)."""
    tenant = await new_tenant(alerts_channel, data.OVERVIEW_WORKSPACE)
    registered = time.time()
    for app in data.OVERVIEW_APPS:
        # Limits far above the usage: no alert joins the activity this test counts.
        await tenant.add_app(app, name=f"{app}-svc", memory_limit_mib=4096)
    # Every app has a snapshot before anything is counted: a tick landing between the overview and the
    # GetAppHealth calls that check it would otherwise move apps from "unknown" to their status.
    for app in data.OVERVIEW_APPS:
        await ticked_after(tenant, app, registered)
    today = day_start_ns(time.time_ns())
    ok, failed = pb.OPERATION_STATUS_SUCCEEDED, pb.OPERATION_STATUS_FAILED
    # Today (at midnight exactly, and after): 3 deploys (1 failed), 3 builds (2 failed).
    await tenant.record("deploy", "ov_a", "d_today_1", ok, today)
    await tenant.record("deploy", "ov_b", "d_today_2", failed, today + 1 * S)
    await tenant.record("deploy", "ov_a", "d_today_3", ok, today + 2 * S)
    await tenant.record("build", "ov_a", "b_today_1", failed, today + 3 * S)
    await tenant.record("build", "ov_c", "b_today_2", failed, today + 4 * S)
    await tenant.record("build", "ov_b", "b_today_3", ok, today + 5 * S)
    # Before midnight: 17 deploys and a failed build, one nanosecond to a few days before.
    await tenant.record("build", "ov_a", "b_old", failed, today - 1)
    for i in range(17):
        await tenant.record("deploy", "ov_d", f"d_old_{i:02d}", ok, today - 1 - i * 3600 * S)
    return tenant, today


async def overview(tenant: Tenant) -> pb.GetWorkspaceOverviewResponse:
    request = pb.GetWorkspaceOverviewRequest(workspace_id=tenant.workspace_id)
    return await tenant.monitoring.GetWorkspaceOverview(request, metadata=tenant.auth)


def expected_cost(stage: Stage, at: float) -> float:
    month_start, month_end = month_bounds(int(at * S))
    up_samples, byte_samples, up_now, bytes_now = stage.timeline.overview_usage(month_start, int(at))
    return estimate_cost(
        COST,
        up_samples=up_samples,
        memory_byte_samples=byte_samples,
        up_now=up_now,
        memory_bytes_now=bytes_now,
        hours_left=(month_end - at) / 3600,
    )


async def test_counts_health_and_cost_of_a_seeded_workspace(stage: Stage, seeded: tuple[Tenant, int]) -> None:
    tenant, _ = seeded
    before = time.time()
    reply = await overview(tenant)
    after = time.time()

    assert reply.total_apps == 4
    assert reply.active_apps == 2  # ov_a (2 instances up) and ov_b; ov_c's instance is down, ov_d has no series
    assert reply.total_deploys == 20
    assert reply.deploys_today == 3
    assert reply.failed_builds_today == 2

    # Health: each app's own latest snapshot, as GetAppHealth reports it; the four add up to totalApps.
    counts = dict.fromkeys(HEALTH_FIELDS.values(), 0)
    for app in data.OVERVIEW_APPS:
        request = pb.GetAppHealthRequest(workspace_id=tenant.workspace_id, app_id=app)
        counts[HEALTH_FIELDS[(await tenant.monitoring.GetAppHealth(request, metadata=tenant.auth)).status]] += 1
    summary = reply.app_health_summary
    assert {k: getattr(summary, k) for k in counts} == counts
    assert sum(counts.values()) == 4

    # Steady usage: month-to-date grows exactly as the hours left shrink, so the estimate holds still
    # (within a cent of rounding) over the call.
    assert reply.estimated_monthly_cost > 0
    assert min(expected_cost(stage, before), expected_cost(stage, after)) - 0.01 <= reply.estimated_monthly_cost
    assert reply.estimated_monthly_cost <= max(expected_cost(stage, before), expected_cost(stage, after)) + 0.01
    assert round(reply.estimated_monthly_cost, 2) == reply.estimated_monthly_cost


async def test_recent_activity_is_newest_first_limited_to_20_and_shaped_as_the_contract(
    seeded: tuple[Tenant, int],
) -> None:
    tenant, today = seeded
    activity = list((await overview(tenant)).recent_activity)
    assert len(activity) == 20  # of 24 deploys and builds
    stamps = [a.timestamp.ToNanoseconds() for a in activity]
    assert stamps == sorted(stamps, reverse=True)
    first = activity[0]
    assert (first.type, first.app_name, first.status) == (
        pb.ACTIVITY_TYPE_BUILD,
        "ov_b-svc",
        pb.OPERATION_STATUS_SUCCEEDED,
    )
    assert first.timestamp.ToNanoseconds() == today + 5 * S
    assert not first.HasField("message")
    kinds = [a.type for a in activity]
    assert kinds.count(pb.ACTIVITY_TYPE_BUILD) == 4 and kinds.count(pb.ACTIVITY_TYPE_DEPLOY) == 16


async def test_alert_events_appear_in_recent_activity(stage: Stage, watched: Tenant) -> None:
    async def consistent() -> list[pb.ActivityItem] | None:
        # A tick may fire or escalate between the two reads: then read both again.
        items = [a for a in (await overview(watched)).recent_activity if a.type == pb.ACTIVITY_TYPE_ALERT]
        alerts = await list_alerts(watched, limit=20)
        same = [(i.app_name, i.message, i.timestamp) for i in items] == [
            (a.app_name, a.message, a.triggered_at) for a in alerts
        ]
        return items if alerts and same else None

    items = await poll("alert events in the activity", consistent, until=time.time() + 20)
    assert all(not i.status for i in items)
    assert all(i.HasField("message") for i in items)


async def test_exact_cost_and_utc_day_at_a_fixed_moment(stage: Stage, seeded: tuple[Tenant, int]) -> None:
    """The capability in-process, on the same database file and Prometheus, with its clock pinned."""
    _, today = seeded
    store = await open_sqlite(str(stage.servers[0].db))
    prometheus = PrometheusClient(stage.prometheus.url, 10)
    try:
        # At midnight exactly: the deploy at 00:00:00 counts as today, the build 1 ns before does not.
        at_midnight = WorkspaceOverview(store, prometheus, Queries(), COST, stale_after_s=60, clock=lambda: today)
        reply = await at_midnight.overview(data.OVERVIEW_WORKSPACE)
        assert (reply.deploys_today, reply.failed_builds_today) == (3, 2)

        moment = (stage.timeline.t0 - 30) * S  # inside the data: samples every second up to here
        pinned = WorkspaceOverview(store, prometheus, Queries(), COST, stale_after_s=60, clock=lambda: moment)
        reply = await pinned.overview(data.OVERVIEW_WORKSPACE)
        assert reply.estimated_monthly_cost == expected_cost(stage, moment / S)
        assert reply.active_apps == 2

        # [cost.queries] replaces a query: counting every instance known, down ones included.
        counting = config.from_tables({"cost": {"queries": {"up_now": "count by ($by) (up{$ws})"}}})["queries"]
        every = WorkspaceOverview(store, prometheus, counting, COST, stale_after_s=60, clock=lambda: moment)
        assert (await every.overview(data.OVERVIEW_WORKSPACE)).active_apps == 3
    finally:
        await prometheus.close()
        await store.close()


async def test_a_stale_snapshot_counts_as_unknown_as_get_app_health_reports_it(
    stage: Stage, tmp_path: pathlib.Path
) -> None:
    store = await open_sqlite(str(tmp_path / "stale.db"))
    prometheus = PrometheusClient(stage.prometheus.url, 10)
    moment = time.time_ns()
    try:
        await store.create_workspace("ws_stale", "stale", 1)
        for app_id, checked_ns in (("app_fresh", moment - 30 * S), ("app_stale", moment - 3600 * S)):
            await store.upsert_app(App(app_id, "ws_stale", app_id, app_id, 512, 1, 1))
            await store.save_snapshots([HealthSnapshot(app_id, "ws_stale", checked_ns, "healthy", 1, 1, 0.0, 5.0, ())])
        overview = WorkspaceOverview(store, prometheus, Queries(), COST, stale_after_s=60, clock=lambda: moment)
        summary = (await overview.overview("ws_stale")).app_health_summary
        assert (summary.healthy, summary.unknown) == (1, 1)
    finally:
        await prometheus.close()
        await store.close()


async def test_prometheus_down_is_unavailable_not_a_guess(tenant: Tenant) -> None:
    # The session server's Prometheus URL points at a closed port.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await overview(tenant)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "prometheus" in (caught.value.details() or "")


def test_month_bounds_are_utc_calendar_months() -> None:
    at = datetime.datetime(2026, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
    start, end = month_bounds(int(at.timestamp()) * S)
    assert datetime.datetime.fromtimestamp(start, datetime.UTC) == datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    assert datetime.datetime.fromtimestamp(end, datetime.UTC) == datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)
