"""One real Prometheus playing the timeline of data.py, and TWO real servers on one database file: every alert
test runs with a second replica beside the evaluator lease's holder."""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import platform_pb2 as ppb
from testing.platform import ADMIN, Tenant, new_tenant
from testing.procs import ServerProcess, running_server
from testing.prometheus import PrometheusProcess, running_prometheus
from tests.alerts import data

EVAL_INTERVAL_S = 0.5
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Stage:
    timeline: data.Timeline
    prometheus: PrometheusProcess
    servers: tuple[ServerProcess, ServerProcess]
    config: pathlib.Path

    def at(self, offset: float) -> float:
        """Unix seconds of a timeline offset."""
        return self.timeline.t0 + offset


@pytest.fixture(scope="session")
def stage(tmp_path_factory: pytest.TempPathFactory, log_dir: pathlib.Path) -> Iterator[Stage]:
    timeline = data.Timeline(int(time.time()))
    work = tmp_path_factory.mktemp("alerts")
    config = work / "monitoring.toml"
    config.write_text(data.CONFIG)
    db = work / "monitoring.db"
    with running_prometheus(work, timeline.series()) as prometheus:
        env = {
            "MONITORING_PROMETHEUS_URL": prometheus.url,
            "MONITORING_EVAL_INTERVAL": str(EVAL_INTERVAL_S),
            "MONITORING_CONFIG_FILE": str(config),
        }
        # Separate log directories: the no-double-fire test reads which replica evaluated.
        dirs = [log_dir / "alerts-a", log_dir / "alerts-b"]
        for directory in dirs:
            directory.mkdir(exist_ok=True)
        with running_server(dirs[0], db, env) as first, running_server(dirs[1], db, env) as second:
            yield Stage(timeline, prometheus, (first, second), config)


@pytest.fixture(scope="session")
async def alerts_channel(stage: Stage) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(stage.servers[0].addr) as channel:
        yield channel


def rule(workspace_id: str, alert_type: str, app_id: str = "", hold: int = data.HOLD) -> ppb.AlertRule:
    warning, critical, recovery = data.THRESHOLDS[alert_type]
    return ppb.AlertRule(
        workspace_id=workspace_id,
        app_id=app_id,
        type=pb.AlertType.Value("ALERT_TYPE_" + alert_type.upper()),
        warning_threshold=warning,
        critical_threshold=critical,
        recovery_threshold=recovery,
        hold_seconds=hold,
    )


@pytest.fixture(scope="session")
async def watched(stage: Stage, alerts_channel: grpc.aio.Channel) -> Tenant:
    """The alerts workspace, its apps and its rules: memory by a workspace rule, the rest by app rules."""
    tenant = await new_tenant(alerts_channel, data.WORKSPACE)
    apps = (*data.CYCLE_APPS.values(), data.SPIKE, data.LATCH, data.MANUAL, data.STEADY)
    for app in apps:
        await tenant.add_app(
            app, name=f"{app}-svc", memory_limit_mib=data.MEMORY_LIMIT_MIB, cpu_limit_cores=data.CPU_LIMIT_CORES
        )
    create = tenant.platform.CreateAlertRule
    await create(ppb.CreateAlertRuleRequest(rule=rule(data.WORKSPACE, "high_memory")), metadata=ADMIN)
    for alert_type in ("high_cpu", "high_error_rate", "high_latency"):
        app_rule = rule(data.WORKSPACE, alert_type, data.CYCLE_APPS[alert_type])
        await create(ppb.CreateAlertRuleRequest(rule=app_rule), metadata=ADMIN)
    assert time.time() < stage.at(data.BREACH), "setup took longer than the timeline allows"
    return tenant


async def list_alerts(tenant: Tenant, app_id: str = "", **filters: object) -> list[pb.Alert]:
    request = pb.ListAlertsRequest(workspace_id=tenant.workspace_id, app_id=app_id, **filters)  # type: ignore[arg-type]
    return list((await tenant.monitoring.ListAlerts(request, metadata=tenant.auth)).alerts)


async def poll(what: str, probe: Callable[[], Awaitable[T | None]], *, until: float, interval: float = 0.2) -> T:
    """``probe()`` until it returns something other than None, or fail at Unix time ``until``."""
    while True:
        found = await probe()
        if found is not None:
            return found
        if time.time() > until:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def ticked_after(tenant: Tenant, app_id: str, moment: float) -> pb.GetAppHealthResponse:
    """Until a tick that started after Unix time ``moment`` has evaluated the app (seen in its health)."""

    async def probe() -> pb.GetAppHealthResponse | None:
        request = pb.GetAppHealthRequest(workspace_id=tenant.workspace_id, app_id=app_id)
        reply = await tenant.monitoring.GetAppHealth(request, metadata=tenant.auth)
        return reply if reply.HasField("last_checked_at") and seconds(reply.last_checked_at) > moment else None

    return await poll(f"a tick after {moment:.1f} for {app_id}", probe, until=max(moment, time.time()) + 15)


def seconds(ts: object) -> float:
    return ts.seconds + ts.nanos / 1e9  # type: ignore[attr-defined]
