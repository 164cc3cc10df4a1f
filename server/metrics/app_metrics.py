"""GetAppMetrics: six range queries over one period, in a few concurrent requests, turned into series with summaries.

Each period has a fixed step (the proto's Period comments). The window ends at "now" rounded down to the
step and starts one period earlier, both on the step grid, so every label is a round RFC 3339 time and
points are ``start, start + step, …, end`` (period / step + 1 of them at most: 61, 73, 25, 169, 121).
A step where Prometheus has no sample, or a NaN/±Inf one (a division by zero traffic), has no point;
summaries are computed over the points that remain and are left unset (``null``) when there are none.

The six range templates go in :data:`RANGE_BATCHES` requests, each batch one expression whose results are
tagged by template (:meth:`Queries.range_batch`) and split back here: the same points, exactly, as six requests.

Optional series (``include=``, :data:`INCLUDES`) add one batch each, sent beside the six only when asked, so a
call without them costs what it did. A custom window (``start_time``, ``end_time``, ``step``) replaces the period:
:meth:`MetricsService.check_request` validates it (and ``include``) before the app is read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from google.protobuf import timestamp_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import validation
from server.convert import NS_PER_S, enum_from_json, nanoseconds, now_ns, timestamp
from server.errors import InvalidArgument, ServiceError, Unavailable, Unimplemented
from server.metrics.prometheus import BACKEND, PrometheusClient, Series
from server.metrics.promql import Queries
from server.store.records import App, Operation


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


# Optional series: response field (and range template name) → unit.
OPTIONAL_UNITS: dict[str, str] = {
    "latency_p50": "ms",
    "latency_p95": "ms",
    "latency_p99": "ms",
    "requests_2xx": "req",
    "requests_3xx": "req",
    "requests_4xx": "req",
    "requests_5xx": "req",
}
# `include=` value → the optional range templates it adds, asked in one request of their own.
INCLUDES: dict[str, tuple[str, ...]] = {
    "latency_percentiles": ("latency_p50", "latency_p95", "latency_p99"),
    "status_classes": ("requests_2xx", "requests_3xx", "requests_4xx", "requests_5xx"),
    "deploys": (),  # a store read, not a query (DeployReader)
}
DEPLOYS = "deploys"

# Custom windows. A few hundred points is what a chart can show; the periods hold at most 169. The step bounds
# keep every label a whole second and `$step` a sane increase window: increase() needs two samples in it, so at
# scrape intervals up to 30 s a step under a minute would give thin or empty request counts (as 1h's step: 60 s).
MAX_POINTS = 500
MIN_STEP_S = 60
MAX_STEP_S = 86400
# A step: bare seconds, or d/h/m/s parts largest first (Prometheus's duration syntax; ms, w and y are left out:
# a step is whole seconds of at most a day). Digits are bounded so that no value overflows or takes long.
_STEP = re.compile(r"(\d{1,9})|(?:(\d{1,9})d)?(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?")
_STEP_UNITS = (1, 86400, 3600, 60, 1)  # seconds per unit of _STEP's groups
# Deploy markers per reply (the newest): one a minute for a whole 6 h window at 1 min steps is 360.
MAX_DEPLOYS = 500


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


class DeployReader(Protocol):
    # The app's deploys started in [start_ns, end_ns], the newest ``limit`` of them, oldest first.
    async def deploys_between(self, app_id: str, start_ns: int, end_ns: int, limit: int) -> list[Operation]: ...


@dataclasses.dataclass(frozen=True)
class MetricsQuery:
    """A validated GetAppMetrics request: a period (window at call time) or a custom window, and the extras."""

    period: int = pb.PERIOD_24H  # PERIOD_UNSPECIFIED with a custom window
    custom: Window | None = None
    include: frozenset[str] = frozenset()


def parse_include(values: Sequence[str]) -> frozenset[str]:
    """``include`` values, each possibly a comma-separated list (the REST form ``include=a,b``)."""
    names = frozenset(name.strip() for value in values for name in value.split(",") if name.strip())
    for name in sorted(names):
        if name not in INCLUDES:
            raise InvalidArgument("include", f"unknown value {name[:80]!r}", allowed=list(INCLUDES))
    return names


def custom_window(request: pb.GetAppMetricsRequest, now_s: float, retention_s: int) -> Window:
    """The request's start_time / end_time / step, checked; every error names its field."""
    if request.period != pb.PERIOD_UNSPECIFIED:
        raise InvalidArgument("period", "give either period or a custom window (start_time, end_time, step), not both")
    step = _step_s(request)
    if not request.HasField("start_time"):
        raise InvalidArgument("start_time", "is required for a custom window (with step; end_time defaults to now)")
    start = _aligned("start_time", request.start_time, step)
    end = _aligned("end_time", request.end_time, step) if request.HasField("end_time") else int(now_s) // step * step
    if end > now_s:
        raise InvalidArgument("end_time", "is in the future")
    if end <= start:
        given = request.HasField("end_time")
        raise InvalidArgument("end_time", "must be after start_time" if given else "(now) is not after start_time")
    if start < now_s - retention_s:
        raise InvalidArgument(
            "start_time", f"is older than the Prometheus retention ({_days(retention_s)}) the server is configured with"
        )
    span = Window(start, end, step)
    if span.points > MAX_POINTS:
        least = -(-(end - start) // (MAX_POINTS - 1))
        raise InvalidArgument(
            "step",
            f"the window holds {span.points} points at {step}s, at most {MAX_POINTS}: use a step of at least"
            f" {least}s or a shorter window",
        )
    return span


def _step_s(request: pb.GetAppMetricsRequest) -> int:
    """The step in seconds: Prometheus's duration syntax without fractions (``5m``, ``1h30m``) or bare seconds."""
    if not request.step:
        raise InvalidArgument("step", "is required for a custom window (a duration such as 300s or 5m)")
    match = _STEP.fullmatch(request.step)
    if match is None or not any(match.groups()):
        raise InvalidArgument("step", f"expected a duration such as 300s, 5m or 1h30m, got {request.step[:40]!r}")
    seconds = sum(int(count) * size for count, size in zip(match.groups(), _STEP_UNITS, strict=True) if count)
    if not MIN_STEP_S <= seconds <= MAX_STEP_S:
        raise InvalidArgument("step", f"must be from {MIN_STEP_S}s to {MAX_STEP_S}s, got {request.step[:40]!r}")
    return seconds


def _aligned(field: str, value: timestamp_pb2.Timestamp, step: int) -> int:
    """A window end as Unix seconds, which must sit on the step grid (epoch-aligned) so labels are round."""
    ns = nanoseconds(value)
    if ns % (step * NS_PER_S) != 0:
        below = ns // (step * NS_PER_S) * step
        raise InvalidArgument(
            field,
            f"must be a whole multiple of step ({step}s) since the Unix epoch, such as"
            f" {timestamp(below * NS_PER_S).ToJsonString()} or {timestamp((below + step) * NS_PER_S).ToJsonString()}",
        )
    return ns // NS_PER_S


def _days(seconds: int) -> str:
    return f"{seconds / 86400:g} days" if seconds % 3600 == 0 else f"{seconds} s"


# A point's time and value: mapped over the points in C, where a comprehension runs Python code per point.
_time, _value = operator.itemgetter(0), operator.itemgetter(1)


def metric_series(found: Sequence[Series], unit: str) -> pb.MetricSeries:
    """One response series from a query's result: finite points only, summaries only when there are points."""
    points = found[0].points if found else ()
    values = list(map(_value, points))
    times: Iterable[float]
    if all(map(math.isfinite, values)):
        times = map(_time, points)  # the usual case: nothing to drop
    else:
        kept = [(t, v) for t, v in points if math.isfinite(v)]
        times, values = map(_time, kept), list(map(_value, kept))
    if not values:
        return pb.MetricSeries(unit=unit)
    series = pb.MetricSeries(
        unit=unit, values=values, current=values[-1], avg=math.fsum(values) / len(values), max=max(values)
    )
    # Parsing bytes into a message appends to its repeated fields, so the labels go in as the bytes of
    # one-label series, each made once (_label). Building a Timestamp per point was most of the server's CPU
    # outside the HTTP client (6 × 169 points for 7d); the bytes cost about a third of that.
    series.MergeFromString(b"".join(map(_label, times)))
    return series


@functools.lru_cache(maxsize=LABEL_CACHE)
def _label(t: float) -> bytes:
    """A serialized MetricSeries whose only field is the label of the point at ``t`` (Unix seconds)."""
    return pb.MetricSeries(labels=[timestamp(round(t * NS_PER_S))]).SerializeToString()


class MetricsService:
    """The ``MetricsReader`` capability over one shared Prometheus client.

    ``range_batches``: requests per call for the six range queries (None: :data:`RANGE_BATCHES`, read here so a
    benchmark can change it). ``deploys``: the store's deploy reads for ``include=deploys`` (None: that value is
    UNIMPLEMENTED). How far back a custom window may start is ``queries.retention_s``.
    """

    def __init__(
        self,
        prometheus: PrometheusClient,
        queries: Queries,
        *,
        clock: Callable[[], int] = now_ns,
        range_batches: int | None = None,
        deploys: DeployReader | None = None,
    ):
        self._prometheus = prometheus
        self._queries = queries
        self._clock = clock
        self._batches = batches(list(UNITS), RANGE_BATCHES if range_batches is None else range_batches)
        self._promql = functools.lru_cache(maxsize=PROMQL_CACHE)(queries.range_batch)
        self._deploys = deploys

    def check_request(self, request: pb.GetAppMetricsRequest) -> MetricsQuery:
        """The request's window and extras, validated (InvalidArgument naming the field) before the app is read."""
        include = parse_include(request.include)
        if DEPLOYS in include and self._deploys is None:
            raise Unimplemented("include=deploys is not wired to the store in this server build")
        if request.HasField("start_time") or request.HasField("end_time") or request.step:
            span = custom_window(request, self._clock() / NS_PER_S, self._queries.retention_s)
            return MetricsQuery(period=pb.PERIOD_UNSPECIFIED, custom=span, include=include)
        period = validation.require_enum("period", request.period, pb.Period.DESCRIPTOR, default=pb.PERIOD_24H)
        return MetricsQuery(period=period, include=include)

    async def app_metrics(self, app: App, query: MetricsQuery | pb.Period.ValueType) -> pb.GetAppMetricsResponse:
        """The reply for a validated query (or a bare period: the six series over it)."""
        if not isinstance(query, MetricsQuery):
            query = MetricsQuery(period=query)
        span = query.custom or window(query.period, self._clock() / NS_PER_S)
        groups = [*self._batches, *(INCLUDES[name] for name in sorted(query.include) if INCLUDES[name])]
        try:
            # A TaskGroup cancels the other requests as soon as one fails: no orphan requests.
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._range(names, app, span)) for names in groups]
                deploys = group.create_task(self._deploy_markers(app, span)) if DEPLOYS in query.include else None
        except* ServiceError as failed:
            raise failed.exceptions[0] from None
        found = {name: series for task in tasks for name, series in task.result().items()}
        units = {**UNITS, **{name: OPTIONAL_UNITS[name] for name in found if name not in UNITS}}
        fields = {name: metric_series(found[name], unit) for name, unit in units.items()}
        reply = pb.GetAppMetricsResponse(app_id=app.id, service_name=app.service_name, period=query.period, **fields)
        if query.custom is not None:
            reply.start_time.FromSeconds(span.start_s)
            reply.end_time.FromSeconds(span.end_s)
            reply.step = f"{span.step_s}s"
        if deploys is not None:
            reply.deploys.CopyFrom(deploys.result())
        return reply

    async def _deploy_markers(self, app: App, span: Window) -> pb.DeployMarkers:
        """The app's deploys started within the window (first label to last, both included), oldest first."""
        assert self._deploys is not None  # check_request refuses include=deploys without a reader
        # One more than kept: whether the window holds more is then known without a count.
        found = await self._deploys.deploys_between(
            app.id, span.start_s * NS_PER_S, span.end_s * NS_PER_S, MAX_DEPLOYS + 1
        )
        markers = [
            pb.DeployMarker(
                id=op.id,
                started_at=timestamp(op.started_ns),
                status=enum_from_json(pb.OperationStatus.DESCRIPTOR, op.status),
            )
            for op in found[-MAX_DEPLOYS:]
        ]
        return pb.DeployMarkers(markers=markers, truncated=len(found) > MAX_DEPLOYS)

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
