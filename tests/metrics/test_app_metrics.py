"""GetAppMetrics against a real Prometheus: exact points, counts and summaries for every period."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.errors import Unavailable
from server.metrics.app_metrics import RANGE_BATCHES, MetricsService
from server.metrics.prometheus import PrometheusClient
from server.metrics.promql import RANGE_TEMPLATES, Queries
from server.store.records import App
from testing import metrics_data as data
from testing.platform import Tenant
from testing.prometheus import CountingTransport
from testing.status import detail
from tests.metrics.conftest import Backfilled

pytestmark = pytest.mark.timeout(60)

# period, length, step, points per series when data covers the whole window
PERIODS = [
    (pb.PERIOD_1H, 3600, 60, 61),
    (pb.PERIOD_6H, 6 * 3600, 300, 73),
    (pb.PERIOD_24H, 86400, 3600, 25),
    (pb.PERIOD_7D, 7 * 86400, 3600, 169),
    (pb.PERIOD_30D, 30 * 86400, 21600, 121),
]
PERIOD_IDS = ["1h", "6h", "24h", "7d", "30d"]
# The units, written out rather than read from server/metrics/app_metrics.py: the test must not check the
# server against itself.
UNITS = {
    "cpu": "%",
    "memory": "MiB",
    "request_count": "req",
    "request_latency": "ms",
    "error_rate": "%",
    "instance_count": "instances",
}


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


async def metrics(tenant: Tenant, app_id: str, period: int = 0) -> pb.GetAppMetricsResponse:
    request = pb.GetAppMetricsRequest(workspace_id=tenant.workspace_id, app_id=app_id, period=period)  # type: ignore[arg-type]
    return await tenant.monitoring.GetAppMetrics(request, metadata=tenant.auth)


@pytest.mark.parametrize(("period", "length", "step", "points"), PERIODS, ids=PERIOD_IDS)
async def test_every_series_equals_the_backfilled_values(
    metrics_tenant: Tenant, backfilled: Backfilled, period: int, length: int, step: int, points: int
) -> None:
    before = int(time.time())
    reply = await metrics(metrics_tenant, data.FULL, period)
    after = int(time.time())

    assert (reply.app_id, reply.service_name, reply.period) == (data.FULL, f"{data.FULL}-svc", period)
    end = reply.cpu.labels[-1].seconds
    # The window ends at "now" rounded down to the step (now read by the server during the call).
    assert end in {before // step * step, after // step * step}
    times = list(range(end - length, end + 1, step))
    assert len(times) == points
    for field, unit in UNITS.items():
        series: pb.MetricSeries = getattr(reply, field)
        assert series.unit == unit
        assert [(ts.seconds, ts.nanos) for ts in series.labels] == [(t, 0) for t in times], field
        expected = [backfilled.model.expected(field, t, step) for t in times]
        got = list(series.values)
        assert len(got) == points, field
        assert all(close(g, e) for g, e in zip(got, expected, strict=True)), (field, got[:5], expected[:5])
        assert close(series.current, expected[-1]), field
        assert close(series.avg, math.fsum(expected) / len(expected)), field
        assert close(series.max, max(expected)), field


async def test_values_vary_so_summaries_are_meaningful(metrics_tenant: Tenant) -> None:
    # Guards the test data itself: identical current/avg/max would let a wrong summary pass.
    reply = await metrics(metrics_tenant, data.FULL, pb.PERIOD_7D)
    for field in UNITS:
        series = getattr(reply, field)
        assert len(set(series.values)) > 1, field
        assert series.avg < series.max, field


async def test_default_period_is_24h(metrics_tenant: Tenant) -> None:
    reply = await metrics(metrics_tenant, data.FULL)
    assert reply.period == pb.PERIOD_24H
    assert len(reply.memory.labels) == 25
    assert reply.memory.labels[1].seconds - reply.memory.labels[0].seconds == 3600


async def test_unknown_period_is_invalid_argument_listing_the_allowed_values(metrics_tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await metrics(metrics_tenant, data.FULL, 42)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "period" in caught.value.details()
    assert "1h, 6h, 24h, 7d, 30d" in caught.value.details()
    bad = detail(caught.value, error_details_pb2.BadRequest)
    assert [v.field for v in bad.field_violations] == ["period"]


@pytest.mark.parametrize("period", [p[0] for p in PERIODS], ids=PERIOD_IDS)
async def test_an_app_without_data_has_empty_series_and_no_summaries(metrics_tenant: Tenant, period: int) -> None:
    reply = await metrics(metrics_tenant, data.EMPTY, period)
    for field, unit in UNITS.items():
        series = getattr(reply, field)
        assert series.unit == unit
        assert list(series.labels) == [] and list(series.values) == [], field
        for summary in ("current", "avg", "max"):
            assert not series.HasField(summary), (field, summary)


async def test_no_traffic_drops_nan_points_but_keeps_real_zeros(metrics_tenant: Tenant) -> None:
    reply = await metrics(metrics_tenant, data.IDLE, pb.PERIOD_1H)
    # 0 requests / 0 requests is NaN in Prometheus: no point, no summary (not a 0, not a NaN in JSON).
    for field in ("request_latency", "error_rate"):
        series = getattr(reply, field)
        assert list(series.values) == [] and not series.HasField("current"), field
    # A flat counter is a real zero: 61 points of 0, and summaries that say 0 rather than "no data".
    assert list(reply.request_count.values) == [0.0] * 61
    assert reply.request_count.HasField("current") and reply.request_count.current == 0.0
    assert list(reply.instance_count.values) == [1.0] * 61
    assert list(reply.cpu.values) == [] and not reply.cpu.HasField("max")


async def test_another_workspace_with_the_same_app_id_is_not_counted(metrics_tenant: Tenant) -> None:
    # ws_neighbour has app_full too, at 1e12 bytes and one instance: a query without the workspace
    # matcher would add it to both series.
    reply = await metrics(metrics_tenant, data.FULL, pb.PERIOD_1H)
    assert reply.memory.max < 1024
    assert reply.instance_count.max == 2.0


@pytest.fixture
async def client(backfilled: Backfilled) -> AsyncIterator[PrometheusClient]:
    prometheus = PrometheusClient(backfilled.prometheus.url, 10.0)
    yield prometheus
    await prometheus.close()


def app(app_id: str, workspace_id: str = data.WORKSPACE) -> App:
    return App(app_id, workspace_id, app_id, f"{app_id}-svc", 512, 1, 0)


@pytest.mark.parametrize("batches", [1, 2, 3])
@pytest.mark.parametrize("app_id", [data.FULL, data.EMPTY, data.IDLE, data.ODD_IDS[2]])
async def test_batched_range_queries_answer_byte_for_byte_what_six_requests_do(
    client: PrometheusClient, backfilled: Backfilled, batches: int, app_id: str
) -> None:
    # Six requests (one template each, untagged) are the reference: what GetAppMetrics sent before batching.
    clock = lambda: backfilled.now * 10**9  # noqa: E731
    alone = MetricsService(client, Queries(), clock=clock, range_batches=6)
    batched = MetricsService(client, Queries(), clock=clock, range_batches=batches)
    for period, *_ in PERIODS:
        reference = await alone.app_metrics(app(app_id), period)  # type: ignore[arg-type]
        reply = await batched.app_metrics(app(app_id), period)  # type: ignore[arg-type]
        assert reply.SerializeToString() == reference.SerializeToString(), (app_id, period)
    if app_id == data.FULL:
        assert len(reference.cpu.values) == 121  # the last period (30d) compared real data


async def test_one_request_per_batch_shared_by_concurrent_calls_and_cached_until_the_next_step(
    backfilled: Backfilled,
) -> None:
    counting = CountingTransport()
    client = PrometheusClient(backfilled.prometheus.url, 10.0, transport=counting, coalesce=True, range_cache=16)
    now = [backfilled.now * 10**9]
    service = MetricsService(client, Queries(), clock=lambda: now[0])
    try:
        first, second = await asyncio.gather(*(service.app_metrics(app(data.FULL), pb.PERIOD_1H) for _ in range(2)))
        assert counting.requests == RANGE_BATCHES < len(UNITS)
        assert first == second and len(first.memory.values) == 61
        assert await service.app_metrics(app(data.FULL), pb.PERIOD_1H) == first
        assert counting.requests == RANGE_BATCHES  # served again by the range cache
        now[0] += 60 * 10**9  # the next step: a new window, asked again
        await service.app_metrics(app(data.FULL), pb.PERIOD_1H)
        assert counting.requests == 2 * RANGE_BATCHES
    finally:
        await client.close()


async def test_a_template_with_several_series_is_refused_inside_a_batch(
    client: PrometheusClient, backfilled: Backfilled
) -> None:
    # Not aggregated: one series per container of the app, which a batch must not merge into one chart.
    queries = Queries(range_templates={**RANGE_TEMPLATES, "memory": "container_memory_working_set_bytes{$app}"})
    service = MetricsService(client, queries, clock=lambda: backfilled.now * 10**9, range_batches=1)
    with pytest.raises(Unavailable) as caught:
        await service.app_metrics(app(data.FULL), pb.PERIOD_1H)
    assert re.fullmatch(r"prometheus unavailable: \d+ series for memory, expected one", caught.value.message)
