"""Which HTTP client under the Prometheus client: client CPU per query_range and GetAppMetrics p50, side by side.

    .venv/bin/python bench/bench_prom_client.py [--rounds 60] [--periods 1h,6h,24h,7d,30d] [--seconds 300]
        [--servers httpx/6,httpx2/6,httpx-aiohttp/6,httpx-aiohttp]

A real Prometheus over the month of backfilled test data (testing/metrics_data.py). Candidates:

- ``httpx``: httpx's default transport (httpcore's pool), what the service ran before issue 14;
- ``httpx2``: the httpx2 fork (httpcore2's pool), same API under another module name;
- ``httpx-aiohttp``: httpx over aiohttp's pool, as the service builds it (server.backend_body.http_client);
- ``aiohttp``: plain aiohttp with the same form, the same byte reading and the same parsing (the reference);
- the floor: the same six requests over six bare keep-alive sockets (bench/bench_metrics.py's ``BareHttp``).

Every httpx candidate runs under the service's own ``PrometheusClient`` and its request building (a pre-encoded
form, no cookie jar, no per-request log line, uncompressed answers), so only what runs underneath differs.

Part 1, in this process, on uvloop (the server's event loop): per round and period, each candidate (order
rotated every round) sends the six query_range calls of GetAppMetrics at once through a ``PrometheusClient``
(``aiohttp``: its reference client); ``time.process_time`` around the six is the client's CPU (Prometheus is
another process). One more row, ``httpx-aiohttp, 1 batch``, is what GetAppMetrics sends now: the six templates in
one query_range (``Queries.range_batch``), split back by the service's code; its CPU is that one request's. The
parsed results of every candidate and of the batch are compared byte for byte (as JSON) with plain aiohttp's six
in every round.

Part 2, through real monitoring-server processes: one per ``--servers`` entry ``CANDIDATE[/BATCHES]`` (an httpx
candidate, and how many requests GetAppMetrics sends its six range queries in: 6 is one each, as before issue
14; without it the service's default, ``app_metrics.RANGE_BATCHES``), each with the range cache off
(``[api] range_cache_entries = 0``, else GetAppMetrics would measure the cache). The server runs this very file
with ``--serve CANDIDATE BATCHES``, which puts the candidate under ``server.backend_body.http_client``
(``httpx2``: the Prometheus module's ``httpx`` name becomes ``httpx2``), sets the batches and starts
``server.main.cli``: a benchmark-only switch, nothing in the product reads it. Per round: GetAppMetrics then
GetAppHealth on each server, rotated.
Goal (issue 14): GetAppMetrics p50 ≤ 2 × the floor's six-at-once p50 + GetAppHealth p50, and client CPU
≤ 0.6 ms per query_range.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

import grpc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

CANDIDATES = ("httpx", "httpx2", "httpx-aiohttp")
SERVERS = "httpx/6,httpx2/6,httpx-aiohttp/6,httpx-aiohttp"
BATCHED = "httpx-aiohttp, 1 batch"  # part 1's row for GetAppMetrics's one request: CPU per request, not per six
TIMEOUT_S = 10.0


def serve(candidate: str, batches: str) -> None:
    """The server process of part 2: ``candidate`` under the service's HTTP clients, then the real server."""
    import httpx

    from server import backend_body

    adopted = backend_body.http_client
    if candidate == "httpx":
        # httpx's own transport (httpcore's pool) under the service's client: the same pool size and requests.
        def http_client(base_url: str, timeout_s: float, max_connections: int, **options: Any) -> httpx.AsyncClient:
            limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
            options["transport"] = httpx.AsyncHTTPTransport(limits=limits)
            return adopted(base_url, timeout_s, max_connections, **options)

        backend_body.http_client = http_client
    elif candidate == "httpx2":
        backend_body.http_client = httpx2_client  # type: ignore[assignment]
    elif candidate != "httpx-aiohttp":
        raise SystemExit(f"unknown candidate {candidate!r}")
    # Imported after the swap: they take http_client by name.
    from server.main import cli
    from server.metrics import app_metrics, prometheus

    if candidate == "httpx2":
        import httpx2

        prometheus.httpx = httpx2  # type: ignore[attr-defined]  # its URL and exceptions
    if batches != "default":
        app_metrics.RANGE_BATCHES = int(batches)
    sys.argv = [sys.argv[0]]
    cli()


def httpx2_client(base_url: str, timeout_s: float, max_connections: int, **options: Any) -> Any:
    """httpx2's client as server.backend_body.http_client builds httpx's: no per-request log line, no cookie jar."""
    import logging

    import httpx2

    class NoCookies(httpx2.Cookies):
        def extract_cookies(self, response: httpx2.Response) -> None:
            return None

    logging.getLogger("httpx2").setLevel(logging.WARNING)
    limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    client = httpx2.AsyncClient(
        base_url=base_url, headers=options.get("headers"), timeout=httpx2.Timeout(timeout_s), limits=limits
    )
    client._cookies = NoCookies()
    return client


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--serve":
    serve(sys.argv[2], sys.argv[3])
    raise SystemExit(0)

import aiohttp  # noqa: E402
import httpx  # noqa: E402
import httpx2  # noqa: E402
import uvloop  # noqa: E402
from bench_metrics import NAMES, BareHttp  # noqa: E402

from dooor.monitoring.v1 import monitoring_pb2 as pb  # noqa: E402
from server.metrics import app_metrics  # noqa: E402
from server.metrics import prometheus as prom  # noqa: E402
from server.metrics.app_metrics import UNITS, window  # noqa: E402
from server.metrics.promql import Queries  # noqa: E402
from testing import metrics_data as data  # noqa: E402
from testing.metrics_data import seed_apps  # noqa: E402
from testing.platform import Tenant, new_tenant  # noqa: E402
from testing.procs import ADMIN_TOKEN, Process, cpu_seconds, free_port, grpc_serving  # noqa: E402
from testing.prometheus import running_prometheus  # noqa: E402


def p50(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


class AiohttpReference:
    """Plain aiohttp with what PrometheusClient does around it: the form, the deadline, the cap, the parsing."""

    def __init__(self, base_url: str):
        self._url = base_url.rstrip("/") + "/api/v1/query_range"
        # The same request headers as the service's client (an uncompressed answer).
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=prom.API_POOL), headers={"Accept-Encoding": "identity"}
        )

    async def close(self) -> None:
        await self._session.close()

    async def query_range(self, promql: str, *, start: float, end: float, step: float) -> list[prom.Series]:
        form = {"query": promql, "start": str(start), "end": str(end), "step": str(step), "timeout": "10"}
        async with asyncio.timeout(TIMEOUT_S), self._session.post(self._url, data=form) as response:
            length = int(response.headers.get("content-length", "0") or 0)
            assert length <= prom.MAX_RESPONSE_BYTES
            body = await response.read()
            assert len(body) <= prom.MAX_RESPONSE_BYTES
            return prom._matrix(prom._envelope(response.status, response.headers, body, TIMEOUT_S))  # type: ignore[arg-type]


def client_for(candidate: str, url: str) -> Any:
    """A query_range client of ``candidate`` with the API pool's size."""
    if candidate == "aiohttp":
        return AiohttpReference(url)
    if candidate == "httpx":
        limits = httpx.Limits(max_connections=prom.API_POOL, max_keepalive_connections=prom.API_POOL)
        return prom.PrometheusClient(url, TIMEOUT_S, transport=httpx.AsyncHTTPTransport(limits=limits))
    client = prom.PrometheusClient(url, TIMEOUT_S)  # httpx-aiohttp: the service's own client
    if candidate == "httpx2":
        # Same class, its httpx.AsyncClient swapped for httpx2's (same API; only the success path runs here).
        client._http = httpx2_client(client.base_url, TIMEOUT_S, prom.API_POOL, headers=prom._HEADERS)
        client._urls = {path: httpx2.URL(str(url)) for path, url in client._urls.items()}
        client._post_request = functools.partial(httpx2.Request, "POST", headers=client._http.headers)
    return client


def canonical(found: list[prom.Series]) -> bytes:
    return json.dumps([[dict(s.labels), list(s.points)] for s in found], sort_keys=True).encode()


class Server(Process):
    """A monitoring-server process running this file with ``--serve candidate batches`` (spec ``candidate[/n]``)."""

    def __init__(self, spec: str, work: pathlib.Path, env: dict[str, str]):
        candidate, _, batches = spec.partition("/")
        if candidate not in CANDIDATES:
            raise SystemExit(f"unknown candidate {candidate!r} in --servers (one of {', '.join(CANDIDATES)})")
        self.addr = f"127.0.0.1:{free_port()}"
        settings = {
            "MONITORING_GRPC_ADDR": self.addr,
            "MONITORING_DB": str(work / f"{candidate}-{batches or 'default'}.db"),
            "MONITORING_ADMIN_TOKEN": ADMIN_TOKEN,
            "MONITORING_LOKI_URL": "http://127.0.0.1:9",
            **env,
        }
        argv = [sys.executable, str(pathlib.Path(__file__).resolve()), "--serve", candidate, batches or "default"]
        super().__init__(f"server-{candidate}-{batches or 'default'}", argv, work, settings)
        self.wait_until(lambda: grpc_serving(self.addr))
        requests = f"{batches} requests" if batches else f"{app_metrics.RANGE_BATCHES} requests (default)"
        self.candidate = f"{candidate}, {requests}"

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)


@contextlib.contextmanager
def servers(specs: list[str], work: pathlib.Path, env: dict[str, str]) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        for spec in specs:
            started.append(Server(spec, work, env))
        yield started
    finally:
        for server in started:
            server.stop()


async def one_batch(
    batcher: app_metrics.MetricsService, client: prom.PrometheusClient, queries: Queries, span: app_metrics.Window
) -> list[list[prom.Series]]:
    """The six series from one batched query_range, split back by the service's own code, in UNITS order."""
    names = tuple(UNITS)
    promql = queries.range_batch(names, data.WORKSPACE, data.FULL, span.step_s)
    found = await client.query_range(promql, start=span.start_s, end=span.end_s, step=span.step_s)
    split = batcher._split(names, found, promql)
    return [split[name] for name in names]


def rotated(items: Sequence[Any], by: int) -> list[Any]:
    by %= len(items)
    return [*items[by:], *items[:by]]


async def bench_period(
    period_name: str, rounds: int, deadline: float, url: str, tenants: dict[str, Tenant], procs: list[Server]
) -> dict[str, Any]:
    period = NAMES[period_name]
    queries = Queries()
    names = (*CANDIDATES, "aiohttp")
    clients = {name: client_for(name, url) for name in names}
    # The adopted client's one request of GetAppMetrics (the six templates in one batch), split as the service does.
    batcher = app_metrics.MetricsService(clients["httpx-aiohttp"], queries, range_batches=1)
    bare = BareHttp(url, len(UNITS))
    await bare.open()
    cpu: dict[str, list[float]] = {name: [] for name in (*names, BATCHED, "floor")}
    wall: dict[str, list[float]] = {name: [] for name in (*names, BATCHED, "floor")}
    served = [proc.candidate for proc in procs]
    rpc: dict[str, list[float]] = {name: [] for name in served}
    health: dict[str, list[float]] = {name: [] for name in served}
    server_cpu: dict[str, float] = dict.fromkeys(served, 0.0)
    mismatches = 0
    compared = 0
    request = pb.GetAppMetricsRequest(workspace_id=data.WORKSPACE, app_id=data.FULL, period=period)
    health_request = pb.GetAppHealthRequest(workspace_id=data.WORKSPACE, app_id=data.FULL)
    done = 0
    try:
        for index in range(rounds + 3):  # the first three warm connections and caches, and are not kept
            if time.monotonic() > deadline:
                break
            span = window(period, time.time())
            promqls = [queries.range_query(name, data.WORKSPACE, data.FULL, span.step_s) for name in UNITS]
            results: dict[str, list[bytes]] = {}
            for name in rotated([*names, BATCHED, "floor"], index):
                used, started = time.process_time(), time.perf_counter()
                if name == BATCHED:
                    found = await one_batch(batcher, clients["httpx-aiohttp"], queries, span)
                elif name == "floor":
                    forms = [
                        {"query": q, "start": str(span.start_s), "end": str(span.end_s), "step": str(span.step_s)}
                        for q in promqls
                    ]
                    await asyncio.gather(*(bare.query_range(slot, form) for slot, form in enumerate(forms)))
                else:
                    client = clients[name]
                    found = await asyncio.gather(
                        *(client.query_range(q, start=span.start_s, end=span.end_s, step=span.step_s) for q in promqls)
                    )
                elapsed, spent = time.perf_counter() - started, time.process_time() - used
                if name != "floor":
                    results[name] = [canonical(f) for f in found]
                    assert all(f and f[0].points for f in found), "the benchmark must measure real data"
                if index >= 3:
                    wall[name].append(elapsed)
                    cpu[name].append(spent)
            reference = results["aiohttp"]
            for name in (*CANDIDATES, BATCHED):
                compared += 1
                mismatches += results[name] != reference
            for proc in rotated(procs, index):
                tenant = tenants[proc.candidate]
                before = proc.cpu_s()
                started = time.perf_counter()
                reply = await tenant.monitoring.GetAppMetrics(request, metadata=tenant.auth)
                elapsed = time.perf_counter() - started
                server_cpu_used = proc.cpu_s() - before
                assert reply.memory.values, "the benchmark must measure real data"
                started = time.perf_counter()
                await tenant.monitoring.GetAppHealth(health_request, metadata=tenant.auth)
                health_elapsed = time.perf_counter() - started
                if index >= 3:
                    rpc[proc.candidate].append(elapsed)
                    health[proc.candidate].append(health_elapsed)
                    server_cpu[proc.candidate] += server_cpu_used
            done = max(0, index - 2)
    finally:
        for client in clients.values():
            await client.close()
        await bare.close()
    return {
        "period": period_name,
        "rounds": done,
        "cpu_per_query_ms": {name: p50(v) / (1 if name == BATCHED else len(UNITS)) for name, v in cpu.items()},
        "six_wall_p50_ms": {name: p50(v) for name, v in wall.items()},
        "rpc_p50_ms": {name: p50(v) for name, v in rpc.items()},
        "health_p50_ms": {name: p50(v) for name, v in health.items()},
        "server_cpu_per_rpc_ms": {name: server_cpu[name] / max(done, 1) * 1000 for name in served},
        "identical": f"{compared - mismatches}/{compared}",
    }


def report(figures: dict[str, Any]) -> None:
    floor = figures["six_wall_p50_ms"]["floor"]
    print(
        f"\n{figures['period']} ({figures['rounds']} rounds; parsed results identical to aiohttp's in"
        f" {figures['identical']} comparisons); floor six at once p50 {floor:.2f} ms"
    )
    print("  client                 CPU/query_range p50   six at once wall p50 (1 batch: the one request)")
    for name, value in figures["cpu_per_query_ms"].items():
        print(f"  {name:<22} {value:8.3f} ms {'':8} {figures['six_wall_p50_ms'][name]:8.2f} ms")
    print(f"  {'server with':<34} GetAppMetrics p50   GetAppHealth p50   goal (2×floor+health)   server CPU/call")
    for name in figures["rpc_p50_ms"]:
        rpc, health = figures["rpc_p50_ms"][name], figures["health_p50_ms"][name]
        goal = 2 * floor + health
        verdict = "met" if rpc <= goal else "missed"
        print(
            f"  {name:<34} {rpc:8.2f} ms {'':6} {health:8.2f} ms {'':4} {goal:8.2f} ms ({verdict})"
            f" {'':6} {figures['server_cpu_per_rpc_ms'][name]:6.2f} ms"
        )


async def main(rounds: int, periods: list[str], seconds: float, specs: list[str]) -> None:
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-prom-client-") as tmp:
        work = pathlib.Path(tmp)
        _, series = data.dataset(int(time.time()))
        with running_prometheus(work, series) as prometheus:
            config = work / "bench.toml"
            config.write_text("[api]\nrate_per_key = 0\nrange_cache_entries = 0\n")
            env = {
                "MONITORING_PROMETHEUS_URL": prometheus.url,
                "MONITORING_EVAL_INTERVAL": "30",
                "MONITORING_LOG_LEVEL": "INFO",
                "MONITORING_CONFIG_FILE": str(config),
            }
            with servers(specs, work, env) as procs:
                tenants: dict[str, Tenant] = {}
                channels = []
                try:
                    for proc in procs:
                        channel = grpc.aio.insecure_channel(proc.addr)
                        channels.append(channel)
                        tenants[proc.candidate] = await new_tenant(channel, data.WORKSPACE)
                        await seed_apps(tenants[proc.candidate])
                    every: list[dict[str, Any]] = []
                    for name in periods:
                        deadline = time.monotonic() + seconds
                        figures = await bench_period(name, rounds, deadline, prometheus.url, tenants, procs)
                        report(figures)
                        every.append(figures)
                finally:
                    for channel in channels:
                        await channel.close()
    print(f"\nload average after: {os.getloadavg()}")
    print("json: " + json.dumps(every))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--periods", default="1h,6h,24h,7d,30d")
    parser.add_argument("--seconds", type=float, default=300, help="the most one period may take")
    parser.add_argument("--servers", default=SERVERS, help="part 2's servers: CANDIDATE[/BATCHES],…")
    args = parser.parse_args()
    specs = args.servers.split(",")
    uvloop.run(main(min(args.rounds, 2000), args.periods.split(","), min(args.seconds, 1800), specs))
