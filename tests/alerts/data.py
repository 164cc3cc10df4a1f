"""The timeline the alert tests backfill: one sample per second, values that cross and recover each threshold.

Times are seconds after ``t0``, the moment the data is generated; the server starts a few seconds later.
Samples run from ``t0 - HISTORY`` to ``t0 + END``: a query at time t sees only samples ≤ t, so the data
plays out in real time while the tests watch. Each app breaches at ``BREACH`` for ``LENGTH`` seconds,
then recovers; the rules the tests create give every app a hold of ``HOLD`` seconds.

The rate-based metrics (CPU, errors, latency) are read over a 5 s window in these tests (the server's
config file overrides the 5 m default, see ``CONFIG``) so that they follow the data within seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from testing.prometheus import Series

WORKSPACE = "ws_alerts"
OVERVIEW_WORKSPACE = "ws_overview"
HISTORY = 600
END = 150
HOLD = 8
RESOLUTION = 1
BREACH = 15  # every cycle app breaches from t0 + 15 s ...
LENGTH = 24  # ... for 24 s, then recovers
ESCALATE = 8  # mem_cycle reaches the critical level 8 s into its breach
MIB = 1048576

# Per-app limits: 1000 MiB and 1 core, so MiB / 10 and cores * 100 read as percent of the limit.
MEMORY_LIMIT_MIB = 1000.0
CPU_LIMIT_CORES = 1.0

# (warning, critical, recovery) per type, for the rules the tests create.
THRESHOLDS = {
    "high_cpu": (80.0, 95.0, 50.0),
    "high_memory": (80.0, 95.0, 50.0),
    "high_error_rate": (10.0, 50.0, 5.0),
    "high_latency": (500.0, 2000.0, 200.0),
}
CYCLE_APPS = {"high_cpu": "cpu_cycle", "high_memory": "mem_cycle", "high_error_rate": "err_cycle",
              "high_latency": "lat_cycle"}  # fmt: skip
SPIKE = "mem_spike"  # one sample at 99 %: never fires
LATCH = "mem_latch"  # breach, recovery, breach: resolved by hand during the first breach
LATCH_FIRST_END, LATCH_SECOND_START, LATCH_SECOND_END = 25, 38, 60
MANUAL = "mem_manual"  # in breach all along: resolved by hand by the resolve tests
STEADY = "mem_steady"  # in breach all along, never resolved: an open alert for the REST shape tests

CONFIG = f"""
[alerts]
resolution_s = {RESOLUTION}

[alerts.expressions]
high_cpu = 'max by ($by) (sum by ($by, $instance) (rate(container_cpu_usage_seconds_total{{$all, container!=""}}[5s])))'

[prometheus.grouped]
error_rate = '100 * sum by ($by) (rate(http_requests_total{{$all, status=~"5.."}}[5s])) / sum by ($by) (rate(http_requests_total{{$all}}[5s]))'
latency = '1000 * sum by ($by) (rate(http_request_duration_seconds_sum{{$all}}[5s])) / sum by ($by) (rate(http_request_duration_seconds_count{{$all}}[5s]))'

[cost]
instance_hour_usd = 0.5
memory_gib_hour_usd = 0.25
sample_interval_s = 1
"""  # noqa: E501


# The overview workspace: steady usage per instance (MiB, and up), so month-to-date plus the current rate
# for the rest of the month stays constant while the tests run. ov_d is registered with no series at all.
OVERVIEW_MEMORY = {"ov_a": (256.0, 512.0), "ov_b": (128.0,), "ov_c": (64.0,)}
OVERVIEW_UP = {"ov_a": (1.0, 1.0), "ov_b": (1.0,), "ov_c": (0.0,)}
OVERVIEW_APPS = ("ov_a", "ov_b", "ov_c", "ov_d")


def in_breach(t: int) -> bool:
    return BREACH <= t < BREACH + LENGTH


def cycle_percent(alert_type: str, t: int) -> float:
    """The metric of a cycle app at t, in its rule's unit: low, warning level during the breach, low."""
    warning, critical, recovery = THRESHOLDS[alert_type]
    if alert_type == "high_memory" and t >= BREACH + ESCALATE and in_breach(t):
        return critical + 2
    if in_breach(t):
        return (warning + critical) / 2
    return recovery / 2 if t > BREACH else recovery * 0.8


def latch_percent(t: int) -> float:
    first = t < LATCH_FIRST_END
    second = LATCH_SECOND_START <= t < LATCH_SECOND_END
    return 90.0 if first or second else 30.0


def spike_percent(t: int) -> float:
    return 99.0 if t == BREACH else 30.0


@dataclasses.dataclass(frozen=True)
class Timeline:
    t0: int

    def times(self) -> list[int]:
        return list(range(self.t0 - HISTORY, self.t0 + END + 1))

    def labels(self, app: str, workspace: str = WORKSPACE, **extra: str) -> dict[str, str]:
        return {"workspace_id": workspace, "app_id": app, **extra}

    def gauge(self, app: str, percent: Callable[[int], float]) -> Series:
        samples = [(t, percent(t - self.t0) / 100 * MEMORY_LIMIT_MIB * MIB) for t in self.times()]
        return Series("container_memory_working_set_bytes", self.labels(app, pod=f"{app}-0", container="app"), samples)

    def counter(self, name: str, labels: dict[str, str], per_second: Callable[[int], float]) -> Series:
        total, samples = 0.0, []
        for t in self.times():
            total += per_second(t - self.t0)
            samples.append((t, total))
        return Series(name, labels, samples)

    def up(self, app: str, workspace: str = WORKSPACE, value: float = 1.0, instance: str = "0") -> Series:
        return Series(
            "up", self.labels(app, workspace, instance=f"{app}-{instance}"), [(t, value) for t in self.times()]
        )

    def series(self) -> Iterator[Series]:
        for app in (*CYCLE_APPS.values(), SPIKE, LATCH, MANUAL, STEADY):
            yield self.up(app)
        yield self.gauge(MANUAL, lambda t: 90.0)
        yield self.gauge(STEADY, lambda t: 90.0)
        yield self.gauge(CYCLE_APPS["high_memory"], lambda t: cycle_percent("high_memory", t))
        yield self.gauge(SPIKE, spike_percent)
        yield self.gauge(LATCH, latch_percent)
        cpu = CYCLE_APPS["high_cpu"]
        yield self.counter(
            "container_cpu_usage_seconds_total",
            self.labels(cpu, pod=f"{cpu}-0", container="app"),
            lambda t: cycle_percent("high_cpu", t) / 100 * CPU_LIMIT_CORES,
        )
        err = CYCLE_APPS["high_error_rate"]
        total_rps = 100.0
        yield self.counter(
            "http_requests_total",
            self.labels(err, status="200"),
            lambda t: total_rps * (1 - cycle_percent("high_error_rate", t) / 100),
        )
        yield self.counter(
            "http_requests_total",
            self.labels(err, status="500"),
            lambda t: total_rps * cycle_percent("high_error_rate", t) / 100,
        )
        lat = CYCLE_APPS["high_latency"]
        yield self.counter("http_request_duration_seconds_count", self.labels(lat), lambda t: total_rps)
        yield self.counter(
            "http_request_duration_seconds_sum",
            self.labels(lat),
            lambda t: total_rps * cycle_percent("high_latency", t) / 1000,
        )
        yield from self.overview_series()

    def overview_series(self) -> Iterator[Series]:
        for app, values in OVERVIEW_UP.items():
            for i, value in enumerate(values):
                yield self.up(app, OVERVIEW_WORKSPACE, value, instance=str(i))
        for app, sizes in OVERVIEW_MEMORY.items():
            for i, mib in enumerate(sizes):
                labels = self.labels(app, OVERVIEW_WORKSPACE, pod=f"{app}-{i}", container="app")
                yield Series("container_memory_working_set_bytes", labels, [(t, mib * MIB) for t in self.times()])

    def overview_usage(self, since: int, until: int) -> tuple[float, float, float, float]:
        """(up samples, memory byte-samples) in [since, until], then (instances up, bytes) at ``until``."""
        times = [t for t in self.times() if since <= t <= until]
        up_now = sum(sum(v) for v in OVERVIEW_UP.values())
        bytes_now = sum(sum(v) for v in OVERVIEW_MEMORY.values()) * MIB
        return up_now * len(times), bytes_now * len(times), up_now, bytes_now
