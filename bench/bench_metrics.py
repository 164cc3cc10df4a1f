"""GetAppMetrics latency vs the latency of each query_range it makes, measured side by side in one run.

    .venv/bin/python bench/bench_metrics.py [--rounds 200] [--periods 1h,24h,7d,30d]

A real Prometheus over the month of backfilled test data (tests/metrics/data.py) and a real
monitoring-server process. For each period, rounds are interleaved: one GetAppMetrics over gRPC, then
each of its six query_range calls alone through the same client class the server uses. The goal is
GetAppMetrics p50 ≤ 1.2 × the slowest single query's p50 (the six run concurrently, not one after another).
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import sys
import tempfile
import time

import grpc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.metrics import PERIODS, UNITS, MetricsService, window
from server.prometheus import PrometheusClient
from server.queries import Queries
from server.store.records import App
from tests.metrics import data
from tests.metrics.conftest import seed_apps
from tests.support.platform import Tenant, new_tenant
from tests.support.procs import running_server
from tests.support.prometheus import running_prometheus

LOG_LEVEL = "INFO"
NAMES = {"1h": pb.PERIOD_1H, "6h": pb.PERIOD_6H, "24h": pb.PERIOD_24H, "7d": pb.PERIOD_7D, "30d": pb.PERIOD_30D}


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p95(samples: list[float]) -> float:
    return sorted(samples)[int(0.95 * (len(samples) - 1))] * 1000


async def bench_period(owner: Tenant, prometheus_url: str, period_name: str, rounds: int) -> dict[str, float]:
    period = NAMES[period_name]
    queries = Queries()
    client = PrometheusClient(prometheus_url, 10.0)
    capability = MetricsService(client, queries)
    app = App(data.FULL, data.WORKSPACE, data.FULL, data.FULL, 512, 1, 0)
    rpc: list[float] = []
    in_process: list[float] = []
    baseline: list[float] = []
    single: dict[str, list[float]] = {name: [] for name in UNITS}
    combined: list[float] = []
    # The app with a month of data (tests/metrics/data.py).
    request = pb.GetAppMetricsRequest(workspace_id=data.WORKSPACE, app_id=data.FULL, period=period)
    # The same validation, auth and store reads, without Prometheus: what any RPC costs here.
    health = pb.GetAppHealthRequest(workspace_id=data.WORKSPACE, app_id=data.FULL)
    try:
        for _ in range(5):  # warm both paths (connections, Prometheus caches)
            await owner.monitoring.GetAppMetrics(request, metadata=owner.auth)
        for _ in range(rounds):
            started = time.perf_counter()
            reply = await owner.monitoring.GetAppMetrics(request, metadata=owner.auth)
            rpc.append(time.perf_counter() - started)
            assert reply.memory.values, "the benchmark must measure real data"
            started = time.perf_counter()
            await capability.app_metrics(app, period)
            in_process.append(time.perf_counter() - started)
            started = time.perf_counter()
            await owner.monitoring.GetAppHealth(health, metadata=owner.auth)
            baseline.append(time.perf_counter() - started)
            span = window(period, time.time())
            for name in UNITS:
                promql = queries.range_query(name, data.WORKSPACE, data.FULL, span.step_s)
                started = time.perf_counter()
                await client.query_range(promql, start=span.start_s, end=span.end_s, step=span.step_s)
                single[name].append(time.perf_counter() - started)
            # The alternative not taken: all six expressions in one request, told apart by a label.
            parts = {name: queries.range_query(name, data.WORKSPACE, data.FULL, span.step_s) for name in UNITS}
            promql = " or ".join(f'label_replace({q}, "series", "{name}", "", "")' for name, q in parts.items())
            started = time.perf_counter()
            found = await client.query_range(promql, start=span.start_s, end=span.end_s, step=span.step_s)
            combined.append(time.perf_counter() - started)
            assert len(found) == len(UNITS)
    finally:
        await client.close()
    slowest = max(single, key=lambda n: p50(single[n]))
    figures = {"rpc_p50": p50(rpc), "rpc_p95": p95(rpc), "slowest_p50": p50(single[slowest])}
    figures["ratio"] = figures["rpc_p50"] / figures["slowest_p50"]
    figures["sum_p50"] = sum(p50(v) for v in single.values())
    figures["in_process_p50"] = p50(in_process)
    figures["baseline_p50"] = p50(baseline)
    length, step = PERIODS[period]
    print(
        f"{period_name:>4} ({length // step + 1} points): GetAppMetrics p50 {figures['rpc_p50']:.2f} ms"
        f" (p95 {figures['rpc_p95']:.2f}); slowest single query_range ({slowest}) p50 {figures['slowest_p50']:.2f} ms;"
        f" ratio {figures['ratio']:.2f} (goal ≤ 1.2)\n"
        f"       the six in sequence (sum of p50s) {figures['sum_p50']:.2f} ms;"
        f" the capability in-process (six concurrent, no gRPC) p50 {figures['in_process_p50']:.2f} ms;"
        f" GetAppHealth (gRPC + auth + store, no Prometheus) p50 {figures['baseline_p50']:.2f} ms;"
        f" one combined query of all six p50 {p50(combined):.2f} ms"
    )
    for name, samples in single.items():
        print(f"       {name:<16} p50 {p50(samples):6.2f} ms  p95 {p95(samples):6.2f} ms")
    return figures


async def main(rounds: int, periods: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        work = pathlib.Path(tmp)
        now = int(time.time())
        _, series = data.dataset(now)
        started = time.perf_counter()
        with running_prometheus(work, series) as prometheus:
            print(
                f"backfilled {sum(len(s.samples) for s in series)} samples, Prometheus ready in"
                f" {time.perf_counter() - started:.1f} s"
            )
            env = {
                "MONITORING_PROMETHEUS_URL": prometheus.url,
                "MONITORING_EVAL_INTERVAL": "30",
                "MONITORING_LOG_LEVEL": LOG_LEVEL,
            }
            with running_server(work, work / "monitoring.db", env) as server:
                async with grpc.aio.insecure_channel(server.addr) as channel:
                    owner = await new_tenant(channel, data.WORKSPACE)
                    await seed_apps(owner)
                    print(f"rounds per period: {rounds} (GetAppMetrics and each single query, interleaved)")
                    for name in periods:
                        await bench_period(owner, prometheus.url, name, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--periods", default="1h,6h,24h,7d,30d")
    args = parser.parse_args()
    asyncio.run(main(min(args.rounds, 5000), args.periods.split(",")))
