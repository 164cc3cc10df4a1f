"""Is the evaluator starved by API traffic? GetAppHealth latency and evaluator ticks, idle vs under a flood.

    .venv/bin/python bench/bench_flood.py [--seconds 20] [--interval 2] [--flooders 16] [--rates 50,0]

A real Prometheus over the month of backfilled test data (testing/metrics_data.py) and a real
monitoring-server process whose store holds 1,000 apps (testing/fleet.py) plus the test workspaces, evaluated
every ``--interval`` seconds. For each ``[api] rate_per_key`` in ``--rates`` (0: no limit) a fresh server runs
two phases of ``--seconds`` each: idle, then one workspace floods GetAppMetrics (every period) and
GetWorkspaceOverview from ``--flooders`` concurrent loops as fast as they are answered. Meanwhile another
workspace calls GetAppHealth one call at a time (p50/p99), and each new ``last_checked_at`` it sees is a
completed tick: a gap longer than 1.5 intervals between two is a tick missed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import pathlib
import sys
import tempfile
import time

import grpc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing import metrics_data as data
from testing.fleet import seed_fleet_store
from testing.metrics_data import seed_apps
from testing.platform import Tenant, new_tenant
from testing.procs import running_server
from testing.prometheus import running_prometheus

FLEET = 1000
PERIODS = (pb.PERIOD_1H, pb.PERIOD_6H, pb.PERIOD_24H, pb.PERIOD_7D, pb.PERIOD_30D)


def pct(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))] * 1000


async def watch(tenant: Tenant, app_id: str, until: float) -> tuple[list[float], list[int]]:
    """GetAppHealth one call at a time until ``until``: latencies and each distinct last_checked_at (ns)."""
    request = pb.GetAppHealthRequest(workspace_id=tenant.workspace_id, app_id=app_id)
    latencies: list[float] = []
    checked: list[int] = []
    while time.monotonic() < until:
        started = time.perf_counter()
        reply = await tenant.monitoring.GetAppHealth(request, metadata=tenant.auth)
        latencies.append(time.perf_counter() - started)
        at = reply.last_checked_at.seconds * 10**9 + reply.last_checked_at.nanos
        if reply.HasField("last_checked_at") and (not checked or at != checked[-1]):
            checked.append(at)
        await asyncio.sleep(0.05)  # 20 calls/s at most: under the default per-key limit
    return latencies, checked


async def flood(tenant: Tenant, until: float, counts: dict[str, int], slot: int) -> None:
    i = slot
    while time.monotonic() < until:
        i += 1
        if i % 3 == 0:
            call = tenant.monitoring.GetWorkspaceOverview(
                pb.GetWorkspaceOverviewRequest(workspace_id=tenant.workspace_id), metadata=tenant.auth
            )
        else:
            request = pb.GetAppMetricsRequest(
                workspace_id=tenant.workspace_id, app_id=data.FULL, period=PERIODS[i % len(PERIODS)]
            )
            call = tenant.monitoring.GetAppMetrics(request, metadata=tenant.auth)
        try:
            await call
            counts["ok"] += 1
        except grpc.aio.AioRpcError as error:
            counts[error.code().name] = counts.get(error.code().name, 0) + 1


async def phase(
    name: str, watched: Tenant, app_id: str, flooder: Tenant | None, args: argparse.Namespace
) -> dict[str, float]:
    until = time.monotonic() + args.seconds
    counts: dict[str, int] = {"ok": 0}
    floods = [flood(flooder, until, counts, slot) for slot in range(args.flooders)] if flooder else []
    started = time.monotonic()
    (latencies, checked), *_ = await asyncio.gather(watch(watched, app_id, until), *floods)
    elapsed = time.monotonic() - started
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(checked)]
    missed = sum(1 for g in gaps if g > 1.5 * args.interval)
    load = os.getloadavg()[0]
    flood_rate = sum(counts.values()) / elapsed
    print(
        f"  {name:<6} GetAppHealth p50 {pct(latencies, 0.5):6.2f} ms  p99 {pct(latencies, 0.99):7.2f} ms"
        f" ({len(latencies)} calls); ticks seen {len(checked)} (expected ~{args.seconds / args.interval:.0f}),"
        f" longest gap {max(gaps, default=0):.2f} s, missed {missed}; load avg (1 min) {load:.2f}"
        + (
            f"\n         flood {flood_rate:.0f} calls/s: "
            + ", ".join(f"{code} {n}" for code, n in sorted(counts.items()))
            if flooder
            else ""
        )
    )
    return {"p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99), "missed": missed, "flood_rate": flood_rate}


async def run(work: pathlib.Path, prometheus_url: str, rate: float, args: argparse.Namespace) -> None:
    db = work / f"monitoring-{rate:g}.db"
    await seed_fleet_store(db, FLEET)
    config = work / f"api-{rate:g}.toml"
    config.write_text(f"[api]\nrate_per_key = {rate}\nburst_per_key = {2 * int(rate)}\n")
    env = {
        "MONITORING_PROMETHEUS_URL": prometheus_url,
        "MONITORING_EVAL_INTERVAL": str(args.interval),
        "MONITORING_LOG_LEVEL": "WARNING",
        "MONITORING_CONFIG_FILE": str(config),
    }
    with running_server(work, db, env) as server:
        async with (
            grpc.aio.insecure_channel(server.addr) as channel,
            grpc.aio.insecure_channel(server.addr, options=[("grpc.use_local_subchannel_pool", 1)]) as flood_channel,
        ):
            flooder = await new_tenant(flood_channel, data.WORKSPACE)
            await seed_apps(flooder)
            watched = await new_tenant(channel)
            app = await watched.add_app()
            deadline = time.monotonic() + 30
            request = pb.GetAppHealthRequest(workspace_id=watched.workspace_id, app_id=app.id)
            while time.monotonic() < deadline:  # the first tick that includes the watched app
                if (await watched.monitoring.GetAppHealth(request, metadata=watched.auth)).HasField("last_checked_at"):
                    break
                await asyncio.sleep(0.2)
            limit = f"{rate:g}/s per key, burst {2 * int(rate)}" if rate else "off"
            print(f"rate limit {limit}; {FLEET + len(data.HEALTH_CASES) + 4} apps; evaluation every {args.interval} s")
            await phase("idle", watched, app.id, None, args)
            await phase("flood", watched, app.id, flooder, args)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        work = pathlib.Path(tmp)
        _, series = data.dataset(int(time.time()))
        with running_prometheus(work, series) as prometheus:
            print(f"{os.cpu_count()} cores; {args.flooders} flood loops; {args.seconds} s per phase")
            for rate in args.rates:
                await run(work, prometheus.url, rate, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--flooders", type=int, default=16)
    parser.add_argument("--rates", default="50,0", help="[api] rate_per_key values, one server each (0: off)")
    parsed = parser.parse_args()
    parsed.seconds = min(parsed.seconds, 300.0)
    parsed.flooders = min(parsed.flooders, 256)
    parsed.rates = [float(r) for r in parsed.rates.split(",")]
    asyncio.run(main(parsed))
