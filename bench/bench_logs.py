"""ListAppLogs paging throughput vs Loki's own query_range, measured side by side in one run.

    .venv/bin/python bench/bench_logs.py [--lines 20000] [--page 1000] [--rounds 5]

One Loki double process and one monitoring-server process on 127.0.0.1. Two data sets of ``--lines`` lines
in 4 streams: one with distinct timestamps, one where ~50 lines share each nanosecond across streams.
Each round pages through every line twice, interleaved:

- *service*: ListAppLogs over gRPC with ``limit=--page``, following next_page_token to the end;
- *query_range*: the same number of lines fetched straight from the double, ``limit=--page`` per call,
  moving ``end`` to the oldest timestamp seen (the cheapest possible client: no dedupe, no proto, no HMAC).

Prints lines/s (medians over rounds) and the ratio service / query_range; the goal is ≥ 0.8.
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
import httpx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing.loki import LokiDouble, running_loki
from testing.platform import Tenant, new_tenant, ts
from testing.procs import running_server, unmetered

NS = 1_000_000_000


def seed(loki: LokiDouble, tenant: Tenant, app_id: str, lines: int, per_instant: int) -> tuple[int, int]:
    """Pushes ``lines`` lines in 4 streams; every ``per_instant`` consecutive lines share a nanosecond."""
    base = time.time_ns() - 30 * 60 * NS
    streams: dict[int, list[list[object]]] = {s: [] for s in range(4)}
    for i in range(lines):
        stamp = base + (i // per_instant) * 1000
        streams[i % 4].append([stamp, f"{i:06d} GET /api/items/{i % 97} 200 in {i % 50} ms user=u{i % 13}"])
    for s, values in streams.items():
        labels = {"workspace_id": tenant.workspace_id, "app_id": app_id, "level": "info", "pod": f"pod-{s}"}
        for i in range(0, len(values), 5000):
            loki.push([{"stream": labels, "values": values[i : i + 5000]}])
    return base, base + (lines // per_instant + 1) * 1000


async def page_service(tenant: Tenant, app_id: str, start: int, end: int, page: int) -> int:
    seen, token = 0, ""
    while True:
        request = pb.ListAppLogsRequest(
            workspace_id=tenant.workspace_id,
            app_id=app_id,
            limit=page,
            page_token=token,
            start_time=ts(start),
            end_time=ts(end),
        )
        response = await tenant.monitoring.ListAppLogs(request, metadata=tenant.auth)
        seen += len(response.logs)
        if not response.HasField("next_page_token"):
            return seen
        token = response.next_page_token


async def page_query_range(
    client: httpx.AsyncClient, tenant: Tenant, app_id: str, start: int, end: int, page: int, total: int
) -> int:
    query = f'{{workspace_id="{tenant.workspace_id}", app_id="{app_id}"}}'
    seen = 0
    while seen < total:
        params = {"query": query, "start": str(start), "end": str(end), "limit": str(page), "direction": "backward"}
        body = (await client.get("/loki/api/v1/query_range", params=params)).json()
        stamps = [int(v[0]) for s in body["data"]["result"] for v in s["values"]]
        if not stamps:
            break
        seen += len(stamps)
        end = min(stamps)  # naive: ignores ties at the boundary
    return seen


async def run(args: argparse.Namespace) -> None:
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-logs-"))
    env_secret = {
        "MONITORING_TOKEN_SECRET": "bench-secret-0123456789abcdef",
        "MONITORING_LOG_LEVEL": "WARNING",
        **unmetered(work),
    }
    with (
        running_loki(work) as loki,
        running_server(work, work / "monitoring.db", {"MONITORING_LOKI_URL": loki.url, **env_secret}) as server,
    ):
        async with grpc.aio.insecure_channel(server.addr) as channel, httpx.AsyncClient(base_url=loki.url) as http:
            tenant = await new_tenant(channel)
            print(f"lines={args.lines} page={args.page} rounds={args.rounds}")
            print(f"{'data set':<28}{'service lines/s':>18}{'query_range lines/s':>22}{'ratio':>8}")
            for name, per_instant in (("distinct timestamps", 1), ("50 lines per nanosecond", 50)):
                app = await tenant.add_app()
                start, end = seed(loki, tenant, app.id, args.lines, per_instant)
                service, raw = [], []
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    got = await page_service(tenant, app.id, start, end, args.page)
                    service.append(got / (time.perf_counter() - t0))
                    assert got == args.lines, (got, args.lines)
                    t0 = time.perf_counter()
                    got = await page_query_range(http, tenant, app.id, start, end, args.page, args.lines)
                    raw.append(got / (time.perf_counter() - t0))
                s, r = statistics.median(service), statistics.median(raw)
                print(f"{name:<28}{s:>18,.0f}{r:>22,.0f}{s / r:>8.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=20_000)
    p.add_argument("--page", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
