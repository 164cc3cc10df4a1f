"""The rules engine's tick and GetWorkspaceOverview's work for 1 app and for N apps, side by side in one run.

    .venv/bin/python bench/bench_alerts.py [--apps 5000] [--ticks 5]

A real Prometheus holds CPU, memory, traffic and ``up`` series for every app (backfilled, one sample per
minute around now; every other app's memory sits at 90 % of its limit, so it breaches the default
high_memory rule); a real SQLite file holds the apps. The engine is the server's own ``RulesEngine``
with the default rules (4 types, one hold each: 4 queries per tick). HTTP requests are counted on the
wire. Printed per app count in the store: PromQL queries per tick, the first tick (which fires every
breaching app's alert in one transaction), the median of the following ticks (nothing changes, but the
open alerts make the memory query ask for the window maximum too), and that median as a multiple of the
evaluator's own sampling (its 7 grouped instant queries) measured just before each tick; then the overview
of one workspace of 100 apps (median of 20 calls, 4 instant queries each). Prometheus holds every app's
series in both runs, so the two rows differ only in the store side of the work.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from server.alerts.engine import RulesEngine
from server.config import AlertSettings, CostSettings
from server.metrics.evaluator import Evaluator
from server.metrics.overview import WorkspaceOverview
from server.metrics.prometheus import PrometheusClient
from server.metrics.promql import Queries
from server.store import open_sqlite
from testing.fleet import fleet_ids, seed_fleet_store
from testing.prometheus import CountingTransport, Series, running_prometheus

APPS_PER_WORKSPACE = 100
MIB = 1048576


def series_for(count: int, now: int) -> Iterator[Series]:
    times = list(range(now // 60 * 60 - 1800, now + 1200, 60))
    t0 = times[0]
    for i, (ws, app) in enumerate(fleet_ids(count)):
        labels = {"workspace_id": ws, "app_id": app}
        pod = {**labels, "pod": f"{app}-0", "container": "app"}
        memory = (0.9 if i % 2 == 0 else 0.4) * 512 * MIB
        yield Series("container_cpu_usage_seconds_total", pod, [(t, 0.25 * (t - t0)) for t in times])
        yield Series("container_memory_working_set_bytes", pod, [(t, memory) for t in times])
        yield Series("http_requests_total", {**labels, "status": "200"}, [(t, 9.8 * (t - t0)) for t in times])
        yield Series("http_requests_total", {**labels, "status": "500"}, [(t, 0.2 * (t - t0)) for t in times])
        yield Series("http_request_duration_seconds_sum", labels, [(t, 1.2 * (t - t0)) for t in times])
        yield Series("http_request_duration_seconds_count", labels, [(t, 10.0 * (t - t0)) for t in times])
        yield Series("up", {**labels, "instance": "0"}, [(t, 1.0) for t in times])


async def measure_engine(url: str, db: pathlib.Path, ticks: int) -> tuple[int, float, list[float], int, list[float]]:
    """The engine's ticks, each right after the evaluator's own sampling (its 7 instant queries) for scale."""
    store = await open_sqlite(str(db))
    transport = CountingTransport()
    client = PrometheusClient(url, 60.0, transport=transport)
    engine = RulesEngine(store, client, Queries(), AlertSettings())
    evaluator = Evaluator(store, client, Queries(), [], interval_s=30)
    durations, sampling = [], []
    requests = 0
    try:
        for _ in range(ticks):
            tick = await evaluator.sample()
            sampling.append(tick.duration_s)
            before = transport.requests
            started = time.perf_counter()
            await engine.on_tick(tick)
            durations.append(time.perf_counter() - started)
            requests += transport.requests - before
        open_alerts = len(await store.open_alerts())
    finally:
        await client.close()
        await store.close()
    return requests // ticks, durations[0], durations[1:], open_alerts, sampling


async def measure_overview(url: str, db: pathlib.Path, calls: int) -> tuple[float, int]:
    store = await open_sqlite(str(db))
    client = PrometheusClient(url, 60.0)
    overview = WorkspaceOverview(store, client, Queries(), CostSettings(sample_interval_s=60), stale_after_s=60)
    durations = []
    try:
        for _ in range(calls):
            started = time.perf_counter()
            reply = await overview.overview("ws_0000")
            durations.append(time.perf_counter() - started)
    finally:
        await client.close()
        await store.close()
    return statistics.median(durations), reply.active_apps


async def main(count: int, ticks: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        work = pathlib.Path(tmp)
        started = time.perf_counter()
        with running_prometheus(work, series_for(count, int(time.time()))) as prometheus:
            print(f"{count} apps × 7 series backfilled, Prometheus ready in {time.perf_counter() - started:.1f} s")
            for apps in (1, count):
                db = work / f"apps-{apps}.db"
                await seed_fleet_store(db, apps)
                queries, first, rest, fired, sampling = await measure_engine(prometheus.url, db, ticks)
                median_rest, median_sampling = statistics.median(rest), statistics.median(sampling)
                print(
                    f"{apps:>6} apps: {queries} PromQL queries per tick; first tick {first:.3f} s"
                    f" ({fired} alerts fired in one transaction); median of the next {len(rest)}"
                    f" ticks {median_rest:.3f} s = {median_rest / median_sampling:.1f}× the evaluator's own"
                    f" sampling ({median_sampling:.3f} s)"
                )
            median, active = await measure_overview(prometheus.url, work / f"apps-{count}.db", 20)
            print(f"overview of a {APPS_PER_WORKSPACE}-app workspace ({active} active): median {median * 1000:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=5000)
    parser.add_argument("--ticks", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(min(args.apps, 100_000), max(2, min(args.ticks, 100))))
