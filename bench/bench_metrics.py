"""GetAppMetrics latency vs the latency of each query_range it makes, measured side by side in one run.

    .venv/bin/python bench/bench_metrics.py [--rounds 200] [--periods 1h,24h,7d,30d]

A real Prometheus over the month of backfilled test data (testing/metrics_data.py) and a real
monitoring-server process. For each period, rounds are interleaved: one GetAppMetrics over gRPC, then
each of its six range queries alone through the same client class the server uses, then all six as one
request (``Queries.range_batch``, what GetAppMetrics sends with ``app_metrics.RANGE_BATCHES = 1``). Issue 4's
goal was GetAppMetrics p50 ≤ 1.2 × the slowest single query's p50; issue 14's is GetAppMetrics p50 ≤ 2 × the
floor's six-at-once p50 + GetAppHealth p50 (both printed; bench/bench_prom_client.py is the side-by-side).

Each round also measures the machine's floor: the same six requests over six bare keep-alive sockets
(a minimal HTTP/1.1 exchange, no client library, no gRPC), one alone and six at once. No client can make
six concurrent queries cost less, relative to one, than this floor does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import statistics
import sys
import tempfile
import time
import urllib.parse

import grpc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.metrics.app_metrics import PERIODS, UNITS, MetricsService, window
from server.metrics.prometheus import PrometheusClient
from server.metrics.promql import Queries
from server.store.records import App
from testing import metrics_data as data
from testing.metrics_data import seed_apps
from testing.platform import Tenant, new_tenant
from testing.procs import running_server, unmetered
from testing.prometheus import running_prometheus

LOG_LEVEL = "INFO"
NAMES = {"1h": pb.PERIOD_1H, "6h": pb.PERIOD_6H, "24h": pb.PERIOD_24H, "7d": pb.PERIOD_7D, "30d": pb.PERIOD_30D}


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p95(samples: list[float]) -> float:
    return sorted(samples)[int(0.95 * (len(samples) - 1))] * 1000


class BareHttp:
    """Keep-alive sockets speaking the least HTTP/1.1 Prometheus answers: a measuring instrument, not a client."""

    def __init__(self, url: str, connections: int):
        parsed = urllib.parse.urlsplit(url)
        self._address = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._size = connections
        self._streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def open(self) -> None:
        self._streams = [await asyncio.open_connection(*self._address) for _ in range(self._size)]

    async def close(self) -> None:
        for _, writer in self._streams:
            writer.close()

    async def query_range(self, slot: int, form: dict[str, str]) -> None:
        reader, writer = self._streams[slot]
        body = urllib.parse.urlencode(form).encode()
        head = f"POST /api/v1/query_range HTTP/1.1\r\nHost: prometheus\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Content-Type: application/x-www-form-urlencoded\r\n\r\n" + body)
        status, *headers = (await reader.readuntil(b"\r\n\r\n")).decode().lower().split("\r\n")
        lengths = [int(h.split(":")[1]) for h in headers if h.startswith("content-length:")]
        body = await reader.readexactly(lengths[0]) if lengths else await self._chunked(reader)
        reply = json.loads(body)
        assert " 200 " in status and reply["data"]["result"], reply

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        # Go's server streams bodies over 4 KiB as chunks.
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append((await reader.readexactly(size + 2))[:-2])
        await reader.readuntil(b"\r\n")  # the empty trailer
        return b"".join(parts)


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
    bare = BareHttp(prometheus_url, len(UNITS))
    await bare.open()
    bare_single: dict[str, list[float]] = {name: [] for name in UNITS}
    bare_six: list[float] = []
    # One pool per query: what httpcore's pool costs when six requests arrive together (docs/benchmarks.md).
    pools = [PrometheusClient(prometheus_url, 10.0) for _ in UNITS]
    six_pools: list[float] = []
    # CPU seconds of this process (client side only: Prometheus and the server are other processes).
    cpu: dict[str, list[float]] = {"one pool": [], "six pools": [], "bare sockets": []}
    # The app with a month of data (testing/metrics_data.py).
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
            started, used = time.perf_counter(), time.process_time()
            await capability.app_metrics(app, period)
            in_process.append(time.perf_counter() - started)
            cpu["one pool"].append(time.process_time() - used)
            started = time.perf_counter()
            await owner.monitoring.GetAppHealth(health, metadata=owner.auth)
            baseline.append(time.perf_counter() - started)
            span = window(period, time.time())
            for name in UNITS:
                promql = queries.range_query(name, data.WORKSPACE, data.FULL, span.step_s)
                started = time.perf_counter()
                await client.query_range(promql, start=span.start_s, end=span.end_s, step=span.step_s)
                single[name].append(time.perf_counter() - started)
            # All six expressions in one request, told apart by a label (the service's batch of six).
            parts = {name: queries.range_query(name, data.WORKSPACE, data.FULL, span.step_s) for name in UNITS}
            promql = queries.range_batch(list(UNITS), data.WORKSPACE, data.FULL, span.step_s)
            started = time.perf_counter()
            found = await client.query_range(promql, start=span.start_s, end=span.end_s, step=span.step_s)
            combined.append(time.perf_counter() - started)
            assert len(found) == len(UNITS)
            forms = {name: _form(parts[name], span.start_s, span.end_s, span.step_s) for name in UNITS}
            for name in UNITS:
                started = time.perf_counter()
                await bare.query_range(0, forms[name])
                bare_single[name].append(time.perf_counter() - started)
            started, used = time.perf_counter(), time.process_time()
            await asyncio.gather(*(bare.query_range(slot, forms[name]) for slot, name in enumerate(UNITS)))
            bare_six.append(time.perf_counter() - started)
            cpu["bare sockets"].append(time.process_time() - used)
            started, used = time.perf_counter(), time.process_time()
            await asyncio.gather(
                *(
                    pool.query_range(parts[name], start=span.start_s, end=span.end_s, step=span.step_s)
                    for pool, name in zip(pools, UNITS, strict=True)
                )
            )
            six_pools.append(time.perf_counter() - started)
            cpu["six pools"].append(time.process_time() - used)
    finally:
        for one in (client, *pools):
            await one.close()
        await bare.close()
    slowest = max(single, key=lambda n: p50(single[n]))
    figures = {"rpc_p50": p50(rpc), "rpc_p95": p95(rpc), "slowest_p50": p50(single[slowest])}
    figures["ratio"] = figures["rpc_p50"] / figures["slowest_p50"]
    figures["sum_p50"] = sum(p50(v) for v in single.values())
    figures["in_process_p50"] = p50(in_process)
    figures["baseline_p50"] = p50(baseline)
    bare_slowest = max(p50(v) for v in bare_single.values())
    figures["floor_ratio"] = p50(bare_six) / bare_slowest
    length, step = PERIODS[period]
    print(
        f"{period_name:>4} ({length // step + 1} points): GetAppMetrics p50 {figures['rpc_p50']:.2f} ms"
        f" (p95 {figures['rpc_p95']:.2f}); slowest single query_range ({slowest}) p50 {figures['slowest_p50']:.2f} ms;"
        f" ratio {figures['ratio']:.2f} (issue 4's goal ≤ 1.2);"
        f" issue 14's goal 2 × floor six + GetAppHealth = {2 * p50(bare_six) + figures['baseline_p50']:.2f} ms\n"
        f"       the six in sequence (sum of p50s) {figures['sum_p50']:.2f} ms;"
        f" the capability in-process (batched, no gRPC, no cache) p50 {figures['in_process_p50']:.2f} ms;"
        f" GetAppHealth (gRPC + auth + store, no Prometheus) p50 {figures['baseline_p50']:.2f} ms;"
        f" one combined query of all six p50 {p50(combined):.2f} ms\n"
        f"       floor (bare sockets, no client library, no gRPC): six concurrent p50 {p50(bare_six):.2f} ms,"
        f" slowest single p50 {bare_slowest:.2f} ms, ratio {figures['floor_ratio']:.2f}\n"
        f"       six concurrent through six pools (one query each) p50 {p50(six_pools):.2f} ms;"
        f" client CPU per six queries p50: "
        + ", ".join(f"{label} {p50(samples):.2f} ms" for label, samples in cpu.items())
    )
    for name, samples in single.items():
        print(f"       {name:<16} p50 {p50(samples):6.2f} ms  p95 {p95(samples):6.2f} ms")
    return figures


def _form(promql: str, start: int, end: int, step: int) -> dict[str, str]:
    return {"query": promql, "start": str(start), "end": str(end), "step": str(step)}


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
                **unmetered(work),
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
