"""The periodic evaluator: every ``eval_interval_s`` it samples every app from Prometheus with a constant
number of grouped queries, then hands the samples to its listeners (health snapshots, alert rules).

(Interface fixed here so health and alerts can be built side by side; the loop is wired in main.py.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

from server.store.records import App


@dataclasses.dataclass(frozen=True)
class AppSample:
    """One app's instant values at one tick. ``None`` means Prometheus had no (finite) value for it."""

    app: App
    # CPU usage summed over instances, in percent of one core.
    cpu_percent: float | None
    # Memory working set summed over instances, in MiB.
    memory_mib: float | None
    # Requests per second over the rate window.
    request_rate: float | None
    # Share of 5xx responses over the rate window, in percent.
    error_rate_percent: float | None
    # Average latency over the rate window, in milliseconds.
    latency_ms: float | None
    # Instances whose `up` is 1, and instances known to Prometheus (any `up` value).
    instances_up: int | None
    instances_total: int | None


@dataclasses.dataclass(frozen=True)
class Tick:
    """One evaluation: when it ran, and either samples for every app or the reason Prometheus failed."""

    now_ns: int
    samples: Sequence[AppSample]
    # Set when the backend could not be queried this tick; samples is then empty.
    error: str | None = None


class TickListener(Protocol):
    async def on_tick(self, tick: Tick) -> None: ...
