"""Bad input: INVALID_ARGUMENT naming the field and what is allowed, with google.rpc.BadRequest details."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import validation
from server.errors import InvalidArgument
from testing.platform import Tenant
from testing.status import detail

pytestmark = pytest.mark.timeout(60)

HOSTILE_IDS = ['x"} or up{app_id=~".+', "a\nb", "a\\b", "", "-leading-dash", "a" * 65, "app id", "ü", "a/b", "a.b"]


@pytest.mark.parametrize("value", HOSTILE_IDS)
def test_ids_outside_the_pattern_are_refused(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.require_id("app_id", value)
    assert caught.value.field == "app_id"


@pytest.mark.parametrize("value", ["app_01hx", "ws_1", "A", "a-b_c", "a" * 64])
def test_ids_inside_the_pattern_pass(value: str) -> None:
    assert validation.require_id("app_id", value) == value


async def _invalid(call) -> tuple[str, error_details_pb2.BadRequest]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return caught.value.details(), detail(caught.value, error_details_pb2.BadRequest)


async def test_bad_app_id_names_the_field(tenant: Tenant) -> None:
    request = pb.GetAppMetricsRequest(workspace_id=tenant.workspace_id, app_id='x"} or up{app_id=~".+')
    message, bad = await _invalid(tenant.monitoring.GetAppMetrics(request, metadata=tenant.auth))
    assert message.startswith("app_id:")
    assert bad.field_violations[0].field == "app_id"


async def test_unknown_period_lists_the_allowed_values(tenant: Tenant) -> None:
    app = await tenant.add_app()
    request = pb.GetAppMetricsRequest(workspace_id=tenant.workspace_id, app_id=app.id, period=99)  # type: ignore[arg-type]
    message, bad = await _invalid(tenant.monitoring.GetAppMetrics(request, metadata=tenant.auth))
    assert "period" in message and "1h, 6h, 24h, 7d, 30d" in message
    assert bad.field_violations[0].field == "period"


async def test_unknown_severity_lists_the_allowed_values(tenant: Tenant) -> None:
    app = await tenant.add_app()
    request = pb.ListAppLogsRequest(workspace_id=tenant.workspace_id, app_id=app.id, severity=42)  # type: ignore[arg-type]
    message, _ = await _invalid(tenant.monitoring.ListAppLogs(request, metadata=tenant.auth))
    assert "severity" in message and "DEBUG, INFO, WARNING, ERROR, CRITICAL" in message


@pytest.mark.parametrize("limit", [-1, 501])
async def test_alert_limit_out_of_range(tenant: Tenant, limit: int) -> None:
    request = pb.ListAlertsRequest(workspace_id=tenant.workspace_id, limit=limit)
    message, bad = await _invalid(tenant.monitoring.ListAlerts(request, metadata=tenant.auth))
    assert bad.field_violations[0].field == "limit" and "500" in message


async def test_bad_alert_id_on_resolve(tenant: Tenant) -> None:
    request = pb.ResolveAlertRequest(workspace_id=tenant.workspace_id, alert_id="../../etc")
    _, bad = await _invalid(tenant.monitoring.ResolveAlert(request, metadata=tenant.auth))
    assert bad.field_violations[0].field == "alert_id"
