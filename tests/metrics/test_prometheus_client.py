"""PrometheusClient against the real Prometheus: result types, special values, and its real error answers."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import httpx
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.backend_body import Transport
from server.errors import Unavailable
from server.metrics.app_metrics import metric_series, window
from server.metrics.prometheus import PrometheusClient, Series, _form, finite
from tests.metrics.conftest import Backfilled

pytestmark = pytest.mark.timeout(30)

SPECIAL = (
    'label_replace(vector(1)/0, "v", "pos_inf", "", "") or label_replace(-vector(1)/0, "v", "neg_inf", "", "")'
    ' or label_replace(vector(0)/0, "v", "nan", "", "")'
)


@pytest.fixture
async def client(backfilled: Backfilled) -> AsyncIterator[PrometheusClient]:
    prometheus = PrometheusClient(backfilled.prometheus.url, 5.0)
    yield prometheus
    await prometheus.close()


async def test_special_values_parse_and_are_not_finite(client: PrometheusClient, backfilled: Backfilled) -> None:
    found = {s.labels["v"]: s.value for s in await client.query(SPECIAL, at=backfilled.now)}
    assert found["pos_inf"] == math.inf and found["neg_inf"] == -math.inf and math.isnan(found["nan"])
    assert [finite(v) for v in found.values()] == [None, None, None]
    assert finite(0.0) == 0.0


async def test_scalar_and_vector_results(client: PrometheusClient, backfilled: Backfilled) -> None:
    [scalar] = await client.query("scalar(vector(2))", at=backfilled.now)
    assert (dict(scalar.labels), scalar.time, scalar.value) == ({}, backfilled.now, 2.0)
    assert await client.query('up{app_id="nobody"}', at=backfilled.now) == []


async def test_range_points_are_at_the_requested_steps(client: PrometheusClient, backfilled: Backfilled) -> None:
    end = backfilled.now // 60 * 60
    [series] = await client.query_range("vector(1)", start=end - 300, end=end, step=60)
    assert [t for t, _ in series.points] == [float(t) for t in range(end - 300, end + 1, 60)]


BAD_REQUEST = "prometheus unavailable: it answered HTTP 400 (bad request)"


@pytest.mark.parametrize(
    ("kind", "promql", "message", "detail"),
    [
        ("instant", "up{", BAD_REQUEST, 'HTTP 400 bad_data: invalid parameter "query"'),
        ("range", "up", BAD_REQUEST, "HTTP 400 bad_data: exceeded maximum resolution of 11,000 points"),
        # many-to-many matching: app_full has two `up` series
        (
            "instant",
            'up{app_id="app_full"} * on() up{app_id="app_full"}',
            "prometheus unavailable: it answered HTTP 422 (unprocessable entity)",
            "HTTP 422 execution:",
        ),
        ("instant", '"a string"', "malformed response from prometheus", "instant query returned resultType 'string'"),
    ],
)
async def test_prometheus_errors_become_unavailable_in_plain_words_with_the_cause_in_the_detail(
    client: PrometheusClient, backfilled: Backfilled, kind: str, promql: str, message: str, detail: str
) -> None:
    if kind == "range":
        call = client.query_range(promql, start=0, end=11_001, step=1)
    else:
        call = client.query(promql, at=backfilled.now)
    with pytest.raises(Unavailable) as caught:
        await call
    assert caught.value.backend == "prometheus"
    assert caught.value.message == message
    # The detail (the server log's, never the caller's) has what an operator needs: where, which query, why.
    assert detail in caught.value.detail and repr(promql) in caught.value.detail
    assert f"POST {backfilled.prometheus.url}/api/v1/" in caught.value.detail


class _Holding(Transport):
    """The service's own transport, holding requests naming ``held`` until they are cancelled, and saying so."""

    def __init__(self, held: str) -> None:
        super().__init__()
        self._held = held
        self.cancelled = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._held.encode() in request.content:
            try:
                await asyncio.Event().wait()  # answered only by cancellation
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        return await super().handle_async_request(request)


async def test_query_many_answers_in_order_and_the_first_failure_cancels_the_rest(backfilled: Backfilled) -> None:
    holding = _Holding(held="held_query")
    client = PrometheusClient(backfilled.prometheus.url, 60.0, transport=holding)
    try:
        assert [r[0].value for r in await client.query_many(["vector(1)", "vector(2)"], at=backfilled.now)] == [1, 2]
        # One query fails at once (bad PromQL); the other would wait for the 60 s deadline if left running.
        many = client.query_many(['label_replace(vector(1), "x", "held_query", "", "")', "sum("], at=backfilled.now)
        with pytest.raises(Unavailable, match=r"HTTP 400 \(bad request\)"):
            await asyncio.wait_for(many, 10)
        assert holding.cancelled.is_set()
    finally:
        await client.close()


def test_non_finite_points_are_dropped_and_summaries_cover_the_rest() -> None:
    found = [Series({}, [(60.0, 1.0), (120.0, math.nan), (180.0, math.inf), (240.0, 3.0), (300.0, -math.inf)])]
    series = metric_series(found, "ms")
    assert [ts.seconds for ts in series.labels] == [60, 240]
    assert list(series.values) == [1.0, 3.0]
    assert (series.current, series.avg, series.max) == (3.0, 2.0, 3.0)
    only_nan = metric_series([Series({}, [(60.0, math.nan)])], "%")
    assert list(only_nan.values) == [] and not only_nan.HasField("avg")
    assert metric_series([], "req") == pb.MetricSeries(unit="req")  # no series at all: no points, no summaries


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        (pb.PERIOD_1H, 7259, 3600, 7200),  # 02:00:59 → 01:00 .. 02:00
        (pb.PERIOD_24H, 90000 + 3599, 3600, 90000),
        (pb.PERIOD_30D, 30 * 86400 + 21600 * 2 + 5, 21600 * 2, 30 * 86400 + 21600 * 2),
    ],
)
def test_windows_are_aligned_to_the_step(period: int, now: int, start: int, end: int) -> None:
    span = window(period, now)
    assert (span.start_s, span.end_s) == (start, end)
    assert span.start_s % span.step_s == 0 and span.end_s % span.step_s == 0


def test_the_form_is_encoded_as_httpx_would_encode_it() -> None:
    # The client encodes its forms itself (once per query text); the bytes must be what `data=` sent before.
    params = {"query": 'sum(up{app_id="a b&c=d", x=~"é|\\\\+"}) / 2', "start": "1.5", "timeout": "10"}
    request = httpx.Request("POST", "http://127.0.0.1/", data=params)
    assert _form(params) == request.read()
