"""GetAppMetrics: six range queries over one period, in a few concurrent requests, turned into series with summaries.

Each period has a fixed step (the proto's Period comments). The window ends at "now" rounded down to the
step and starts one period earlier, both on the step grid, so every label is a round RFC 3339 time and
points are ``start, start + step, …, end`` (period / step + 1 of them at most: 61, 73, 25, 169, 121).
A step where Prometheus has no sample, or a NaN/±Inf one (a division by zero traffic), has no point;
summaries are computed over the points that remain and are left unset (``null``) when there are none.

The six range templates go in :data:`RANGE_BATCHES` requests, each batch one expression whose results are
tagged by template (:meth:`Queries.range_batch`) and split back here: the same points, exactly, as six requests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
from collections.abc import Callable, Sequence

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.convert import NS_PER_S, now_ns, timestamp
from server.errors import ServiceError, Unavailable
from server.metrics.prometheus import BACKEND, PrometheusClient, Series
from server.metrics.promql import Queries
from server.store.records import App


@dataclasses.dataclass(frozen=True)
class Window:
    start_s: int
    end_s: int
    step_s: int

    @property
    def points(self) -> int:
        return (self.end_s - self.start_s) // self.step_s + 1


# period → (length, step) in seconds.
PERIODS: dict[int, tuple[int, int]] = {
    pb.PERIOD_1H: (3600, 60),
    pb.PERIOD_6H: (6 * 3600, 300),
    pb.PERIOD_24H: (86400, 3600),
    pb.PERIOD_7D: (7 * 86400, 3600),
    pb.PERIOD_30D: (30 * 86400, 6 * 3600),
}

# Response field (and range template name) → unit.
UNITS: dict[str, str] = {
    "cpu": "%",
    "memory": "MiB",
    "request_count": "req",
    "request_latency": "ms",
    "error_rate": "%",
    "instance_count": "instances",
}


# Requests per GetAppMetrics for its six range queries (consecutive groups of UNITS); 6 sends each template
# alone. Each request costs client CPU (0.5–1 ms here), while Prometheus evaluates one request's expressions one
# after another (all six in one: 1.2–1.8 × the wall time of six at once over bare sockets). On two shared cores
# two requests kept GetAppMetrics within issue 14's goal in 24 of 30 period-runs, one request in 22, six in 12
# (6 runs of bench/bench_prom_client.py, docs/benchmarks.md).
RANGE_BATCHES = 2
# Filled batch expressions kept (LRU): filling six templates costs 0.1–0.2 ms, and the same app and step (four
# distinct steps) ask for the same text again. 1,024 entries of about 1.5 KB.
PROMQL_CACHE = 1024
# Serialized labels kept (LRU): the current windows of the five periods hold about 450 distinct times, shared by
# every app, and move on one step at a time.
LABEL_CACHE = 4096


def batches(names: Sequence[str], count: int) -> list[tuple[str, ...]]:
    """``names`` in ``count`` consecutive groups (at least one, at most one per name), sizes differing by one."""
    count = max(1, min(count, len(names)))
    size, extra = divmod(len(names), count)
    groups: list[tuple[str, ...]] = []
    start = 0
    for index in range(count):
        end = start + size + (index < extra)
        groups.append(tuple(names[start:end]))
        start = end
    return groups


def window(period: int, now_s: float) -> Window:
    """The step-aligned window of ``period`` ending at or before ``now_s``."""
    length, step = PERIODS[period]
    end = int(now_s) // step * step
    return Window(end - length, end, step)


def metric_series(found: Sequence[Series], unit: str) -> pb.MetricSeries:
    """One response series from a query's result: finite points only, summaries only when there are points."""
    points = [(t, v) for t, v in found[0].points if math.isfinite(v)] if found else []
    if not points:
        return pb.MetricSeries(unit=unit)
    values = [v for _, v in points]
    series = pb.MetricSeries(
        unit=unit, values=values, current=values[-1], avg=math.fsum(values) / len(values), max=max(values)
    )
    # Parsing bytes into a message appends to its repeated fields, so the labels go in as the bytes of
    # one-label series, each made once (_label). Building a Timestamp per point was most of the server's CPU
    # outside the HTTP client (6 × 169 points for 7d); the bytes cost about a third of that.
    series.MergeFromString(b"".join([_label(t) for t, _ in points]))
    return series


@functools.lru_cache(maxsize=LABEL_CACHE)
def _label(t: float) -> bytes:
    """A serialized MetricSeries whose only field is the label of the point at ``t`` (Unix seconds)."""
    return pb.MetricSeries(labels=[timestamp(round(t * NS_PER_S))]).SerializeToString()


class MetricsService:
    """The ``MetricsReader`` capability over one shared Prometheus client.

    ``range_batches``: requests per call for the six range queries (None: :data:`RANGE_BATCHES`, read here so a
    benchmark can change it).
    """

    def __init__(
        self,
        prometheus: PrometheusClient,
        queries: Queries,
        *,
        clock: Callable[[], int] = now_ns,
        range_batches: int | None = None,
    ):
        self._prometheus = prometheus
        self._queries = queries
        self._clock = clock
        self._batches = batches(list(UNITS), RANGE_BATCHES if range_batches is None else range_batches)
        self._promql = functools.lru_cache(maxsize=PROMQL_CACHE)(queries.range_batch)

    async def app_metrics(self, app: App, period: pb.Period.ValueType) -> pb.GetAppMetricsResponse:
        span = window(period, self._clock() / NS_PER_S)
        try:
            # A TaskGroup cancels the other requests as soon as one fails: no orphan requests.
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._range(names, app, span)) for names in self._batches]
        except* ServiceError as failed:
            raise failed.exceptions[0] from None
        found = {name: series for task in tasks for name, series in task.result().items()}
        fields = {name: metric_series(found[name], unit) for name, unit in UNITS.items()}
        return pb.GetAppMetricsResponse(app_id=app.id, service_name=app.service_name, period=period, **fields)

    async def _range(self, names: tuple[str, ...], app: App, span: Window) -> dict[str, list[Series]]:
        """The series of each range template in ``names``, asked in one request."""
        promql = self._promql(names, app.workspace_id, app.id, span.step_s)
        found = await self._prometheus.query_range(promql, start=span.start_s, end=span.end_s, step=span.step_s)
        split = {names[0]: found} if len(names) == 1 else self._split(names, found, promql)
        for name, series in split.items():
            if len(series) > 1:
                # A template that does not aggregate (a per-instance series, say): refuse rather than pick one.
                raise Unavailable(
                    BACKEND, f"{len(series)} series for {name}, expected one", detail=f"{name} query={promql!r}"
                )
        return split

    def _split(self, names: tuple[str, ...], found: list[Series], promql: str) -> dict[str, list[Series]]:
        """A batch's answer back into each template's series, without the tag (the labels it had alone)."""
        label = self._queries.batch_label
        split: dict[str, list[Series]] = {name: [] for name in names}
        for series in found:
            name = series.labels.get(label, "")
            if name not in split:
                raise Unavailable.malformed(BACKEND, f"a series without a known {label} ({name!r}) in {promql!r}")
            labels = {key: value for key, value in series.labels.items() if key != label}
            split[name].append(Series(labels, series.points))
        return split
