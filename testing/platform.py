"""Seeding through the real PlatformService: workspaces, apps, deploys, builds, keys."""

from __future__ import annotations

import dataclasses
import itertools

import grpc
from google.protobuf import timestamp_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc, platform_pb2_grpc
from dooor.monitoring.v1 import platform_pb2 as ppb
from testing.procs import ADMIN_TOKEN

_counter = itertools.count(1)
ADMIN = (("authorization", f"Bearer {ADMIN_TOKEN}"),)


def unique_id(prefix: str) -> str:
    return f"{prefix}_{next(_counter):04d}"


def bearer(secret: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {secret}"),)


def ts(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // 10**9, nanos=ns % 10**9)


@dataclasses.dataclass
class Tenant:
    """A workspace with one key, seen through both services."""

    workspace_id: str
    key: str
    platform: platform_pb2_grpc.PlatformServiceStub
    monitoring: monitoring_pb2_grpc.MonitoringServiceStub

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.key)

    async def add_app(self, app_id: str | None = None, **fields: object) -> ppb.App:
        app = ppb.App(
            id=app_id or unique_id("app"),
            workspace_id=self.workspace_id,
            name=str(fields.pop("name", "my-api")),
            service_name=str(fields.pop("service_name", "my-api")),
            memory_limit_mib=float(fields.pop("memory_limit_mib", 512)),  # type: ignore[arg-type]
            cpu_limit_cores=float(fields.pop("cpu_limit_cores", 1)),  # type: ignore[arg-type]
        )
        return await self.platform.UpsertApp(ppb.UpsertAppRequest(app=app), metadata=ADMIN)

    async def record(self, kind: str, app_id: str, op_id: str, status: pb.OperationStatus.ValueType, start_ns: int):
        op = {"id": op_id, "app_id": app_id, "status": status, "start_time": ts(start_ns)}
        if kind == "deploy":
            return await self.platform.RecordDeploy(
                ppb.RecordDeployRequest(workspace_id=self.workspace_id, deploy=ppb.Deploy(**op)), metadata=ADMIN
            )
        return await self.platform.RecordBuild(
            ppb.RecordBuildRequest(workspace_id=self.workspace_id, build=ppb.Build(**op)), metadata=ADMIN
        )


async def new_tenant(
    channel: grpc.aio.Channel, workspace_id: str | None = None, *, admin: grpc.aio.Channel | None = None
) -> Tenant:
    """A new workspace and key; ``admin`` is the channel to PlatformService when it has a listener of its own."""
    platform = platform_pb2_grpc.PlatformServiceStub(admin or channel)
    workspace_id = workspace_id or unique_id("ws")
    await platform.CreateWorkspace(ppb.CreateWorkspaceRequest(workspace_id=workspace_id), metadata=ADMIN)
    created = await platform.CreateApiKey(
        ppb.CreateApiKeyRequest(workspace_id=workspace_id, name="test"), metadata=ADMIN
    )
    return Tenant(workspace_id, created.secret, platform, monitoring_pb2_grpc.MonitoringServiceStub(channel))
