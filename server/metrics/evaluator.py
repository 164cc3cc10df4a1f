"""The periodic evaluator: every ``eval_interval_s`` it samples every app from Prometheus with a constant
number of grouped queries, then hands the samples to its listeners (health snapshots, alert rules).

The number of PromQL queries per tick is ``len(GROUPED_TEMPLATES)`` whatever the number of apps: each
query is grouped ``by (workspace_id, app_id)`` and the results are joined with the store's apps here.
When Prometheus cannot be queried the listeners still get a Tick, with ``error`` set and no samples,
so health turns ``unknown`` and alert rules can skip the tick instead of resolving everything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from server.convert import NS_PER_S, now_ns
from server.errors import ServiceError
from server.metrics.prometheus import PrometheusClient, Sample, finite
from server.metrics.promql import Queries
from server.store import Store
from server.store.base import LeaseLost
from server.store.records import App, Fence

log = logging.getLogger("server.metrics.evaluator")


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
    # Every app known to the store at this tick (also when ``error`` is set).
    apps: Sequence[App] = ()
    # PromQL queries this tick sent (the same for 1 app and 10,000), and how long sampling took.
    queries: int = 0
    duration_s: float = 0.0
    # The evaluator lease this tick ran under; listeners pass it to their store writes, which the store
    # refuses once another replica holds the lease (None: a single process, nothing to fence).
    fence: Fence | None = None


class TickListener(Protocol):
    async def on_tick(self, tick: Tick) -> None: ...


class Evaluator:
    """Samples every app with grouped instant queries, then notifies the listeners; ``run`` repeats it."""

    def __init__(
        self,
        store: Store,
        prometheus: PrometheusClient,
        queries: Queries,
        listeners: Sequence[TickListener],
        *,
        interval_s: float,
        fence: Fence | None = None,
        clock: Callable[[], int] = now_ns,
    ):
        self._store = store
        self._prometheus = prometheus
        self._queries = queries
        self._listeners = list(listeners)
        self._interval_s = interval_s
        self._fence = fence
        self._clock = clock

    async def run(self) -> None:
        """Evaluates now, then every ``interval_s`` on a fixed schedule; a slow tick skips missed slots."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                await self.evaluate()
            except Exception:  # the store failing, say: log it and try again next tick, never stop the loop
                log.exception("evaluation failed")
            next_at += self._interval_s
            if next_at < loop.time():  # the tick overran: realign instead of running back to back
                next_at = loop.time() + self._interval_s
            await asyncio.sleep(next_at - loop.time())

    async def evaluate(self) -> Tick:
        """One tick: sample, then let every listener see the result. Returns the tick (benchmarks, tests)."""
        tick = await self.sample()
        await self._notify(tick)
        return tick

    async def sample(self) -> Tick:
        started = time.perf_counter()
        tick_ns = self._clock()
        apps = await self._store.list_all_apps()
        names = list(self._queries.grouped_templates)
        try:
            results = await self._prometheus.query_many(
                [self._queries.grouped_query(n) for n in names], at=tick_ns / NS_PER_S
            )
        except ServiceError as error:
            log.warning("evaluation at %d skipped: %s (%s)", tick_ns, error.message, error.detail or "no detail")
            return Tick(
                tick_ns,
                (),
                error=error.message,
                apps=apps,
                queries=len(names),
                duration_s=time.perf_counter() - started,
                fence=self._fence,
            )
        by_metric = {name: self._by_app(samples) for name, samples in zip(names, results, strict=True)}
        samples = [_app_sample(app, by_metric) for app in apps]
        duration_s = time.perf_counter() - started
        return Tick(tick_ns, samples, apps=apps, queries=len(names), duration_s=duration_s, fence=self._fence)

    def _by_app(self, samples: Sequence[Sample]) -> dict[tuple[str, str], float | None]:
        values: dict[tuple[str, str], float | None] = {}
        for sample in samples:
            key = self._queries.app_key(sample.labels)
            if key is not None:
                values[key] = finite(sample.value)
        return values

    async def _notify(self, tick: Tick) -> None:
        # In list order, one at a time: listeners write to the store in their own transactions, and the
        # store's single connection cannot interleave two of them.
        for listener in self._listeners:
            try:
                await listener.on_tick(tick)
            except LeaseLost:  # another replica took over: nothing of this tick may land
                log.warning("tick %d dropped: the evaluator lease passed to another replica", tick.now_ns)
                return
            except Exception:  # one listener's failure must not stop the others or the loop
                log.exception("listener %s failed on tick %d", type(listener).__name__, tick.now_ns)


def _app_sample(app: App, by_metric: Mapping[str, Mapping[tuple[str, str], float | None]]) -> AppSample:
    key = (app.workspace_id, app.id)

    def value(name: str) -> float | None:
        return by_metric.get(name, {}).get(key)

    def count(name: str) -> int | None:
        found = value(name)
        return None if found is None else round(found)

    return AppSample(
        app=app,
        cpu_percent=value("cpu"),
        memory_mib=value("memory"),
        request_rate=value("request_rate"),
        error_rate_percent=value("error_rate"),
        latency_ms=value("latency"),
        instances_up=count("instances_up"),
        instances_total=count("instances_total"),
    )
