"""GetAppMetrics' issue 17 parameters through the whole stack: the real server (and its edge) over the session's
Prometheus. Values are those of tests/metrics/test_metrics_extras.py, which checks them point by point; here:
the wiring, the errors' status and field, the REST forms (comma lists, durations) and the JSON shape.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing import metrics_data as data
from testing.edge import EdgeProcess, running_edge
from testing.platform import Tenant, new_tenant
from testing.procs import ServerProcess
from testing.status import detail
from tests.metrics.conftest import Backfilled
from tests.metrics.test_metrics_extras import PERCENTILES, close, expected_percentile

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
async def latency_tenant(metrics_channel: grpc.aio.Channel) -> Tenant:
    tenant = await new_tenant(metrics_channel, data.LATENCY_WORKSPACE)
    await tenant.add_app(data.LATENCY, service_name="lat-svc")
    return tenant


@pytest.fixture(scope="module")
def edge(metrics_server: ServerProcess, log_dir: pathlib.Path) -> Iterator[EdgeProcess]:
    with running_edge(log_dir, metrics_server.addr) as process:
        yield process


@pytest.fixture
async def http(edge: EdgeProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=edge.url, timeout=10.0) as client:
        yield client


async def call(tenant: Tenant, **fields: object) -> pb.GetAppMetricsResponse:
    request = pb.GetAppMetricsRequest(workspace_id=tenant.workspace_id, app_id=data.LATENCY, **fields)  # type: ignore[arg-type]
    return await tenant.monitoring.GetAppMetrics(request, metadata=tenant.auth)


async def test_percentiles_status_classes_and_deploys_over_grpc(latency_tenant: Tenant, backfilled: Backfilled) -> None:
    await latency_tenant.record(
        "deploy", data.LATENCY, "dep_lat", pb.OPERATION_STATUS_SUCCEEDED, (backfilled.now - 600) * 10**9
    )
    reply = await call(latency_tenant, period=pb.PERIOD_1H, include=["latency_percentiles,status_classes", "deploys"])
    model = data.latency_app(backfilled.now)[0]
    for name, q in PERCENTILES.items():
        series = getattr(reply, name)
        assert len(series.values) >= 55
        for label, value in zip(series.labels, series.values, strict=True):
            expected = expected_percentile(model, q, label.seconds)
            assert expected is not None and close(value, expected)
    assert len(reply.requests_4xx.values) == len(reply.request_count.values) >= 55
    assert [m.id for m in reply.deploys.markers] == ["dep_lat"]
    plain = await call(latency_tenant, period=pb.PERIOD_1H)
    assert not plain.HasField("latency_p50") and not plain.HasField("deploys")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"include": ["p99"]}, "include"),
        ({"step": "60s"}, "start_time"),
        ({"start_time": timestamp_pb2.Timestamp(seconds=3600), "step": "7s"}, "step"),
        ({"start_time": timestamp_pb2.Timestamp(seconds=3600), "step": "1.5m"}, "step"),
        ({"start_time": timestamp_pb2.Timestamp(seconds=30), "step": "1m"}, "start_time"),
    ],
)
async def test_bad_values_are_invalid_argument_naming_the_field_over_grpc(
    latency_tenant: Tenant, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(latency_tenant, **fields)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field}: ")
    assert [v.field for v in detail(caught.value, error_details_pb2.BadRequest).field_violations] == [field]


async def test_the_rest_forms_of_include_and_a_custom_window(
    http: httpx.AsyncClient, latency_tenant: Tenant, backfilled: Backfilled
) -> None:
    path = f"/api/v1/workspaces/{data.LATENCY_WORKSPACE}/monitoring/apps/{data.LATENCY}/metrics"
    headers = {"authorization": f"Bearer {latency_tenant.key}"}
    end = backfilled.now // 300 * 300 - 300
    start = end - 7200
    start_text = timestamp_pb2.Timestamp(seconds=start).ToJsonString()
    end_text = timestamp_pb2.Timestamp(seconds=end).ToJsonString()
    query = f"include=latency_percentiles,status_classes&startTime={start_text}&endTime={end_text}&step=300s"
    answer = await http.get(f"{path}?{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "period" not in body and (body["startTime"], body["endTime"], body["step"]) == (start_text, end_text, "300s")
    assert body["latencyP95"]["unit"] == "ms" and len(body["latencyP95"]["labels"]) == 25
    assert body["latencyP95"]["labels"][0] == start_text and body["requests2xx"]["unit"] == "req"
    assert "deploys" not in body
    repeated = await http.get(
        f"{path}?include=latency_percentiles&include=status_classes&startTime={start_text}&endTime={end_text}&step=300s",
        headers=headers,
    )
    assert repeated.json() == body
    plain = (await http.get(f"{path}?period=1h", headers=headers)).json()
    assert {"latencyP50", "requests2xx", "deploys", "startTime"}.isdisjoint(plain) and plain["period"] == "1h"
    minutes = await http.get(f"{path}?startTime={start_text}&endTime={end_text}&step=5m", headers=headers)
    assert minutes.status_code == 200 and minutes.json()["step"] == "300s"
    assert minutes.json()["instanceCount"] == body["instanceCount"] and len(body["instanceCount"]["values"]) == 25
    bad = await http.get(f"{path}?startTime={start_text}&step=5min", headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("step: expected a duration")
    off_grid = timestamp_pb2.Timestamp(seconds=start + 60).ToJsonString()
    misaligned = await http.get(f"{path}?startTime={off_grid}&step=300s", headers=headers)
    assert misaligned.status_code == 400 and misaligned.json()["error"]["message"].startswith("start_time: ")
