"""The server process: reflection through the real grpcurl, health, --help, durability, graceful stop."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import platform_pb2 as ppb
from testing.platform import ADMIN, new_tenant
from testing.procs import BIN, ServerProcess, running_server

pytestmark = pytest.mark.timeout(90)


def grpcurl(*args: str, metadata: str | None = None) -> subprocess.CompletedProcess[str]:
    header = ["-H", f"authorization: {metadata}"] if metadata else []
    return subprocess.run(
        [str(BIN / "grpcurl"), "-plaintext", *header, *args], capture_output=True, text=True, timeout=30
    )


def test_grpcurl_lists_and_describes_through_reflection(server: ServerProcess) -> None:
    listed = grpcurl(server.addr, "list")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) >= {
        "dooor.monitoring.v1.MonitoringService",
        "dooor.monitoring.v1.PlatformService",
        "grpc.health.v1.Health",
    }
    described = grpcurl(server.addr, "describe", "dooor.monitoring.v1.MonitoringService")
    assert described.returncode == 0, described.stderr
    for rpc_name in ("GetAppMetrics", "GetAppHealth", "ListAppLogs", "StreamAppLogs", "ListAlerts", "ResolveAlert"):
        assert f"rpc {rpc_name} " in described.stdout
    assert "returns ( stream .dooor.monitoring.v1.StreamAppLogsResponse )" in described.stdout


async def test_grpcurl_invokes_with_json_and_a_key(server: ServerProcess, channel: grpc.aio.Channel) -> None:
    tenant = await new_tenant(channel)
    method = "dooor.monitoring.v1.MonitoringService/ListAlerts"
    body = json.dumps({"workspace_id": tenant.workspace_id, "resolved": False})
    ok = grpcurl("-d", body, server.addr, method, metadata=f"Bearer {tenant.key}")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {}
    refused = grpcurl("-d", body, server.addr, method)
    assert refused.returncode != 0
    assert "Unauthenticated" in refused.stderr
    # Rich details are printable because google.rpc types are served by reflection too.
    bad = grpcurl("-d", json.dumps({"workspace_id": "a b"}), server.addr, method, metadata=f"Bearer {tenant.key}")
    assert "InvalidArgument" in bad.stderr
    assert "workspace_id" in bad.stderr


def test_grpcurl_health_check(server: ServerProcess) -> None:
    checked = grpcurl(server.addr, "grpc.health.v1.Health/Check")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout) == {"status": "SERVING"}


def test_help_lists_every_setting_with_its_environment_variable() -> None:
    shown = subprocess.run([str(BIN / "monitoring-server"), "--help"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0
    for env in (
        "MONITORING_GRPC_ADDR",
        "MONITORING_DB",
        "MONITORING_PROMETHEUS_URL",
        "MONITORING_LOKI_URL",
        "MONITORING_ADMIN_TOKEN",
    ):
        assert env in shown.stdout


async def _seed(addr: str) -> tuple[str, str, str]:
    async with grpc.aio.insecure_channel(addr) as ch:
        tenant = await new_tenant(ch)
        app = await tenant.add_app(name="durable-api")
        return tenant.workspace_id, tenant.key, app.id


async def _apps_seen(addr: str, workspace_id: str, key: str) -> list[str]:
    async with grpc.aio.insecure_channel(addr) as ch:
        tenant = await new_tenant(ch)  # the platform side
        listed = await tenant.platform.ListApps(ppb.ListAppsRequest(workspace_id=workspace_id), metadata=ADMIN)
        # and the key still authenticates against the stored hash
        await tenant.monitoring.ListAlerts(
            pb.ListAlertsRequest(workspace_id=workspace_id), metadata=(("authorization", f"Bearer {key}"),)
        )
        return [a.name for a in listed.apps]


async def test_acknowledged_writes_survive_kill_9(log_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    db = tmp_path / "durable.db"
    with running_server(log_dir, db) as first:
        workspace_id, key, _ = await _seed(first.addr)
        first.kill()
    with running_server(log_dir, db) as second:
        assert await _apps_seen(second.addr, workspace_id, key) == ["durable-api"]


async def test_sigterm_drains_and_exits_cleanly(log_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    with running_server(log_dir, tmp_path / "stop.db") as process:
        async with grpc.aio.insecure_channel(process.addr) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            assert (
                await health.Check(health_pb2.HealthCheckRequest())
            ).status == health_pb2.HealthCheckResponse.SERVING
        assert process.stop(signal.SIGTERM) == 0
        assert "stopped" in process.log()
