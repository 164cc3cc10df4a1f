"""StreamAppLogs fan-out: many subscribers on one app share one Loki tail. Delivery delay and memory.

    .venv/bin/python bench/bench_tail.py [--subscribers 1000] [--workers 4] [--lines 50] [--rate 5]

One Loki double process, one monitoring-server process, and ``--workers`` client processes holding
``--subscribers`` StreamAppLogs calls on one app between them (10 channels per worker). A direct WebSocket
tail on the double (the bench's own, outside the server) records when each line reaches a tail. Lines are
pushed at ``--rate`` per second, each carrying its index. Reported, all from one run:

- upstream tails the server opened for all subscribers (goal: 1);
- delivery delay = subscriber receive time − time the direct tail received the same line (p50/p99/max over
  every (subscriber, line) pair; goal p99 ≤ 250 ms), and push → subscriber for reference;
- server RSS growth per connected subscriber (VmRSS after all subscribed and warmed up, minus before);
- lines lost or repeated at any subscriber (goal: 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

import grpc
import httpx
import websockets

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc
from testing.loki import running_loki
from testing.platform import bearer, new_tenant
from testing.procs import cpu_seconds, running_server, unmetered

CHANNELS_PER_WORKER = 10


def rss_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def worker(addr: str, workspace: str, app: str, key: str, count: int, warm: Any, stop: Any, out: Any) -> None:
    """A client process: ``count`` subscriptions; returns per-subscription [(line index, receive ns)]."""

    async def run() -> list[list[tuple[int, int]]]:
        channels = [grpc.aio.insecure_channel(addr) for _ in range(CHANNELS_PER_WORKER)]
        records: list[list[tuple[int, int]]] = [[] for _ in range(count)]

        async def subscribe(i: int) -> None:
            stub = monitoring_pb2_grpc.MonitoringServiceStub(channels[i % len(channels)])
            call = stub.StreamAppLogs(pb.StreamAppLogsRequest(workspace_id=workspace, app_id=app), metadata=bearer(key))
            seen_warmup = False
            async for message in call:
                if not message.HasField("entry"):
                    records[i].append((-1, time.time_ns()))  # a gap
                    continue
                text = message.entry.message
                if text.startswith("warmup"):
                    if not seen_warmup:
                        seen_warmup = True
                        with warm.get_lock():
                            warm.value += 1
                    continue
                records[i].append((int(text.split()[1]), time.time_ns()))

        tasks = [asyncio.create_task(subscribe(i)) for i in range(count)]
        await asyncio.to_thread(stop.wait)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in channels:
            await channel.close()
        return records

    out.put(asyncio.run(run()))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def direct_tail(url: str, query: str, seen: dict[int, int], stop: asyncio.Event) -> None:
    params = httpx.QueryParams({"query": query, "start": str(time.time_ns()), "limit": "1"})
    async with websockets.connect(url.replace("http", "ws") + "/loki/api/v1/tail?" + str(params)) as ws:
        while not stop.is_set():
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
            except TimeoutError:
                continue
            now = time.time_ns()
            for stream in frame["streams"]:
                for _, line in stream["values"]:
                    if line.startswith("line "):
                        seen.setdefault(int(line.split()[1]), now)


async def run(args: argparse.Namespace) -> None:
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-tail-"))
    env = {"MONITORING_TOKEN_SECRET": "bench-secret-0123456789abcdef", "MONITORING_LOG_LEVEL": "WARNING"}
    env.update(unmetered(work))
    with (
        running_loki(work) as loki,
        running_server(work, work / "monitoring.db", {"MONITORING_LOKI_URL": loki.url, **env}) as server,
    ):
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenant = await new_tenant(channel)
            app = await tenant.add_app()
        labels = {"workspace_id": tenant.workspace_id, "app_id": app.id, "level": "info"}
        await asyncio.sleep(1.0)
        rss_before = rss_kib(server.pid)
        tails_before = loki.stats()["tails_opened"]

        ctx = mp.get_context("spawn")
        warm, stop, out = ctx.Value("i", 0), ctx.Event(), ctx.Queue()
        per_worker = [
            args.subscribers // args.workers + (i < args.subscribers % args.workers) for i in range(args.workers)
        ]
        procs = [
            ctx.Process(target=worker, args=(server.addr, tenant.workspace_id, app.id, tenant.key, n, warm, stop, out))
            for n in per_worker
        ]
        for proc in procs:
            proc.start()
        # Warm up: push a line every 0.5 s until every subscriber has received one (all are subscribed).
        deadline = time.monotonic() + 120
        while warm.value < args.subscribers:
            assert time.monotonic() < deadline, f"only {warm.value} subscribers warmed up"
            loki.push([{"stream": labels, "values": [[str(time.time_ns()), "warmup"]]}])
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)
        rss_after = rss_kib(server.pid)
        server_tails = loki.stats()["tails_opened"] - tails_before

        seen_by_tail: dict[int, int] = {}
        tail_stop = asyncio.Event()
        tail_task = asyncio.create_task(
            direct_tail(
                loki.url, f'{{workspace_id="{tenant.workspace_id}", app_id="{app.id}"}}', seen_by_tail, tail_stop
            )
        )
        await asyncio.sleep(0.5)
        cpu_before = {"server": cpu_seconds(server.pid), "loki": cpu_seconds(loki.pid)} | {
            f"w{i}": cpu_seconds(p.pid) for i, p in enumerate(procs)
        }
        pushed: dict[int, int] = {}
        for i in range(args.lines):
            pushed[i] = time.time_ns()
            await asyncio.to_thread(loki.push, [{"stream": labels, "values": [[str(pushed[i]), f"line {i} payload"]]}])
            await asyncio.sleep(1 / args.rate)
        await asyncio.sleep(3.0)
        cpu_after = {"server": cpu_seconds(server.pid), "loki": cpu_seconds(loki.pid)} | {
            f"w{i}": cpu_seconds(p.pid) for i, p in enumerate(procs)
        }
        stop.set()
        tail_stop.set()
        await tail_task
        results = [out.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(30)

        records = [r for batch in results for r in batch]
        gaps = sum(1 for r in records for idx, _ in r if idx < 0)
        bad = sum(1 for r in records if sorted(i for i, _ in r if i >= 0) != list(range(args.lines)))
        hub = [(t - seen_by_tail[i]) / 1e6 for r in records for i, t in r if i >= 0 and i in seen_by_tail]
        e2e = [(t - pushed[i]) / 1e6 for r in records for i, t in r if i >= 0]
        print(f"subscribers={args.subscribers} workers={args.workers} lines={args.lines} rate={args.rate}/s")
        print(f"upstream tails opened by the server: {server_tails}")
        print(f"subscribers with a lost or repeated line: {bad}; gap notices: {gaps}")
        print(
            f"delay after the tail (ms): p50 {statistics.median(hub):.1f}  p99 {percentile(hub, 0.99):.1f}"
            f"  max {max(hub):.1f}  (n={len(hub)})"
        )
        print(
            f"push -> subscriber (ms):   p50 {statistics.median(e2e):.1f}  p99 {percentile(e2e, 0.99):.1f}"
            f"  max {max(e2e):.1f}"
        )
        used = {name: cpu_after[name] - cpu_before[name] for name in cpu_before}
        print("CPU seconds while streaming: " + ", ".join(f"{k} {v:.1f}" for k, v in used.items()))
        grown = rss_after - rss_before
        print(f"server RSS {rss_before} KiB -> {rss_after} KiB: {grown / args.subscribers:.1f} KiB per subscriber")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--lines", type=int, default=50)
    p.add_argument("--rate", type=float, default=5.0)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
