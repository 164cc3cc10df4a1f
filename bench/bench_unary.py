"""The server's own CPU per unary call: GetAppHealth and ListAlerts at 50 concurrent direct gRPC calls.

    .venv/bin/python bench/bench_unary.py [--seconds 4] [--rounds 3] [--concurrency 50] [--alerts 20]
                                          [--compare DIR] [--no-bare]

A real Prometheus (one steady app backfilled: 2 of 3 instances up, 1 % errors, 100 ms) and a real
monitoring-server process over a SQLite file, its evaluator every 10 s, so GetAppHealth answers from a real
snapshot (degraded, reasons, instance count, error rate, latency, uptime) and a recorded deploy; ListAlerts
reads ``--alerts`` alert rows of the workspace (rows in the server's file). The per-key rate limit is off.

A grpc.aio client (uvloop) keeps ``--concurrency`` calls in flight on one channel for ``--seconds``; the
server's CPU is read from /proc/<pid>/stat (utime + stime) before and after: CPU per call = delta / calls.
Phases are interleaved (GetAppHealth, ListAlerts, bare, for each server) and repeated ``--rounds`` times;
the medians are printed. ``--compare DIR`` starts a second server from the ``server`` package copied
into DIR (an earlier version of the code, on PYTHONPATH) on its own copy of the data, measured in the same
rounds: before/after side by side. The bare reference is a grpc.aio server in a process of its own whose
GetAppHealth returns a constant reply (the floor of a Python grpc.aio unary call on this machine).

Goals (issue 14): GetAppHealth ≤ 0.4 ms and ListAlerts (20 alerts) ≤ 0.6 ms of server CPU per call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator

import grpc
import uvloop

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc as pb_grpc
from testing import alert_rows
from testing.metrics_data import Traffic, steady_app
from testing.platform import new_tenant
from testing.procs import REPO, Process, ServerProcess, cpu_seconds, free_port, grpc_serving, unmetered
from testing.prometheus import running_prometheus

WORKSPACE = "ws_bench"
APP = "app_bench"
TRAFFIC = Traffic(2, 3, error_percent=1.0)
GOALS_MS = {"GetAppHealth": 0.4, "ListAlerts": 0.6}


async def _load(addr: str, call: str, request: object, auth: tuple, seconds: float, concurrency: int):  # type: ignore[no-untyped-def,type-arg]
    """Calls for ``seconds`` with ``concurrency`` in flight; returns (calls, latencies)."""
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(addr) as channel:
        method = getattr(pb_grpc.MonitoringServiceStub(channel), call)
        await method(request, metadata=auth, timeout=10)  # the connection is up before the clock starts
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                await method(request, metadata=auth, timeout=10)
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), latencies


async def _phase(pid: int, addr: str, call: str, request: object, auth: tuple, seconds: float, concurrency: int):  # type: ignore[no-untyped-def,type-arg]
    """(server CPU ms per call, p50 ms, calls per second) of one phase."""
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    calls, latencies = await _load(addr, call, request, auth, seconds, concurrency)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    return cpu / calls * 1000, statistics.median(latencies) * 1000, calls / elapsed


async def _seed(addr: str, db: pathlib.Path, alerts: int, now: int) -> tuple[tuple[str, str], ...]:
    async with grpc.aio.insecure_channel(addr) as channel:
        tenant = await new_tenant(channel, WORKSPACE)
        await tenant.add_app(APP, name="bench-service")
        await tenant.record("deploy", APP, "dep_bench", pb.OPERATION_STATUS_SUCCEEDED, now - 3600 * 10**9)
        alert_rows.insert_alert_history(db, workspace_id=WORKSPACE, app_id=APP, count=alerts, now_ns=now)
        # The evaluator's next tick (every 10 s) writes the app's first snapshot: wait for it, bounded.
        deadline = time.monotonic() + 60
        while True:
            reply = await tenant.monitoring.GetAppHealth(
                pb.GetAppHealthRequest(workspace_id=WORKSPACE, app_id=APP), metadata=tenant.auth
            )
            if reply.status == pb.HEALTH_STATUS_DEGRADED:
                return tenant.auth
            if time.monotonic() > deadline:
                raise SystemExit(f"no snapshot after 60 s: {reply}")
            await asyncio.sleep(0.5)


def _comparable(
    health: pb.GetAppHealthResponse, alerts: pb.ListAlertsResponse, seeded: int
) -> tuple[pb.GetAppHealthResponse, pb.ListAlertsResponse]:
    """The replies without what each server's own evaluator decides at its own ticks: uptime and lastCheckedAt,
    and the resolution of the alerts seeded open (the rules engine resolves them on its first tick, the metric
    being below every threshold, at that tick's time)."""
    health.ClearField("uptime")
    health.ClearField("last_checked_at")
    seeded_open = {alert_rows.alert_history_id(i) for i in range(max(0, seeded - len(alert_rows.ALERT_TYPES)), seeded)}
    for alert in alerts.alerts:
        if alert.id in seeded_open:
            alert.ClearField("resolved_at")
            alert.ClearField("resolved")
    return health, alerts


@contextlib.contextmanager
def _server(work: pathlib.Path, name: str, prometheus_url: str, python_path: str | None) -> Iterator[ServerProcess]:
    folder = work / name
    folder.mkdir()
    env = {
        "MONITORING_LOG_LEVEL": "WARNING",
        "MONITORING_PROMETHEUS_URL": prometheus_url,
        "MONITORING_EVAL_INTERVAL": "10",
        **unmetered(folder),
    }
    if python_path:
        env["PYTHONPATH"] = python_path
    server = ServerProcess(folder, folder / "monitoring.db", env)
    try:
        yield server
    finally:
        server.stop()


class _Bare(Process):
    """This script in ``--serve-bare`` mode: a grpc.aio server whose GetAppHealth returns a constant reply."""

    def __init__(self, work: pathlib.Path):
        self.addr = f"127.0.0.1:{free_port()}"
        super().__init__(
            "bare", [sys.executable, str(pathlib.Path(__file__).resolve()), "--serve-bare", self.addr], work
        )
        self.wait_until(lambda: grpc_serving(self.addr))


async def _serve_bare(addr: str) -> None:
    from grpc_health.v1 import health, health_pb2_grpc

    reply = pb.GetAppHealthResponse(app_id=APP, status=pb.HEALTH_STATUS_HEALTHY, uptime=3600, instance_count=2)

    class Bare(pb_grpc.MonitoringServiceServicer):
        async def GetAppHealth(self, request: pb.GetAppHealthRequest, context: object) -> pb.GetAppHealthResponse:
            return reply

    server = grpc.aio.server()
    pb_grpc.add_MonitoringServiceServicer_to_server(Bare(), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)  # SERVING: ready to measure
    server.add_insecure_port(addr)
    await server.start()
    await server.wait_for_termination()


async def main(seconds: float, rounds: int, concurrency: int, alerts: int, compare: str | None, bare: bool) -> None:
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    health_request = pb.GetAppHealthRequest(workspace_id=WORKSPACE, app_id=APP)
    alerts_request = pb.ListAlertsRequest(workspace_id=WORKSPACE)
    with tempfile.TemporaryDirectory(prefix="bench-unary-") as tmp, contextlib.ExitStack() as stack:
        work = pathlib.Path(tmp)
        now = int(time.time())
        prometheus = stack.enter_context(running_prometheus(work, steady_app(WORKSPACE, APP, TRAFFIC, now)))
        servers: dict[str, tuple[ServerProcess, tuple[tuple[str, str], ...]]] = {}
        variants = [("this", None)] + ([("compare", compare)] if compare else [])
        for name, path in variants:
            server = stack.enter_context(_server(work, name, prometheus.url, path))
            servers[name] = (server, await _seed(server.addr, pathlib.Path(server.db), alerts, now * 10**9))
        phases: list[tuple[str, int, str, str, object, tuple]] = []  # type: ignore[type-arg]
        for name, (server, auth) in servers.items():
            phases.append((f"{name} GetAppHealth", server.pid, server.addr, "GetAppHealth", health_request, auth))
            phases.append((f"{name} ListAlerts", server.pid, server.addr, "ListAlerts", alerts_request, auth))
        if bare:
            bare_server = _Bare(work)
            stack.callback(bare_server.stop)
            phases.append(("bare GetAppHealth", bare_server.pid, bare_server.addr, "GetAppHealth", health_request, ()))
        # Same replies from both servers (values must not move), then a warm-up of every phase.
        if compare:
            replies = []
            for server, auth in servers.values():
                async with grpc.aio.insecure_channel(server.addr) as channel:
                    stub = pb_grpc.MonitoringServiceStub(channel)
                    health_reply = await stub.GetAppHealth(health_request, metadata=auth)
                    alerts_reply = await stub.ListAlerts(alerts_request, metadata=auth)
                    replies.append(_comparable(health_reply, alerts_reply, alerts))
            print(f"replies identical (aside from what each server's evaluator decides): {replies[0] == replies[1]}")
            if replies[0] != replies[1]:
                print(f"this: {replies[0]}\ncompare: {replies[1]}")
        for _label, pid, addr, call, request, auth in phases:
            await _phase(pid, addr, call, request, auth, 1.0, concurrency)
        results: dict[str, list[tuple[float, float, float]]] = {label: [] for label, *_ in phases}
        for round_ in range(rounds):
            order = phases if round_ % 2 == 0 else list(reversed(phases))  # interleaved, alternating order
            for label, pid, addr, call, request, auth in order:
                results[label].append(await _phase(pid, addr, call, request, auth, seconds, concurrency))
    print(f"{rounds} rounds × {seconds:g} s per phase, concurrency {concurrency}, ListAlerts over {alerts} alerts")
    print(f"{'':24}{'CPU ms/call':>12}{'p50 ms':>9}{'calls/s':>9}   per round (CPU ms/call)")
    medians: dict[str, float] = {}
    for label, rows in results.items():
        cpu, p50, rate = (statistics.median(column) for column in zip(*rows, strict=True))
        medians[label] = cpu
        each = " ".join(f"{row[0]:.3f}" for row in rows)
        print(f"{label:24}{cpu:>12.3f}{p50:>9.2f}{rate:>9.0f}   {each}")
    for call, goal in GOALS_MS.items():
        line = f"{call}: {medians[f'this {call}']:.3f} ms (goal ≤ {goal})"
        if compare:
            line += f"; this/compare = {medians[f'this {call}'] / medians[f'compare {call}']:.2f}"
        if bare:
            line += f"; ÷ bare = {medians[f'this {call}'] / medians['bare GetAppHealth']:.2f}"
        print(line)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--alerts", type=int, default=20)
    parser.add_argument("--compare", help="a folder holding an earlier copy of the server package")
    parser.add_argument("--no-bare", dest="bare", action="store_false")
    parser.add_argument("--serve-bare", metavar="ADDR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        uvloop.run(_serve_bare(args.serve_bare))  # the server's own loop (uvloop), as monitoring-server runs
    else:
        if args.compare and not (pathlib.Path(args.compare) / "server" / "__init__.py").is_file():
            raise SystemExit(f"--compare {args.compare}: no server package there")
        if args.compare and pathlib.Path(args.compare).resolve() == REPO:
            raise SystemExit("--compare must name a copy, not this checkout")
        uvloop.run(
            main(
                min(args.seconds, 60.0),
                max(1, min(args.rounds, 20)),
                max(1, min(args.concurrency, 500)),
                max(0, min(args.alerts, 500)),
                args.compare,
                args.bare,
            )
        )
