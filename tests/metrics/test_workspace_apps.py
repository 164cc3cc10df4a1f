"""ListWorkspaceApps: every app of the workspace by name, with the status GetAppHealth reports, through the real
evaluator; scoped to the key's workspace like every MonitoringService call."""

from __future__ import annotations

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing import metrics_data as data
from testing.platform import Tenant, new_tenant

pytestmark = pytest.mark.timeout(60)


async def workspace_apps(tenant: Tenant, workspace_id: str | None = None) -> pb.ListWorkspaceAppsResponse:
    request = pb.ListWorkspaceAppsRequest(workspace_id=workspace_id or tenant.workspace_id)
    return await tenant.monitoring.ListWorkspaceApps(request, metadata=tenant.auth)


async def test_every_app_by_name_with_the_status_getapphealth_reports(metrics_tenant: Tenant) -> None:
    reply = await workspace_apps(metrics_tenant)
    # Every seeded app (other tests of the session may register more in this workspace).
    seeded = {data.FULL, data.EMPTY, data.IDLE, *data.HEALTH_CASES}
    assert seeded <= {app.id for app in reply.apps}
    assert [(a.name, a.id) for a in reply.apps] == sorted((a.name, a.id) for a in reply.apps)
    for app in reply.apps:
        if app.id in seeded:
            assert app.service_name == f"{app.id}-svc"
        health = await metrics_tenant.monitoring.GetAppHealth(
            pb.GetAppHealthRequest(workspace_id=metrics_tenant.workspace_id, app_id=app.id),
            metadata=metrics_tenant.auth,
        )
        # The evaluator may write a newer snapshot between the two calls: compare when both saw the same tick.
        if health.last_checked_at == app.last_checked_at:
            assert app.status == health.status, app.id
        assert app.HasField("last_checked_at")
    statuses = {app.id: app.status for app in reply.apps}
    assert statuses["app_healthy"] == pb.HEALTH_STATUS_HEALTHY
    assert statuses["app_all_down"] == pb.HEALTH_STATUS_UNHEALTHY


async def test_a_new_workspace_lists_nothing_and_another_workspace_is_refused(
    metrics_channel: grpc.aio.Channel, metrics_tenant: Tenant
) -> None:
    other = await new_tenant(metrics_channel)
    assert list((await workspace_apps(other)).apps) == []
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await workspace_apps(other, metrics_tenant.workspace_id)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await workspace_apps(other, "not a valid id")
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (invalid.value.details() or "").startswith("workspace_id:")
