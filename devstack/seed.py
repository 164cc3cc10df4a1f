"""Seeds the demo workspace through the real PlatformService: apps, deploys, builds, an API key and
short alert holds so the demo shows an alert within minutes."""

from __future__ import annotations

import time
from collections.abc import Sequence

import grpc
from google.protobuf import timestamp_pb2

from devstack.workload import DemoApp
from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc, platform_pb2_grpc
from dooor.monitoring.v1 import platform_pb2 as ppb

_HOUR_NS = 3600 * 10**9


def _ts(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // 10**9, nanos=ns % 10**9)


async def _key_works(channel: grpc.aio.Channel, workspace_id: str, key: str) -> bool:
    stub = monitoring_pb2_grpc.MonitoringServiceStub(channel)
    try:
        await stub.ListAlerts(
            pb.ListAlertsRequest(workspace_id=workspace_id, limit=1), metadata=(("authorization", f"Bearer {key}"),)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            return False
        raise
    return True


async def _history(platform: platform_pb2_grpc.PlatformServiceStub, workspace_id: str, app: DemoApp, admin) -> None:
    """A deploy of every app at each start (the demo 'deploys' its workload), plus builds."""
    now = time.time_ns()
    ok, failed = pb.OPERATION_STATUS_SUCCEEDED, pb.OPERATION_STATUS_FAILED
    run = str(now // 10**9)
    builds = [(f"bld_{run}_a", failed, now - 2 * _HOUR_NS // 3), (f"bld_{run}_b", ok, now - _HOUR_NS // 2)]
    for build_id, status, start in builds[1:] if not app.misbehaves else builds:
        build = ppb.Build(
            id=build_id, app_id=app.id, status=status, start_time=_ts(start), finish_time=_ts(start + 90 * 10**9)
        )
        await platform.RecordBuild(ppb.RecordBuildRequest(workspace_id=workspace_id, build=build), metadata=admin)
    deploy = ppb.Deploy(id=f"dep_{run}", app_id=app.id, status=ok, start_time=_ts(now), finish_time=_ts(now))
    await platform.RecordDeploy(ppb.RecordDeployRequest(workspace_id=workspace_id, deploy=deploy), metadata=admin)


async def demo_workspace(grpc_addr: str, state: dict[str, str], apps: Sequence[DemoApp], hold_s: int) -> str:
    """Creates (or refreshes) the demo workspace; returns the API key, reusing a stored one that still works."""
    admin = (("authorization", f"Bearer {state['admin_token']}"),)
    workspace_id = state["workspace_id"]
    async with grpc.aio.insecure_channel(grpc_addr) as channel:
        platform = platform_pb2_grpc.PlatformServiceStub(channel)
        await platform.CreateWorkspace(
            ppb.CreateWorkspaceRequest(workspace_id=workspace_id, name="Demo"), metadata=admin
        )
        for app in apps:
            record = ppb.App(
                id=app.id,
                workspace_id=workspace_id,
                name=app.name,
                service_name=app.name,
                memory_limit_mib=1024,
                cpu_limit_cores=1,
            )
            await platform.UpsertApp(ppb.UpsertAppRequest(app=record), metadata=admin)
            await _history(platform, workspace_id, app, admin)
        await _demo_rules(platform, workspace_id, admin, hold_s)
        if state.get("key") and await _key_works(channel, workspace_id, state["key"]):
            return state["key"]
        created = await platform.CreateApiKey(
            ppb.CreateApiKeyRequest(workspace_id=workspace_id, name="demo"), metadata=admin
        )
        return created.secret


async def _demo_rules(platform: platform_pb2_grpc.PlatformServiceStub, workspace_id: str, admin, hold_s: int) -> None:
    """Short holds for the demo workspace, so a misbehaving phase raises an alert within a minute or so."""
    existing = await platform.ListAlertRules(ppb.ListAlertRulesRequest(workspace_id=workspace_id), metadata=admin)
    if any(rule.workspace_id == workspace_id for rule in existing.rules):
        return
    demo = {
        pb.ALERT_TYPE_HIGH_ERROR_RATE: (5.0, 20.0, 2.0),
        pb.ALERT_TYPE_HIGH_MEMORY: (80.0, 95.0, 70.0),
        pb.ALERT_TYPE_HIGH_LATENCY: (300.0, 1000.0, 200.0),
    }
    for alert_type, (warning, critical, recovery) in demo.items():
        rule = ppb.AlertRule(
            workspace_id=workspace_id,
            type=alert_type,
            warning_threshold=warning,
            critical_threshold=critical,
            recovery_threshold=recovery,
            hold_seconds=hold_s,
        )
        await platform.CreateAlertRule(ppb.CreateAlertRuleRequest(rule=rule), metadata=admin)
