"""GetAppMetrics beyond the six series (issue 17): latency percentiles and status classes (``include=``), custom
windows (``start_time``, ``end_time``, ``step``) and deploy markers, against the session's real Prometheus.

Expected values are computed here from the counters testing/metrics_data.py wrote, with this file's own
``histogram_quantile``, never by asking the server's templates.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import AsyncIterator, Callable

import pytest
from google.protobuf import timestamp_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import config
from server.errors import InvalidArgument, Unavailable, Unimplemented
from server.metrics.app_metrics import RANGE_BATCHES, MetricsQuery, MetricsService
from server.metrics.prometheus import PrometheusClient
from server.metrics.promql import RANGE_TEMPLATES, Queries
from server.states import OperationKind, OperationStatus
from server.store import Store, open_store
from server.store.records import App, Operation
from testing import metrics_data as data
from testing.prometheus import CountingTransport
from tests.metrics.conftest import Backfilled

pytestmark = pytest.mark.timeout(60)

NS = 10**9
PERCENTILES = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}
CLASSES = {"requests_2xx": "2", "requests_3xx": "3", "requests_4xx": "4", "requests_5xx": "5"}
SIX = ("cpu", "memory", "request_count", "request_latency", "error_rate", "instance_count")


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def quantile(q: float, bounds: list[float], cumulative: list[float]) -> float | None:
    """PromQL's histogram_quantile over cumulative bucket rates (bounds ascending, +Inf last); None for NaN."""
    total = cumulative[-1]
    if total == 0:
        return None
    rank = q * total
    # The first bucket (+Inf excluded) holding the rank; none of them: the +Inf bucket, answered with the
    # largest finite bound.
    index = next((i for i, count in enumerate(cumulative[:-1]) if count >= rank), len(bounds) - 1)
    if index == len(bounds) - 1:
        return bounds[-2]
    lower, below = (0.0, 0.0) if index == 0 else (bounds[index - 1], cumulative[index - 1])
    return lower + (bounds[index] - lower) * (rank - below) / (cumulative[index] - below)


def expected_percentile(model: data.LatencyApp, q: float, t: int) -> float | None:
    """The q-quantile in ms at t: each bucket's rate over 5 minutes, summed over both instances."""
    bounds = [math.inf if le == "+Inf" else float(le) for le in data.BUCKETS]
    rates = [sum(model.buckets[i, le].delta(t, 300) / 300 for i in (0, 1)) for le in data.BUCKETS]
    seconds = quantile(q, bounds, rates)
    return None if seconds is None else 1000 * seconds


def times_of(series: pb.MetricSeries) -> list[int]:
    return [label.seconds for label in series.labels]


@pytest.fixture
async def client(backfilled: Backfilled) -> AsyncIterator[PrometheusClient]:
    prometheus = PrometheusClient(backfilled.prometheus.url, 10.0)
    yield prometheus
    await prometheus.close()


@pytest.fixture
def latency_model(backfilled: Backfilled) -> data.LatencyApp:
    return data.latency_app(backfilled.now)[0]  # the same counters the session backfilled (deterministic)


def service(client: PrometheusClient, backfilled: Backfilled, **kwargs: object) -> MetricsService:
    return MetricsService(client, Queries(), clock=lambda: backfilled.now * NS, **kwargs)  # type: ignore[arg-type]


def latency_app() -> App:
    return App(data.LATENCY, data.LATENCY_WORKSPACE, data.LATENCY, "lat-svc", 512, 1, 0)


def full_app() -> App:
    return App(data.FULL, data.WORKSPACE, data.FULL, "full-svc", 512, 1, 0)


def request(app: App, **fields: object) -> pb.GetAppMetricsRequest:
    return pb.GetAppMetricsRequest(workspace_id=app.workspace_id, app_id=app.id, **fields)  # type: ignore[arg-type]


def ts(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


def step(seconds: int) -> str:
    return f"{seconds}s"


# -- latency percentiles ----------------------------------------------------------------------------------------


def custom(now: int, step_s: int, hours: int) -> dict[str, object]:
    end = now // step_s * step_s - step_s
    return {"start_time": ts(end - hours * 3600 // step_s * step_s), "end_time": ts(end), "step": step(step_s)}


WINDOWS: dict[str, Callable[[int], dict[str, object]]] = {
    "1h": lambda now: {"period": pb.PERIOD_1H},
    "6h": lambda now: {"period": pb.PERIOD_6H},
    "custom-2m": lambda now: custom(now, 120, 2),
    "custom-7m": lambda now: custom(now, 420, 5),
}


@pytest.mark.parametrize("window", list(WINDOWS))
async def test_percentiles_equal_what_the_histogram_says(
    client: PrometheusClient, backfilled: Backfilled, latency_model: data.LatencyApp, window: str
) -> None:
    metrics = service(client, backfilled)
    asked = request(latency_app(), include=["latency_percentiles"], **WINDOWS[window](backfilled.now))
    reply = await metrics.app_metrics(latency_app(), metrics.check_request(asked))
    in_inf_bucket = 0
    for name, q in PERCENTILES.items():
        series = getattr(reply, name)
        assert series.unit == "ms"
        assert len(series.values) > 20  # the window lies within the dense data: a point at every step
        for t, value in zip(times_of(series), series.values, strict=True):
            expected = expected_percentile(latency_model, q, t)
            assert expected is not None and close(value, expected), (name, t, value, expected)
            in_inf_bucket += value == 2500.0
        assert series.current == series.values[-1] and series.max == max(series.values)
        assert close(series.avg, math.fsum(series.values) / len(series.values))
    # Both of histogram_quantile's cases were compared: interpolated within a bucket, and the +Inf bucket's rank
    # answered with the largest finite bound (p99 in the even hours, bar one in six: metrics_data.bucket_rate).
    # Only 5 h windows and more are sure to hold such an hour.
    if window in ("6h", "custom-7m"):
        assert 0 < in_inf_bucket < len(reply.latency_p99.values)


async def test_percentiles_have_no_point_where_the_app_has_no_histogram(
    client: PrometheusClient, backfilled: Backfilled
) -> None:
    metrics = service(client, backfilled)
    for app_id in (data.FULL, data.EMPTY, data.IDLE):  # sum/count only, nothing, flat counters
        app = App(app_id, data.WORKSPACE, app_id, "svc", 512, 1, 0)
        query = metrics.check_request(request(app, period=pb.PERIOD_1H, include=["latency_percentiles"]))
        reply = await metrics.app_metrics(app, query)
        for name in PERCENTILES:
            assert reply.HasField(name)
            series = getattr(reply, name)
            assert (list(series.values), series.unit, series.HasField("current")) == ([], "ms", False)


# -- status classes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", list(WINDOWS))
async def test_status_classes_count_each_class_per_step(
    client: PrometheusClient, backfilled: Backfilled, latency_model: data.LatencyApp, window: str
) -> None:
    metrics = service(client, backfilled)
    asked = request(latency_app(), include=["status_classes"], **WINDOWS[window](backfilled.now))
    query = metrics.check_request(asked)
    reply = await metrics.app_metrics(latency_app(), query)
    step_s = query.custom.step_s if query.custom else {pb.PERIOD_1H: 60, pb.PERIOD_6H: 300}[query.period]
    flat_3xx = 0
    for name, digit in CLASSES.items():
        series = getattr(reply, name)
        assert series.unit == "req" and times_of(series) == times_of(reply.request_count)
        for t, value in zip(times_of(series), series.values, strict=True):
            written = [c.delta(t, step_s) for s, c in latency_model.requests.items() if s.startswith(digit)]
            assert close(value, math.fsum(written)), (name, t)
            flat_3xx += name == "requests_3xx" and value == 0
    assert flat_3xx > 0  # a class whose series exists but did not grow reads 0
    # Every request is in exactly one class.
    for i, total in enumerate(reply.request_count.values):
        assert close(math.fsum(getattr(reply, name).values[i] for name in CLASSES), total)


async def test_a_class_the_app_never_answered_reads_zero_not_no_data(
    client: PrometheusClient, backfilled: Backfilled
) -> None:
    # app_full writes only 200 and 503: 3xx and 4xx have no series at all, yet the app served requests.
    metrics = service(client, backfilled)
    query = metrics.check_request(request(full_app(), period=pb.PERIOD_6H, include=["status_classes"]))
    reply = await metrics.app_metrics(full_app(), query)
    labels = times_of(reply.request_count)
    assert len(labels) == 73
    for name in ("requests_3xx", "requests_4xx"):
        assert times_of(getattr(reply, name)) == labels and set(getattr(reply, name).values) == {0.0}
    model = backfilled.model
    assert [model.ok.delta(t, 300) for t in labels] == pytest.approx(list(reply.requests_2xx.values), rel=1e-12)
    assert [model.errors.delta(t, 300) for t in labels] == pytest.approx(list(reply.requests_5xx.values), rel=1e-12)


# -- the six stay as they were ----------------------------------------------------------------------------------


async def test_without_include_the_reply_and_its_requests_are_unchanged(backfilled: Backfilled) -> None:
    counting = CountingTransport()
    client = PrometheusClient(backfilled.prometheus.url, 10.0, transport=counting)
    metrics = service(client, backfilled)
    try:
        before = await metrics.app_metrics(full_app(), pb.PERIOD_24H)  # the call as the API made it before
        assert counting.requests == RANGE_BATCHES
        reply = await metrics.app_metrics(full_app(), metrics.check_request(request(full_app())))
        assert reply.SerializeToString() == before.SerializeToString()
        assert counting.requests == 2 * RANGE_BATCHES
        assert not any(reply.HasField(name) for name in [*PERCENTILES, *CLASSES, "start_time", "end_time", "deploys"])
        assert reply.step == "" and reply.period == pb.PERIOD_24H
        both = request(full_app(), include=["latency_percentiles,status_classes"])
        extended = await metrics.app_metrics(full_app(), metrics.check_request(both))
        assert counting.requests == 3 * RANGE_BATCHES + 2  # one more request per include
        for name in SIX:  # the six series are the same with the extras
            assert getattr(extended, name).SerializeToString() == getattr(before, name).SerializeToString()
    finally:
        await client.close()


# -- custom windows ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("step_s", "back_s", "points"), [(600, 3 * 3600, 13), (3600, 20 * 86400, 481)])
async def test_a_custom_window_has_a_point_at_every_step_with_the_exact_values(
    client: PrometheusClient, backfilled: Backfilled, step_s: int, back_s: int, points: int
) -> None:
    metrics = service(client, backfilled)
    end = backfilled.now // step_s * step_s - step_s
    start = end - (points - 1) * step_s
    assert end - start <= back_s
    asked = request(full_app(), start_time=ts(start), end_time=ts(end), step=step(step_s))
    reply = await metrics.app_metrics(full_app(), metrics.check_request(asked))
    assert (reply.period, reply.start_time.seconds, reply.end_time.seconds, reply.step) == (0, start, end, f"{step_s}s")
    for name in SIX:
        series = getattr(reply, name)
        assert times_of(series) == list(range(start, end + 1, step_s)), name
        for t, value in zip(times_of(series), series.values, strict=True):
            assert close(value, backfilled.model.expected(name, t, step_s)), (name, t)
    assert reply.cpu.labels[0].ToJsonString() == timestamp_pb2.Timestamp(seconds=start).ToJsonString()
    assert reply.cpu.labels[0].ToJsonString().endswith(":00Z")  # round RFC 3339 labels


async def test_end_time_defaults_to_now_rounded_down_to_the_step(
    client: PrometheusClient, backfilled: Backfilled
) -> None:
    metrics = service(client, backfilled)
    now = backfilled.now
    query = metrics.check_request(request(full_app(), start_time=ts(now // 900 * 900 - 3600), step=step(900)))
    assert query.custom is not None and query.custom.end_s == now // 900 * 900 and query.custom.points == 5
    assert query.period == pb.PERIOD_UNSPECIFIED


def _bad(now: int) -> dict[str, tuple[dict[str, object], str, str]]:
    """Case → (request fields, field named, words of the message)."""
    hour = now // 3600 * 3600 - 3600
    day = now // 86400 * 86400 - 86400
    return {
        "unknown include": ({"include": ["percentiles"]}, "include", "unknown value 'percentiles'"),
        "unknown in a list": ({"include": ["status_classes,nope"]}, "include", "allowed: latency_percentiles"),
        "period and window": (
            {"period": pb.PERIOD_1H, "start_time": ts(hour - 3600), "step": step(60)},
            "period",
            "not both",
        ),
        "no step": ({"start_time": ts(hour - 3600), "end_time": ts(hour)}, "step", "required"),
        "no start": ({"end_time": ts(hour), "step": step(60)}, "start_time", "required"),
        "step too short": ({"start_time": ts(hour - 3600), "step": "30s"}, "step", "from 60s to 86400s, got '30s'"),
        "step too long": ({"start_time": ts(hour - 3600), "step": "1d1s"}, "step", "from 60s to 86400s"),
        "step of zero": ({"start_time": ts(hour - 3600), "step": "0"}, "step", "from 60s"),
        "fractional step": ({"start_time": ts(hour - 3600), "step": "1.5m"}, "step", "expected a duration such as"),
        "negative step": ({"start_time": ts(hour - 3600), "step": "-60"}, "step", "expected a duration"),
        "step units out of order": ({"start_time": ts(hour - 3600), "step": "30m1h"}, "step", "expected a duration"),
        "step in ms": ({"start_time": ts(hour - 3600), "step": "60000ms"}, "step", "expected a duration"),
        "step without a number": ({"start_time": ts(hour - 3600), "step": "m"}, "step", "expected a duration"),
        "start off the grid": (
            {"start_time": ts(hour - 3630), "end_time": ts(hour), "step": step(60)},
            "start_time",
            "whole multiple of step (60s)",
        ),
        "start with nanos": (
            {"start_time": timestamp_pb2.Timestamp(seconds=hour - 3600, nanos=1), "step": step(60)},
            "start_time",
            "whole multiple",
        ),
        "end off the grid": (
            {"start_time": ts(hour - 3600), "end_time": ts(hour + 30), "step": step(300)},
            "end_time",
            "whole multiple of step (300s)",
        ),
        "end before start": (
            {"start_time": ts(hour), "end_time": ts(hour - 60), "step": step(60)},
            "end_time",
            "after",
        ),
        "empty window": ({"start_time": ts(hour), "end_time": ts(hour), "step": step(60)}, "end_time", "after"),
        "end in the future": (
            {"start_time": ts(hour), "end_time": ts(hour + 3 * 3600), "step": step(60)},
            "end_time",
            "future",
        ),
        "beyond retention": (
            {"start_time": ts(day - 32 * 86400), "end_time": ts(day), "step": step(86400)},
            "start_time",
            "retention (31 days)",
        ),
        "too many points": (
            {"start_time": ts(hour - 86400), "end_time": ts(hour), "step": step(60)},
            "step",
            "1441 points at 60s, at most 500: use a step of at least 174s",
        ),
        "unknown period": ({"period": 99}, "period", "unknown value 99"),
    }


@pytest.mark.parametrize("case", list(_bad(0)))
def test_bad_values_are_refused_naming_the_field(backfilled: Backfilled, case: str) -> None:
    metrics = MetricsService(None, Queries(), clock=lambda: backfilled.now * NS)  # type: ignore[arg-type]
    fields, field, words = _bad(backfilled.now)[case]
    with pytest.raises(InvalidArgument) as caught:
        metrics.check_request(request(full_app(), **fields))
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ") and words in caught.value.message, caught.value.message


@pytest.mark.parametrize(
    ("text", "seconds"), [("300", 300), ("300s", 300), ("5m", 300), ("1h30m", 5400), ("1d", 86400)]
)
def test_step_takes_prometheus_durations_and_bare_seconds(backfilled: Backfilled, text: str, seconds: int) -> None:
    metrics = MetricsService(None, Queries(), clock=lambda: backfilled.now * NS)  # type: ignore[arg-type]
    end = backfilled.now // 86400 * 86400
    query = metrics.check_request(request(full_app(), start_time=ts(end - 86400), end_time=ts(end), step=text))
    assert query.custom is not None and query.custom.step_s == seconds


def test_include_accepts_repeated_values_and_comma_lists(backfilled: Backfilled) -> None:
    metrics = MetricsService(None, Queries(), clock=lambda: backfilled.now * NS)  # type: ignore[arg-type]
    both = frozenset({"latency_percentiles", "status_classes"})
    for include in (["latency_percentiles", "status_classes"], ["status_classes, latency_percentiles"], [",", ""]):
        query = metrics.check_request(request(full_app(), include=include))
        assert query.include == (both if include[0] != "," else frozenset())
        assert query == MetricsQuery(period=pb.PERIOD_24H, include=query.include)
    with pytest.raises(Unimplemented, match="include=deploys"):  # no store given to this service
        metrics.check_request(request(full_app(), include=["deploys"]))


def test_the_retention_is_configurable(backfilled: Backfilled) -> None:
    queries = config.from_tables({"prometheus": {"retention_s": 7 * 86400}})["queries"]
    assert queries.retention_s == 7 * 86400 and Queries().retention_s == 31 * 86400
    metrics = MetricsService(None, queries, clock=lambda: backfilled.now * NS)  # type: ignore[arg-type]
    day = backfilled.now // 86400 * 86400
    metrics.check_request(request(full_app(), start_time=ts(day - 6 * 86400), end_time=ts(day), step=step(3600)))
    with pytest.raises(InvalidArgument, match=r"^start_time: .*retention \(7 days\)"):
        metrics.check_request(request(full_app(), start_time=ts(day - 8 * 86400), end_time=ts(day), step=step(3600)))
    for bad in (60, 3600.5, "1d", True):
        with pytest.raises(config.ConfigError, match=r"\[prometheus\] retention_s"):
            config.from_tables({"prometheus": {"retention_s": bad}})


def test_the_new_templates_are_configurable_and_must_select_by_app() -> None:
    p95 = "1000 * histogram_quantile(0.95, sum by (le) (rate(latency_bucket{$app}[1m])))"
    queries = config.from_tables({"prometheus": {"range": {"latency_p95": p95}}})["queries"]
    assert queries.range_query("latency_p95", "ws", "app", 60) == p95.replace("$app", 'workspace_id="ws", app_id="app"')
    with pytest.raises(config.ConfigError, match=r"latency_p99: must select by \$app"):
        config.from_tables({"prometheus": {"range": {"latency_p99": "histogram_quantile(0.99, x_bucket)"}}})


# -- deploy markers ---------------------------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: pathlib.Path) -> AsyncIterator[Store]:
    store = await open_store(str(tmp_path / "monitoring.db"))
    await store.create_workspace(data.LATENCY_WORKSPACE, "latency", 1)
    await store.upsert_app(latency_app())
    try:
        yield store
    finally:
        await store.close()


async def test_deploy_markers_are_the_deploys_started_within_the_window(
    client: PrometheusClient, backfilled: Backfilled, store: Store
) -> None:
    metrics = service(client, backfilled, deploys=store)
    query = metrics.check_request(request(latency_app(), period=pb.PERIOD_1H, include=["deploys"]))
    reply = await metrics.app_metrics(latency_app(), query)
    assert reply.HasField("deploys") and list(reply.deploys.markers) == []  # asked, none recorded yet
    end = backfilled.now // 60 * 60
    start = end - 3600
    recorded = [
        ("dep_before", start * NS - 1, OperationStatus.SUCCEEDED),
        ("dep_first", start * NS, OperationStatus.SUCCEEDED),
        ("dep_failed", start * NS + 1_500_000_000, OperationStatus.FAILED),
        ("dep_running", (end - 60) * NS, OperationStatus.RUNNING),
        ("dep_last", end * NS, OperationStatus.CANCELED),
        ("dep_after", end * NS + 1, OperationStatus.SUCCEEDED),
    ]
    for op_id, started, status in recorded:
        await store.record_operation(
            OperationKind.DEPLOY, Operation(op_id, data.LATENCY, data.LATENCY_WORKSPACE, status, started, None)
        )
    # The same app id's builds are not deploys.
    await store.record_operation(
        OperationKind.BUILD,
        Operation("bld_1", data.LATENCY, data.LATENCY_WORKSPACE, OperationStatus.SUCCEEDED, start * NS + 60, None),
    )
    reply = await metrics.app_metrics(latency_app(), query)
    assert not reply.deploys.truncated
    markers = [(d.id, d.started_at.ToJsonString(), d.status) for d in reply.deploys.markers]
    assert markers == [
        ("dep_first", timestamp_pb2.Timestamp(seconds=start).ToJsonString(), pb.OPERATION_STATUS_SUCCEEDED),
        (
            "dep_failed",
            timestamp_pb2.Timestamp(seconds=start + 1, nanos=500_000_000).ToJsonString(),
            pb.OPERATION_STATUS_FAILED,
        ),
        ("dep_running", timestamp_pb2.Timestamp(seconds=end - 60).ToJsonString(), pb.OPERATION_STATUS_RUNNING),
        ("dep_last", timestamp_pb2.Timestamp(seconds=end).ToJsonString(), pb.OPERATION_STATUS_CANCELED),
    ]
    assert times_of(reply.instance_count)[::60] == [start, end]  # the window's own ends


async def test_the_deploy_read_keeps_the_newest_and_returns_them_oldest_first(store: Store) -> None:
    for i in range(5):
        op = Operation(f"dep_{i}", data.LATENCY, data.LATENCY_WORKSPACE, OperationStatus.SUCCEEDED, (i + 1) * NS, None)
        await store.record_operation(OperationKind.DEPLOY, op)
    found = await store.deploys_between(data.LATENCY, 2 * NS, 5 * NS, 3)
    assert [op.id for op in found] == ["dep_2", "dep_3", "dep_4"]
    assert await store.deploys_between("app_other", 0, 10 * NS, 10) == []


async def test_a_failed_extra_batch_fails_the_call_with_prometheus_answer(backfilled: Backfilled) -> None:
    # A percentile template Prometheus refuses: the whole call fails UNAVAILABLE with Prometheus's answer.
    client = PrometheusClient(backfilled.prometheus.url, 10.0)
    queries = Queries(range_templates={**RANGE_TEMPLATES, "latency_p50": "histogram_quantile(0.5, {$app}"})
    metrics = MetricsService(client, queries, clock=lambda: backfilled.now * NS)
    try:
        query = metrics.check_request(request(latency_app(), include=["latency_percentiles"]))
        with pytest.raises(Unavailable, match="HTTP 400"):
            await metrics.app_metrics(latency_app(), query)
    finally:
        await client.close()
