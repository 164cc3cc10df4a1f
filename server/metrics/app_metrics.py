"""GetAppMetrics: six range queries over one period, run concurrently, turned into series with summaries.

Each period has a fixed step (the proto's Period comments). The window ends at "now" rounded down to the
step and starts one period earlier, both on the step grid, so every label is a round RFC 3339 time and
points are ``start, start + step, …, end`` (period / step + 1 of them at most: 61, 73, 25, 169, 121).
A step where Prometheus has no sample, or a NaN/±Inf one (a division by zero traffic), has no point;
summaries are computed over the points that remain and are left unset (``null``) when there are none.
"""

from __future__ import annotations

import asyncio
import dataclasses
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


def window(period: int, now_s: float) -> Window:
    """The step-aligned window of ``period`` ending at or before ``now_s``."""
    length, step = PERIODS[period]
    end = int(now_s) // step * step
    return Window(end - length, end, step)


def metric_series(found: Sequence[Series], unit: str) -> pb.MetricSeries:
    """One response series from a query's result: finite points only, summaries only when there are points."""
    series = pb.MetricSeries(unit=unit)
    if not found:
        return series
    values: list[float] = []
    for t, v in found[0].points:
        if math.isfinite(v):
            series.labels.append(timestamp(round(t * NS_PER_S)))
            values.append(v)
    if values:
        series.values.extend(values)
        series.current = values[-1]
        series.avg = math.fsum(values) / len(values)
        series.max = max(values)
    return series


class MetricsService:
    """The ``MetricsReader`` capability over one shared Prometheus client."""

    def __init__(self, prometheus: PrometheusClient, queries: Queries, *, clock: Callable[[], int] = now_ns):
        self._prometheus = prometheus
        self._queries = queries
        self._clock = clock

    async def app_metrics(self, app: App, period: pb.Period.ValueType) -> pb.GetAppMetricsResponse:
        span = window(period, self._clock() / NS_PER_S)
        try:
            # A TaskGroup cancels the other queries as soon as one fails: no orphan requests.
            async with asyncio.TaskGroup() as group:
                tasks = {name: group.create_task(self._range(name, app, span)) for name in UNITS}
        except* ServiceError as failed:
            raise failed.exceptions[0] from None
        fields = {name: metric_series(task.result(), UNITS[name]) for name, task in tasks.items()}
        return pb.GetAppMetricsResponse(app_id=app.id, service_name=app.service_name, period=period, **fields)

    async def _range(self, name: str, app: App, span: Window) -> list[Series]:
        promql = self._queries.range_query(name, app.workspace_id, app.id, span.step_s)
        found = await self._prometheus.query_range(promql, start=span.start_s, end=span.end_s, step=span.step_s)
        if len(found) > 1:
            # A template that does not aggregate (a per-instance series, say): refuse rather than pick one.
            raise Unavailable(
                BACKEND, f"{len(found)} series for {name}, expected one", detail=f"{name} query={promql!r}"
            )
        return found
