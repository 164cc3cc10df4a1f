"""PlatformService on a separate admin listener (MONITORING_ADMIN_ADDR): the tenants' port does not offer it at
all, the admin port offers nothing else, and each port's health and reflection speak only of what it serves."""

from __future__ import annotations

import os
import pathlib
import subprocess
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc, platform_pb2_grpc
from dooor.monitoring.v1 import platform_pb2 as ppb
from server import config
from testing.platform import unique_id
from testing.procs import ADMIN_TOKEN, BIN, ServerProcess, free_port, running_server

pytestmark = pytest.mark.timeout(60)

ADMIN = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
MONITORING = "dooor.monitoring.v1.MonitoringService"
PLATFORM = "dooor.monitoring.v1.PlatformService"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    folder = tmp_path_factory.mktemp("admin-listener")
    admin_addr = f"127.0.0.1:{free_port()}"
    with running_server(folder, folder / "monitoring.db", {"MONITORING_ADMIN_ADDR": admin_addr}) as server:
        yield server, admin_addr


def _health(addr: str, service: str) -> int | grpc.StatusCode:
    with grpc.insecure_channel(addr) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        except grpc.RpcError as error:
            return error.code()
        return reply.status


def test_the_tenants_port_does_not_offer_platform_service(split: tuple[ServerProcess, str]) -> None:
    server, _ = split
    with grpc.insecure_channel(server.addr) as channel, pytest.raises(grpc.RpcError) as refused:
        platform_pb2_grpc.PlatformServiceStub(channel).CreateWorkspace(
            ppb.CreateWorkspaceRequest(workspace_id=unique_id("ws")), metadata=ADMIN, timeout=5
        )
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_the_admin_port_serves_platform_service_and_nothing_else(split: tuple[ServerProcess, str]) -> None:
    server, admin_addr = split
    ws = unique_id("ws")
    with grpc.insecure_channel(admin_addr) as channel:
        platform = platform_pb2_grpc.PlatformServiceStub(channel)
        platform.CreateWorkspace(ppb.CreateWorkspaceRequest(workspace_id=ws), metadata=ADMIN, timeout=5)
        secret = platform.CreateApiKey(ppb.CreateApiKeyRequest(workspace_id=ws), metadata=ADMIN, timeout=5).secret
        with pytest.raises(grpc.RpcError) as refused:
            monitoring_pb2_grpc.MonitoringServiceStub(channel).ListAlerts(
                pb.ListAlertsRequest(workspace_id=ws), metadata=(("authorization", f"Bearer {secret}"),), timeout=5
            )
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # The key made on the admin port works on the tenants' port: one store, one process.
    with grpc.insecure_channel(server.addr) as channel:
        reply = monitoring_pb2_grpc.MonitoringServiceStub(channel).ListAlerts(
            pb.ListAlertsRequest(workspace_id=ws), metadata=(("authorization", f"Bearer {secret}"),), timeout=5
        )
    assert list(reply.alerts) == []


def test_each_port_reports_health_for_what_it_serves(split: tuple[ServerProcess, str]) -> None:
    server, admin_addr = split
    serving, unknown = health_pb2.HealthCheckResponse.SERVING, grpc.StatusCode.NOT_FOUND
    assert [_health(server.addr, name) for name in ("", MONITORING, PLATFORM)] == [serving, serving, unknown]
    assert [_health(admin_addr, name) for name in ("", MONITORING, PLATFORM)] == [serving, unknown, serving]


def test_grpcurl_lists_only_the_ports_own_services(split: tuple[ServerProcess, str]) -> None:
    server, admin_addr = split

    def listed(addr: str) -> set[str]:
        done = subprocess.run(
            [str(BIN / "grpcurl"), "-plaintext", addr, "list"], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return set(done.stdout.split())

    assert MONITORING in listed(server.addr) and PLATFORM not in listed(server.addr)
    assert PLATFORM in listed(admin_addr) and MONITORING not in listed(admin_addr)


def test_monitoring_admin_finds_the_admin_listener_from_the_environment(split: tuple[ServerProcess, str]) -> None:
    server, admin_addr = split
    env = {
        **os.environ,
        "MONITORING_GRPC_ADDR": server.addr,
        "MONITORING_ADMIN_ADDR": admin_addr,
        "MONITORING_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    done = subprocess.run(
        [str(BIN / "monitoring-admin"), "create-workspace", unique_id("ws")],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"MONITORING_GRPC_ADDR": "127.0.0.1:7000", "MONITORING_ADMIN_ADDR": "127.0.0.1:7000"}, "admin_addr"),
        (
            {"MONITORING_WORKERS": "2", "MONITORING_GRPC_ADDR": "127.0.0.1:7000", "MONITORING_ADMIN_ADDR": "[::]:0"},
            "MONITORING_ADMIN_ADDR",
        ),
    ],
)
def test_admin_addr_settings_that_cannot_work_are_refused(environ: dict[str, str], named: str) -> None:
    with pytest.raises(config.ConfigError, match=named):
        config.load([], environ)


def test_without_an_admin_addr_both_services_share_the_port(tmp_path: pathlib.Path) -> None:
    with running_server(tmp_path, tmp_path / "monitoring.db") as server:
        assert _health(server.addr, PLATFORM) == health_pb2.HealthCheckResponse.SERVING
        assert _health(server.addr, MONITORING) == health_pb2.HealthCheckResponse.SERVING
