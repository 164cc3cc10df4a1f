"""One evaluator tick over 10,000 apps: time, and PromQL queries sent, compared with a tick over 1 app.

    .venv/bin/python bench/bench_health.py [--apps 10000] [--ticks 5]

A real Prometheus holds the six metrics of every app (backfilled, one sample every 2 minutes around now);
a real SQLite file holds the apps. The evaluator and the health listener are the server's own classes;
HTTP requests are counted on the wire by the transport. Printed: queries per tick for 1 app and for all,
and the median tick split into sampling (the grouped queries + join) and the health listener (rules +
one transaction of snapshots + pruning); the first tick's listener also reads the uptime history (two
more grouped queries, only when apps are seen up for the first time).
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

from server.config import HealthSettings
from server.metrics.evaluator import Evaluator
from server.metrics.health import HealthRecorder, UptimeHistory
from server.metrics.prometheus import PrometheusClient
from server.metrics.promql import Queries
from server.store import open_sqlite
from testing.fleet import fleet_ids, seed_fleet_store
from testing.prometheus import CountingTransport, Series, running_prometheus


def series_for(count: int, now: int) -> Iterator[Series]:
    """Per app: 2 instances (one down for every 10th app), traffic with 2 % errors and 120 ms latency."""
    times = list(range(now // 60 * 60 - 360, now + 1200, 120))
    t0 = times[0]
    for i, (ws, app) in enumerate(fleet_ids(count)):
        labels = {"workspace_id": ws, "app_id": app}
        container = {**labels, "container": "app"}
        yield Series("container_cpu_usage_seconds_total", container, [(t, 0.25 * (t - t0)) for t in times])
        yield Series("container_memory_working_set_bytes", container, [(t, 300 * 1048576.0) for t in times])
        yield Series("http_requests_total", {**labels, "status": "200"}, [(t, 9.8 * (t - t0)) for t in times])
        yield Series("http_requests_total", {**labels, "status": "500"}, [(t, 0.2 * (t - t0)) for t in times])
        yield Series("http_request_duration_seconds_sum", labels, [(t, 1.2 * (t - t0)) for t in times])
        yield Series("http_request_duration_seconds_count", labels, [(t, 10.0 * (t - t0)) for t in times])
        yield Series("up", {**labels, "instance": "0"}, [(t, 1.0) for t in times])
        yield Series("up", {**labels, "instance": "1"}, [(t, 0.0 if i % 10 == 0 else 1.0) for t in times])


async def measure(url: str, db: pathlib.Path, ticks: int) -> tuple[int, list[float], list[float], dict[str, int]]:
    store = await open_sqlite(str(db))
    transport = CountingTransport()
    client = PrometheusClient(url, 30.0, transport=transport)
    rules = HealthSettings()
    health = HealthRecorder(store, rules, UptimeHistory(client, Queries(), rules))
    evaluator = Evaluator(store, client, Queries(), [health], interval_s=30)
    sampling, listening = [], []
    statuses: dict[str, int] = {}
    try:
        for _ in range(ticks):
            before = transport.requests
            tick = await evaluator.sample()
            assert tick.error is None, tick.error
            assert transport.requests - before == tick.queries
            started = time.perf_counter()
            await health.on_tick(tick)
            listening.append(time.perf_counter() - started)
            sampling.append(tick.duration_s)
        for snapshot in await store.latest_snapshots():
            statuses[snapshot.status] = statuses.get(snapshot.status, 0) + 1
    finally:
        await client.close()
        await store.close()
    return transport.requests // ticks, sampling, listening, statuses


async def main(count: int, ticks: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-health-") as tmp:
        work = pathlib.Path(tmp)
        now = int(time.time())
        started = time.perf_counter()
        with running_prometheus(work, series_for(count, now)) as prometheus:
            print(f"{count} apps × 8 series backfilled, Prometheus ready in {time.perf_counter() - started:.1f} s")
            for apps in (1, count):
                db = work / f"apps-{apps}.db"
                await seed_fleet_store(db, apps)
                queries, sampling, listening, statuses = await measure(prometheus.url, db, ticks)
                total = [s + h for s, h in zip(sampling, listening, strict=True)]
                median = statistics.median
                print(
                    f"{apps:>6} apps: {queries} PromQL queries per tick; median tick {median(total):.3f} s"
                    f" (sampling {median(sampling):.3f} s, health listener {median(listening):.3f} s,"
                    f" max tick {max(total):.3f} s over {ticks}); statuses {statuses}; first tick's health listener"
                    f" (with the uptime history read) {listening[0]:.3f} s"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(min(args.apps, 100_000), min(args.ticks, 100)))
