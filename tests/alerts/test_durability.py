"""Alerts, resolutions, latches and rules survive kill -9; a Prometheus outage neither fires nor resolves.

A small stage of its own: memory at 90 % of the limit all along for three apps, and a config file that
lowers the built-in memory rule's hold to 2 s (so the defaults path of ``[alerts.defaults]`` is used).
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc, platform_pb2_grpc
from dooor.monitoring.v1 import platform_pb2 as ppb
from testing.platform import ADMIN, Tenant, new_tenant
from testing.procs import ServerProcess, running_server
from testing.prometheus import PrometheusProcess, Series, running_prometheus
from tests.alerts.conftest import list_alerts, poll, ticked_after

pytestmark = pytest.mark.timeout(60)

MIB = 1048576
APPS = ("dur_latched", "dur_open", "out_open")
CONFIG = """
[alerts]
resolution_s = 1

[alerts.defaults.high_memory]
hold_seconds = 2
"""


def series(now: int) -> Iterator[Series]:
    times = range(now - 300, now + 300)
    for app in APPS:
        workspace = "ws_outage" if app.startswith("out") else "ws_durable"
        labels = {"workspace_id": workspace, "app_id": app}
        yield Series("up", {**labels, "instance": f"{app}-0"}, [(t, 1.0) for t in times])
        yield Series(
            "container_memory_working_set_bytes",
            {**labels, "pod": f"{app}-0", "container": "app"},
            [(t, 0.9 * 512 * MIB) for t in times],
        )


class Little:
    def __init__(self, work: pathlib.Path, prometheus: PrometheusProcess, log_dir: pathlib.Path):
        self.work = work
        self.prometheus = prometheus
        self.db = work / "monitoring.db"
        self.log_dir = log_dir
        self.config = work / "monitoring.toml"
        self.config.write_text(CONFIG)

    def env(self) -> dict[str, str]:
        return {
            "MONITORING_PROMETHEUS_URL": self.prometheus.url,
            "MONITORING_EVAL_INTERVAL": "0.5",
            "MONITORING_CONFIG_FILE": str(self.config),
        }


@pytest.fixture(scope="module")
def little(tmp_path_factory: pytest.TempPathFactory, log_dir: pathlib.Path) -> Iterator[Little]:
    work = tmp_path_factory.mktemp("durable")
    with running_prometheus(work, series(int(time.time()))) as prometheus:
        yield Little(work, prometheus, log_dir)


async def open_alert(tenant: Tenant, app_id: str) -> pb.Alert:
    async def probe() -> pb.Alert | None:
        alerts = await list_alerts(tenant, app_id, resolved=False)
        return alerts[0] if alerts else None

    return await poll(f"{app_id} to fire", probe, until=time.time() + 15)


async def test_alerts_resolutions_latches_and_rules_survive_kill_9(little: Little) -> None:
    first = ServerProcess(little.log_dir, little.db, little.env())
    try:
        async with grpc.aio.insecure_channel(first.addr) as channel:
            tenant = await new_tenant(channel, "ws_durable")
            for app in ("dur_latched", "dur_open"):
                await tenant.add_app(app)
            cpu_rule = ppb.AlertRule(
                workspace_id=tenant.workspace_id,
                app_id="dur_open",
                type=pb.ALERT_TYPE_HIGH_CPU,
                warning_threshold=50,
                critical_threshold=60,
                recovery_threshold=10,
                hold_seconds=30,
            )
            rule = await tenant.platform.CreateAlertRule(ppb.CreateAlertRuleRequest(rule=cpu_rule), metadata=ADMIN)
            rules = await tenant.platform.ListAlertRules(
                ppb.ListAlertRulesRequest(workspace_id=tenant.workspace_id), metadata=ADMIN
            )
            assert rules.rules[1].id == "default:high_memory" and rules.rules[1].hold_seconds == 2  # from the file
            latched = await open_alert(tenant, "dur_latched")
            fired = await open_alert(tenant, "dur_open")
            request = pb.ResolveAlertRequest(workspace_id=tenant.workspace_id, alert_id=latched.id)
            resolved = await tenant.monitoring.ResolveAlert(request, metadata=tenant.auth)
            first.kill()  # SIGKILL right after the answer: the write must already be on disk
    finally:
        first.kill()

    restarted_at = time.time()
    with running_server(little.log_dir, little.db, little.env()) as second:
        async with grpc.aio.insecure_channel(second.addr) as channel:
            tenant = Tenant(
                tenant.workspace_id,
                tenant.key,
                platform_pb2_grpc.PlatformServiceStub(channel),
                monitoring_pb2_grpc.MonitoringServiceStub(channel),
            )
            assert await list_alerts(tenant, "dur_latched") == [resolved]
            assert await list_alerts(tenant, "dur_open") == [fired]
            listed = await tenant.platform.ListAlertRules(
                ppb.ListAlertRulesRequest(workspace_id=tenant.workspace_id), metadata=ADMIN
            )
            assert rule in listed.rules
            # The breach goes on under the new process: the manual resolution still latches, and the
            # open alert is not fired a second time.
            await ticked_after(tenant, "dur_latched", restarted_at + 1)
            assert await list_alerts(tenant, "dur_latched") == [resolved]
            assert await list_alerts(tenant, "dur_open") == [fired]


async def test_a_prometheus_outage_neither_fires_nor_resolves_and_the_server_recovers(little: Little) -> None:
    with running_server(little.log_dir, little.db, little.env()) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenant = await new_tenant(channel, "ws_outage")
            await tenant.add_app("out_open")
            alert = await open_alert(tenant, "out_open")

            little.prometheus.kill()
            down_at = time.time()
            during = await ticked_after(tenant, "out_open", down_at + 1)
            assert during.status == pb.HEALTH_STATUS_UNKNOWN  # the evaluator saw the outage ...
            assert await list_alerts(tenant, "out_open") == [alert]  # ... and the alert was left alone
            overview = pb.GetWorkspaceOverviewRequest(workspace_id=tenant.workspace_id)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await tenant.monitoring.GetWorkspaceOverview(overview, metadata=tenant.auth)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

            # Prometheus back on the same port: the same server answers again, by itself.
            back = PrometheusProcess(little.work, little.prometheus.data_dir, port=little.prometheus.port)
            try:
                reply = await tenant.monitoring.GetWorkspaceOverview(overview, metadata=tenant.auth)
                assert (reply.total_apps, reply.active_apps) == (1, 1)
                await ticked_after(tenant, "out_open", time.time())
                assert await list_alerts(tenant, "out_open") == [alert]
            finally:
                back.stop()
