"""The data the metrics and health tests backfill, and the values Prometheus must therefore answer.

Every sample time is a multiple of 60 s, so every aligned query point has a sample exactly at it and at
``t - 300`` and ``t - step``: ``rate(x[5m])`` at t is then exactly ``(x(t) - x(t-300)) / 300`` and
``increase(x[step])`` is ``x(t) - x(t-step)`` (no extrapolation), and a gauge reads its own value.
Counters grow at a rate that changes every hour, gauges change every hour and every minute, and one of
two instances is down one hour in six, so current/avg/max differ for every series and every period.

Data runs up to two hours into the future: a query at time t only sees samples ≤ t, so the data stays
"live" (fresh for health) for the whole test session.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing.platform import Tenant
from testing.prometheus import PrometheusProcess, Series

WORKSPACE = "ws_metrics"
OTHER_WORKSPACE = "ws_neighbour"
FULL = "app_full"  # a month of data with known values
EMPTY = "app_empty"  # registered, no series at all
IDLE = "app_idle"  # series exist, but no traffic: latency and error rate are 0/0 = NaN
# Label values that need escaping; they exist in Prometheus (in OTHER_WORKSPACE) to prove round trips.
ODD_IDS = ('we"ird\\app', "line\nbreak", "app-ü😀", 'x"} or up{app_id=~".+')

MONTH = 31 * 86400
DENSE = 8 * 3600  # the last hours before now carry a sample every minute, older data one per 5 minutes
FUTURE = 2 * 3600
MIB = 1048576


def cpu_cores(hour: int) -> float:
    return 0.2 + 0.1 * (hour % 3)


def ok_per_s(hour: int) -> float:
    return 8.0 + hour % 4


def errors_per_s(hour: int) -> float:
    return 0.5 * (hour % 2)


def latency_s(hour: int) -> float:
    return 0.1 + 0.05 * (hour % 5)


def memory_bytes(t: int) -> float:
    return float((256 + 16 * ((t // 3600) % 24) + (t // 60) % 7) * MIB)


def second_instance_up(t: int) -> float:
    return 0.0 if (t // 3600) % 6 == 5 else 1.0


@dataclasses.dataclass
class Counter:
    """A counter sampled on a grid, growing at ``rate(hour)`` per second; values kept for expectations."""

    rate: Callable[[int], float]
    values: dict[int, float] = dataclasses.field(default_factory=dict)

    def fill(self, times: list[int]) -> list[tuple[float, float]]:
        total, previous = 0.0, times[0]
        for t in times:
            # Grid steps never cross an hour boundary except by ending on it: one rate per step.
            total += self.rate(previous // 3600) * (t - previous)
            self.values[t] = total
            previous = t
        return [(t, self.values[t]) for t in times]

    def delta(self, t: int, window: int) -> float:
        return self.values[t] - self.values[t - window]


@dataclasses.dataclass
class FullApp:
    """The month-long app: its series, and the exact value each query must give at time t."""

    times: list[int]
    cpu: Counter
    ok: Counter
    errors: Counter
    duration_sum: Counter
    duration_count: Counter

    def expected(self, metric: str, t: int, step: int) -> float | None:
        if metric == "cpu":
            return 100 * (self.cpu.delta(t, 300) / 300)
        if metric == "memory":
            return memory_bytes(t) / MIB
        if metric == "request_count":
            return self.ok.delta(t, step) + self.errors.delta(t, step)
        if metric == "request_latency":
            return 1000 * (self.duration_sum.delta(t, 300) / 300) / (self.duration_count.delta(t, 300) / 300)
        if metric == "error_rate":
            errors, ok = self.errors.delta(t, 300) / 300, self.ok.delta(t, 300) / 300
            return 100 * errors / (ok + errors)
        if metric == "instance_count":
            return 1.0 + second_instance_up(t)
        raise KeyError(metric)


def grid(start: int, end: int, dense_from: int) -> list[int]:
    """Sample times: every 300 s before ``dense_from``, every 60 s from it to ``end`` (all multiples of 60)."""
    return [*range(start, dense_from, 300), *range(dense_from, end + 1, 60)]


def app_labels(workspace: str, app: str, **extra: str) -> dict[str, str]:
    return {"workspace_id": workspace, "app_id": app, **extra}


def full_app(now: int) -> tuple[FullApp, list[Series]]:
    start = now // 21600 * 21600 - MONTH
    times = grid(start, now + FUTURE, now // 3600 * 3600 - DENSE)
    model = FullApp(
        times,
        cpu=Counter(cpu_cores),
        ok=Counter(ok_per_s),
        errors=Counter(errors_per_s),
        duration_sum=Counter(lambda h: (ok_per_s(h) + errors_per_s(h)) * latency_s(h)),
        duration_count=Counter(lambda h: ok_per_s(h) + errors_per_s(h)),
    )
    labels = app_labels(WORKSPACE, FULL)
    container = {**labels, "pod": "full-0", "container": "app"}
    series = [
        Series("container_cpu_usage_seconds_total", container, model.cpu.fill(times)),
        Series("container_memory_working_set_bytes", container, [(t, memory_bytes(t)) for t in times]),
        # cAdvisor's whole-pod and pause-container series: the templates must not count them.
        Series("container_memory_working_set_bytes", {**container, "container": ""}, [(t, 9e9) for t in times]),
        Series("container_memory_working_set_bytes", {**container, "container": "POD"}, [(t, 7e9) for t in times]),
        Series("http_requests_total", {**labels, "status": "200"}, model.ok.fill(times)),
        Series("http_requests_total", {**labels, "status": "503"}, model.errors.fill(times)),
        Series("http_request_duration_seconds_sum", labels, model.duration_sum.fill(times)),
        Series("http_request_duration_seconds_count", labels, model.duration_count.fill(times)),
        Series("up", {**labels, "instance": "full-0"}, [(t, 1.0) for t in times]),
        Series("up", {**labels, "instance": "full-1"}, [(t, second_instance_up(t)) for t in times]),
    ]
    return model, series


@dataclasses.dataclass(frozen=True)
class Traffic:
    """A steady app for health: instances up/total, requests/s, error %, latency ms, and when data ends."""

    up: int
    total: int
    rps: float = 10.0
    error_percent: float = 0.0
    latency_ms: float = 100.0
    ends_before_now_s: int = -FUTURE
    # (from, to) in seconds before now: every instance reports 0 in between.
    outage: tuple[int, int] | None = None

    @property
    def up_for_s(self) -> int:
        """How long, at "now", the app has had an instance up without a break."""
        return self.outage[1] if self.outage else HISTORY


HISTORY = 1800  # health apps' data starts this many seconds before now


# app id → (traffic, expected status, expected reasons)
HEALTH_CASES: dict[str, tuple[Traffic | None, str, tuple[str, ...]]] = {
    "app_healthy": (Traffic(2, 2, error_percent=1.0), "healthy", ()),
    "app_some_down": (Traffic(2, 3), "degraded", ("2 of 3 instances up",)),
    "app_erroring": (Traffic(2, 2, error_percent=10.0), "degraded", ("error rate 10% ≥ 5%",)),
    "app_slow": (Traffic(1, 1, latency_ms=1500.0), "degraded", ("average latency 1500 ms ≥ 1000 ms",)),
    "app_all_down": (Traffic(0, 2), "unhealthy", ("no instance up (0 of 2)",)),
    "app_failing": (
        Traffic(1, 2, error_percent=80.0),
        "unhealthy",
        ("1 of 2 instances up", "error rate 80% ≥ 50%"),
    ),
    "app_recovered": (Traffic(2, 2, outage=(1200, 600)), "healthy", ()),
    "app_gap": (
        Traffic(2, 2, ends_before_now_s=600),
        "unknown",
        ("no `up` sample in the last 5 minutes (not scraped yet, new deploy or data gap)",),
    ),
    "app_new": (None, "unknown", ("no `up` sample in the last 5 minutes (not scraped yet, new deploy or data gap)",)),
}


def steady_app(workspace: str, app: str, traffic: Traffic, now: int) -> Iterator[Series]:
    times = list(range(now // 60 * 60 - HISTORY, now - traffic.ends_before_now_s + 1, 60))
    start = times[0]

    def up(i: int, t: int) -> float:
        if traffic.outage and now - traffic.outage[0] <= t < now - traffic.outage[1]:
            return 0.0
        return 1.0 if i < traffic.up else 0.0

    labels = app_labels(workspace, app)
    errors = traffic.rps * traffic.error_percent / 100
    yield Series(
        "http_requests_total", {**labels, "status": "200"}, [(t, (traffic.rps - errors) * (t - start)) for t in times]
    )
    yield Series("http_requests_total", {**labels, "status": "500"}, [(t, errors * (t - start)) for t in times])
    yield Series(
        "http_request_duration_seconds_sum",
        labels,
        [(t, traffic.rps * traffic.latency_ms / 1000 * (t - start)) for t in times],
    )
    yield Series("http_request_duration_seconds_count", labels, [(t, traffic.rps * (t - start)) for t in times])
    for i in range(traffic.total):
        yield Series("up", {**labels, "instance": f"{app}-{i}"}, [(t, up(i, t)) for t in times])


def idle_app(now: int) -> Iterator[Series]:
    """Series exist but nothing is served: request counters flat, so latency and error rate are NaN."""
    times = list(range(now // 3600 * 3600 - DENSE, now + FUTURE + 1, 60))
    labels = app_labels(WORKSPACE, IDLE)
    yield Series("http_requests_total", {**labels, "status": "200"}, [(t, 42.0) for t in times])
    yield Series("http_request_duration_seconds_sum", labels, [(t, 4.2) for t in times])
    yield Series("http_request_duration_seconds_count", labels, [(t, 42.0) for t in times])
    yield Series("up", {**labels, "instance": "idle-0"}, [(t, 1.0) for t in times])


# GetAppMetrics' optional series (tests/metrics/test_metrics_extras.py): an app of its own workspace, so that no
# other test's workspace, app list or expectation changes.
LATENCY_WORKSPACE = "ws_latency"
LATENCY = "app_latency"  # a request duration histogram on two instances, and requests of every status class
# Histogram bucket bounds in seconds (`le`), +Inf last as client libraries write it.
BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")
# Status codes written, several per class (the templates group them by their first digit); 301 is flat in even
# hours, so its class reads 0 there while the series exists.
STATUSES = ("200", "201", "301", "404", "429", "503")


def bucket_rate(instance: int, bucket: int, hour: int) -> float:
    """Observations per second falling in ``BUCKETS[bucket]`` alone (not cumulative), shifting every hour."""
    base = (1.0 + hour % 3, 4.0, 2.0 + 3 * (hour % 2), 1.5, 0.5 * (hour % 4), 0.25 + 0.5 * (hour % 5 == 0), 0.125)
    return base[bucket] * (instance + 1)


def status_rate(status: str, hour: int) -> float:
    rates = {
        "200": 6.0 + hour % 3,
        "201": 1.0,
        "301": 0.5 * (hour % 2),
        "404": 2.0,
        "429": 0.25,
        "503": 0.25 * (hour % 3),
    }
    return rates[status]


@dataclasses.dataclass
class LatencyApp:
    """The written counters of :data:`LATENCY`: cumulative buckets per (instance, le), requests per status."""

    times: list[int]
    buckets: dict[tuple[int, str], Counter]
    requests: dict[str, Counter]


def latency_app(now: int) -> tuple[LatencyApp, list[Series]]:
    times = list(range(now // 3600 * 3600 - DENSE, now + FUTURE + 1, 60))
    labels = app_labels(LATENCY_WORKSPACE, LATENCY)
    model = LatencyApp(times, {}, {})
    series = []
    for instance in (0, 1):
        for index, le in enumerate(BUCKETS):
            # Cumulative, as Prometheus histograms are: bucket `le` counts every observation ≤ le.
            rate = functools.partial(lambda i, n, h: sum(bucket_rate(i, b, h) for b in range(n + 1)), instance, index)
            counter = model.buckets[instance, le] = Counter(rate)
            bucket_labels = {**labels, "instance": f"lat-{instance}", "le": le}
            series.append(Series("http_request_duration_seconds_bucket", bucket_labels, counter.fill(times)))
    for status in STATUSES:
        counter = model.requests[status] = Counter(functools.partial(status_rate, status))
        series.append(Series("http_requests_total", {**labels, "status": status}, counter.fill(times)))
    series.append(Series("up", {**labels, "instance": "lat-0"}, [(t, 1.0) for t in times]))
    return model, series


def neighbours(now: int) -> Iterator[Series]:
    """Same app id in another workspace, and the odd ids: what a widened query would pick up."""
    times = list(range(now // 60 * 60 - 1800, now + FUTURE + 1, 60))
    for app in (FULL, *ODD_IDS):
        labels = app_labels(OTHER_WORKSPACE, app)
        yield Series("up", {**labels, "instance": "n-0"}, [(t, 1.0) for t in times])
        yield Series("container_memory_working_set_bytes", {**labels, "container": "app"}, [(t, 1e12) for t in times])


def dataset(now: int) -> tuple[FullApp, list[Series]]:
    model, series = full_app(now)
    series += list(idle_app(now))
    for app, (traffic, _status, _reasons) in HEALTH_CASES.items():
        if traffic is not None:
            series += list(steady_app(WORKSPACE, app, traffic, now))
    series += list(neighbours(now))
    series += latency_app(now)[1]
    return model, series


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


DEPLOYED_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


async def seed_apps(tenant: Tenant) -> None:
    for app in (FULL, EMPTY, IDLE, *HEALTH_CASES):
        await tenant.add_app(app, service_name=f"{app}-svc")
    await tenant.record("deploy", "app_healthy", "dep_1", pb.OPERATION_STATUS_SUCCEEDED, DEPLOYED_NS)
    await tenant.record("deploy", "app_healthy", "dep_2", pb.OPERATION_STATUS_FAILED, DEPLOYED_NS + 10**12)


@dataclasses.dataclass(frozen=True)
class Backfilled:
    """A real Prometheus holding :func:`dataset` as of ``now`` (the session's ``backfilled`` fixture)."""

    now: int
    model: FullApp
    prometheus: PrometheusProcess
