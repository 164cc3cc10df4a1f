"""The same RPC called directly over gRPC and through the REST edge, side by side in one run.

    .venv/bin/python bench/bench_edge.py [--seconds 10] [--concurrency 50] [--alerts 20] [--no-access-log]

A real monitoring-server process (SQLite file) and a real monitoring-edge process on loopback. The RPC
is ListAlerts over a workspace holding ``--alerts`` alerts (rows in the server's SQLite file, so the reply
carries real rows). Direct: a grpc.aio client keeps ``--concurrency`` calls in flight on one channel and
records each call's latency. Edge: ``wrk`` (C, not the bottleneck) keeps as many HTTP/1.1 connections
busy on GET /api/v1/workspaces/{ws}/monitoring/alerts. Both phases run for the same time after the same
warm-up. Goal: edge throughput ≥ 0.75 × direct, edge p50 ≤ 1.5 × direct.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import grpc
import uvloop

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc as pb_grpc
from testing import alert_rows
from testing.edge import running_edge
from testing.platform import Tenant, new_tenant
from testing.procs import cpu_seconds, running_server, unmetered

_WRK_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_WRK_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


async def _seed(channel: grpc.aio.Channel, db: pathlib.Path, alerts: int) -> Tenant:
    tenant = await new_tenant(channel)
    app = await tenant.add_app(name="worker-service")
    # Real rows in the file the server reads.
    alert_rows.insert_alert_history(
        db, workspace_id=tenant.workspace_id, app_id=app.id, count=alerts, now_ns=time.time_ns()
    )
    return tenant


async def _direct(addr: str, request: pb.ListAlertsRequest, auth: tuple, seconds: float, concurrency: int):  # type: ignore[no-untyped-def,type-arg]
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = pb_grpc.MonitoringServiceStub(channel)
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                await stub.ListAlerts(request, metadata=auth, timeout=10)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


def _wrk(url: str, key: str, seconds: float, concurrency: int) -> tuple[float, float, float]:
    argv = [
        shutil.which("wrk") or "/usr/bin/wrk",
        "-t2",
        f"-c{concurrency}",
        f"-d{int(seconds)}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {key}",
        url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"the edge answered {errors.group(1)} non-2xx responses:\n{out}")
    latency = {p: float(v) * _UNITS[u] for p, v, u in _WRK_LATENCY.findall(out)}
    rps = _WRK_RPS.search(out)
    assert rps is not None, out
    return float(rps.group(1)), latency["50"], latency["99"]


class _Cpu:
    """CPU share (in cores) each process used over one phase: shows which side was saturated."""

    def __init__(self, **pids: int):
        self.pids = pids

    def __enter__(self) -> _Cpu:
        self.start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.started
        self.cores = {name: (cpu_seconds(pid) - self.start[name]) / elapsed for name, pid in self.pids.items()}

    def __str__(self) -> str:
        return ", ".join(f"{name} {cores:.2f}" for name, cores in self.cores.items())


def _pct(samples: list[float], q: float) -> float:
    return sorted(samples)[int(q * (len(samples) - 1))] * 1000


async def main(seconds: float, concurrency: int, alerts: int, access_log: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp:
        work = pathlib.Path(tmp)
        db = work / "monitoring.db"
        env = {"MONITORING_LOG_LEVEL": "WARNING", **unmetered(work)}
        with running_server(work, db, env) as server:
            async with grpc.aio.insecure_channel(server.addr) as channel:
                tenant = await _seed(channel, db, alerts)
            # The access log is one INFO line per request (to the edge's log file here); --no-access-log drops it.
            edge_env = {"MONITORING_LOG_LEVEL": "INFO", "MONITORING_EDGE_ACCESS_LOG": str(access_log).lower()}
            with running_edge(work, server.addr, edge_env) as edge:
                request = pb.ListAlertsRequest(workspace_id=tenant.workspace_id)
                url = f"{edge.url}/api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts"
                # Warm-up both paths (connections, caches), then measure each for the same time.
                await _direct(server.addr, request, tenant.auth, 2, concurrency)
                _wrk(url, tenant.key, 2, concurrency)
                with _Cpu(server=server.pid, client=os.getpid()) as direct_cpu:
                    direct_rps, samples = await _direct(server.addr, request, tenant.auth, seconds, concurrency)
                with _Cpu(server=server.pid, edge=edge.pid) as edge_cpu:
                    edge_rps, edge_p50, edge_p99 = _wrk(url, tenant.key, seconds, concurrency)
    direct_p50, direct_p99 = statistics.median(samples) * 1000, _pct(samples, 0.99)
    log = "on" if access_log else "off"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"ListAlerts ({alerts} alerts), concurrency {concurrency}, {seconds:g} s per side, edge access log {log}")
    print(f"{'':8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'direct':8}{direct_rps:>10.0f}{direct_p50:>10.2f}{direct_p99:>10.2f}")
    print(f"{'edge':8}{edge_rps:>10.0f}{edge_p50:>10.2f}{edge_p99:>10.2f}")
    print(f"load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} cores")
    print(f"CPU cores used: direct phase: {direct_cpu}; edge phase: {edge_cpu} (wrk not counted)")
    print(f"ratios: throughput edge/direct = {edge_rps / direct_rps:.2f} (goal ≥ 0.75); ", end="")
    print(f"p50 edge/direct = {edge_p50 / direct_p50:.2f} (goal ≤ 1.5); p99 edge/direct = {edge_p99 / direct_p99:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--alerts", type=int, default=20)
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    args = parser.parse_args()
    # The same event loop as the edge's grpc.aio client, so that both paths use the same client stack.
    uvloop.run(main(args.seconds, args.concurrency, args.alerts, args.access_log))
