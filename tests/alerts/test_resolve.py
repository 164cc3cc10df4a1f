"""ResolveAlert and ListAlerts over alerts the engine raised (mem_manual is in breach all along)."""

from __future__ import annotations

import time

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc
from testing.platform import Tenant, new_tenant
from tests.alerts import data
from tests.alerts.conftest import Stage, list_alerts, poll, seconds

pytestmark = pytest.mark.timeout(60)


async def open_manual_alert(stage: Stage, watched: Tenant) -> pb.Alert:
    async def probe() -> pb.Alert | None:
        alerts = await list_alerts(watched, data.MANUAL)
        return alerts[0] if alerts else None

    # In breach since before the server started: fires on the first ticks after the rules exist.
    return await poll("mem_manual to fire", probe, until=time.time() + 15)


async def resolve(tenant: Tenant, alert_id: str, workspace_id: str | None = None) -> pb.Alert:
    request = pb.ResolveAlertRequest(workspace_id=workspace_id or tenant.workspace_id, alert_id=alert_id)
    return await tenant.monitoring.ResolveAlert(request, metadata=tenant.auth)


async def test_resolve_sets_resolved_keeps_history_and_is_idempotent(stage: Stage, watched: Tenant) -> None:
    alert = await open_manual_alert(stage, watched)
    assert not alert.resolved and not alert.HasField("resolved_at")

    resolved = await resolve(watched, alert.id)
    assert resolved.resolved and resolved.HasField("resolved_at")
    assert (resolved.id, resolved.app_id, resolved.app_name, resolved.type, resolved.severity, resolved.message) == (
        alert.id,
        alert.app_id,
        alert.app_name,
        alert.type,
        alert.severity,
        alert.message,
    )
    assert resolved.triggered_at == alert.triggered_at
    assert seconds(resolved.resolved_at) >= seconds(alert.triggered_at)

    # Again, through the other server: unchanged, resolvedAt included.
    other_channel = grpc.aio.insecure_channel(stage.servers[1].addr)
    async with other_channel:
        again = await monitoring_pb2_grpc.MonitoringServiceStub(other_channel).ResolveAlert(
            pb.ResolveAlertRequest(workspace_id=watched.workspace_id, alert_id=alert.id), metadata=watched.auth
        )
    assert again == resolved

    # Still in the history; out of the open list.
    assert alert.id in [a.id for a in await list_alerts(watched, data.MANUAL, resolved=True)]
    assert alert.id not in [a.id for a in await list_alerts(watched, resolved=False, limit=500)]
    listed = [a for a in await list_alerts(watched, data.MANUAL) if a.id == alert.id]
    assert listed == [resolved]


async def test_unknown_and_foreign_alerts_are_not_found(
    stage: Stage, watched: Tenant, alerts_channel: grpc.aio.Channel
) -> None:
    alert = await open_manual_alert(stage, watched)
    stranger = await new_tenant(alerts_channel)

    for tenant, alert_id in ((watched, "alr_00000000000000000000000000"), (stranger, alert.id)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await resolve(tenant, alert_id)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert alert_id in (caught.value.details() or "")

    # A key of another workspace asking about this workspace: refused before any lookup.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await resolve(stranger, alert.id, workspace_id=watched.workspace_id)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await resolve(watched, "alr_{bad}")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "alert_id" in (caught.value.details() or "")


async def test_list_alerts_filters_limit_and_app_names(
    stage: Stage, watched: Tenant, alerts_channel: grpc.aio.Channel
) -> None:
    await open_manual_alert(stage, watched)
    stranger = await new_tenant(alerts_channel)
    await stranger.add_app("foreign_app")
    everything = await list_alerts(watched, limit=500)
    assert everything, "the timeline has fired alerts by now"
    triggered = [seconds(a.triggered_at) for a in everything]
    assert triggered == sorted(triggered, reverse=True)  # newest first
    assert all(a.app_name == f"{a.app_id}-svc" for a in everything)

    assert await list_alerts(watched, limit=1) == everything[:1]
    assert {a.app_id for a in await list_alerts(watched, data.MANUAL)} == {data.MANUAL}
    assert all(a.resolved for a in await list_alerts(watched, resolved=True, limit=500))
    assert not any(a.resolved for a in await list_alerts(watched, resolved=False, limit=500))

    # An app of another workspace, or no app at all: the same empty answer.
    assert await list_alerts(watched, "foreign_app") == []
    assert await list_alerts(watched, "no_such_app") == []

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_alerts(watched, limit=501)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "limit" in (caught.value.details() or "")
