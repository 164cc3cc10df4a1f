"""GetWorkspaceOverview's store reads on a small and a large health_snapshots table, before and after the
request-path indexes (SQLite migration 0006, PostgreSQL 0003) and the latest-snapshot rewrite.

    .venv/bin/python bench/bench_store.py [--sqlite-rows 10000000] [--postgres-rows 2000000] [--calls 200]
        [--seconds 20] [--index-alone] [--backends sqlite,postgres]

Data: workspaces of 100 apps, one health snapshot per app every 30 s (the large table: enough workspaces and
ticks for the rows asked, about a day of ticks, the default retention; the small one: one workspace, 10 ticks,
1,000 rows), and per workspace 200 deploys, 200 builds (a few of each today) and 100 alerts (10 open). The
overview of ws_0000 reads, as server/metrics/overview.py does: latest_snapshots, count_operations ×3,
recent_operations ×2, list_alerts.

Before: the store's own code on the schema it had before (the store opened with the migrations up to the
previous version only) and the old latest_snapshots statement put in place of the module's constant. After: the
same database once the store has applied the new migration (its duration is printed), with the store's queries
as they are. ``--index-alone``: in between, the old statement with only an index on health_snapshots(workspace_id,
app_id, checked_ns DESC) added (built, measured, dropped), to show what an index alone does for it. Each phase:
one warm-up call, then up to --calls calls or --seconds, whichever ends first (at least 3 calls); printed: p50
and p99 of the whole read and p50 of latest_snapshots alone, and the ratios before/after. SQLite: a file filled
by executemany in transactions of 500,000 rows (synchronous off while filling, WAL again for the store);
PostgreSQL: a throwaway cluster (testing/postgres.py) filled by COPY, then ANALYZE.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import pathlib
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import asyncpg

from server.metrics.overview import ACTIVITY_LIMIT
from server.states import OperationKind, OperationStatus
from server.store import Store, open_postgres, open_sqlite
from server.store import postgres as postgres_module
from server.store import sqlite as sqlite_module
from server.store.schema import migrations
from testing.fleet import fleet_ids
from testing.postgres import running_postgres

S = 10**9
TICK_NS = 30 * S
DAY_NS = 86400 * S
APPS_PER_WORKSPACE = 100
WORKSPACE = "ws_0000"
CHUNK = 500_000
# The schema each backend had before the request-path indexes, and the statement latest_snapshots ran then.
BEFORE = {"sqlite": 5, "postgres": 2}
OLD_LATEST = {
    "sqlite": "SELECT *, max(checked_ns) FROM health_snapshots WHERE workspace_id = ? GROUP BY app_id",
    "postgres": "SELECT DISTINCT ON (app_id) * FROM health_snapshots WHERE workspace_id = $1"
    " ORDER BY app_id, checked_ns DESC",
}
MODULES: dict[str, Any] = {"sqlite": sqlite_module, "postgres": postgres_module}
WORKSPACE_INDEX = "CREATE INDEX bench_snapshots_by_workspace ON health_snapshots(workspace_id, app_id, checked_ns DESC)"


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


@contextlib.contextmanager
def before_schema(backend: str) -> Iterator[None]:
    """Stores opened meanwhile apply the migrations up to the previous version only, and run the old statement."""
    module = MODULES[backend]
    saved = module.migrations, module._LATEST_SNAPSHOTS_OF_WORKSPACE
    module.migrations = lambda name: [m for m in migrations(name) if m[0] <= BEFORE[backend]]
    module._LATEST_SNAPSHOTS_OF_WORKSPACE = OLD_LATEST[backend]
    try:
        yield
    finally:
        module.migrations, module._LATEST_SNAPSHOTS_OF_WORKSPACE = saved


@contextlib.contextmanager
def old_statement(backend: str) -> Iterator[None]:
    module = MODULES[backend]
    saved = module._LATEST_SNAPSHOTS_OF_WORKSPACE
    module._LATEST_SNAPSHOTS_OF_WORKSPACE = OLD_LATEST[backend]
    try:
        yield
    finally:
        module._LATEST_SNAPSHOTS_OF_WORKSPACE = saved


# The rows: (table, columns, rows) of everything but the snapshots, and the snapshots as a generator.


def shape(rows: int) -> tuple[int, int]:
    """(workspaces, ticks) for about ``rows`` snapshots: about a day of ticks per app."""
    workspaces = max(1, round(rows / (APPS_PER_WORKSPACE * 2880)))
    return workspaces, max(1, rows // (workspaces * APPS_PER_WORKSPACE))


def small_rows(workspaces: int, now_ns: int) -> list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
    apps = list(fleet_ids(workspaces * APPS_PER_WORKSPACE))
    ws_ids = sorted({ws for ws, _ in apps})
    tables: list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]] = [
        ("workspaces", ("id", "name", "created_ns"), [(ws, ws, 0) for ws in ws_ids]),
        (
            "apps",
            ("id", "workspace_id", "name", "service_name", "memory_limit_mib", "cpu_limit_cores", "created_ns"),
            [(app, ws, app, app, 512.0, 1.0, 0) for ws, app in apps],
        ),
    ]
    columns = ("app_id", "id", "workspace_id", "status", "started_ns", "finished_ns")
    for table, prefix in (("deploys", "dep"), ("builds", "bld")):
        rows = []
        for w, ws in enumerate(ws_ids):
            for n in range(200):
                started = now_ns - (n * 3 + 1) * 3600 * S  # every 3 h back from now: 8 of them today
                status = OperationStatus.FAILED if n % 5 == 0 else OperationStatus.SUCCEEDED
                app = apps[w * APPS_PER_WORKSPACE + n % APPS_PER_WORKSPACE][1]
                rows.append((app, f"{prefix}_{w}_{n}", ws, str(status), started, started + 60 * S))
        tables.append((table, columns, rows))
    alerts = []
    for w, ws in enumerate(ws_ids):
        for n in range(100):
            app = apps[w * APPS_PER_WORKSPACE + n][1]
            triggered = now_ns - (n + 1) * 1800 * S
            resolved = None if n < 10 else triggered + 600 * S
            alerts.append(
                (f"alr_{w}_{n}", ws, app, "high_cpu", "warning", "CPU high", triggered, resolved)
                + (("recovery",) if resolved else (None,))
            )
    tables.append(
        (
            "alerts",
            (
                "id",
                "workspace_id",
                "app_id",
                "type",
                "severity",
                "message",
                "triggered_ns",
                "resolved_ns",
                "resolved_by",
            ),
            alerts,
        )
    )
    return tables


SNAPSHOT_COLUMNS = (
    "app_id",
    "workspace_id",
    "checked_ns",
    "status",
    "up_since_ns",
    "instance_count",
    "error_rate",
    "avg_latency_ms",
    "reasons",
)


def snapshots(workspaces: int, ticks: int, now_ns: int) -> Iterator[tuple[Any, ...]]:
    """Tick by tick, every app: as the evaluator writes them."""
    apps = list(fleet_ids(workspaces * APPS_PER_WORKSPACE))
    first = now_ns - ticks * TICK_NS
    for tick in range(ticks):
        checked = first + tick * TICK_NS + TICK_NS
        for i, (ws, app) in enumerate(apps):
            status = "degraded" if (tick + i) % 97 == 0 else "healthy"
            yield (app, ws, checked, status, first, 2, 0.4, 120.0, "[]")


# Filling.


def fill_sqlite(path: pathlib.Path, workspaces: int, ticks: int, now_ns: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=DELETE")  # the store left it in WAL; no other connection is open
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-1000000")  # 1 GB
        db.execute("BEGIN")
        for table, columns, rows in small_rows(workspaces, now_ns):
            marks = ", ".join("?" * len(columns))
            db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        db.execute("COMMIT")
        started = time.perf_counter()
        insert = f"INSERT INTO health_snapshots VALUES ({', '.join('?' * len(SNAPSHOT_COLUMNS))})"
        rows = snapshots(workspaces, ticks, now_ns)
        while chunk := list(itertools.islice(rows, CHUNK)):
            db.execute("BEGIN")
            db.executemany(insert, chunk)
            db.execute("COMMIT")
        elapsed = time.perf_counter() - started
        db.execute("PRAGMA journal_mode=WAL")
        return elapsed
    finally:
        db.close()


async def fill_postgres(url: str, workspaces: int, ticks: int, now_ns: int) -> float:
    connection = await asyncpg.connect(url)
    try:
        for table, columns, rows in small_rows(workspaces, now_ns):
            await connection.copy_records_to_table(table, records=rows, columns=columns)
        started = time.perf_counter()
        rows = snapshots(workspaces, ticks, now_ns)
        while chunk := list(itertools.islice(rows, CHUNK)):
            await connection.copy_records_to_table("health_snapshots", records=chunk, columns=SNAPSHOT_COLUMNS)
        elapsed = time.perf_counter() - started
        await connection.execute("ANALYZE")
        return elapsed
    finally:
        await connection.close()


# Measuring.


async def overview_reads(store: Store, today_ns: int) -> tuple[float, float, int]:
    """The overview's store reads for ws_0000: (whole, latest_snapshots alone) in seconds, and the apps seen."""
    started = time.perf_counter()
    latest = await store.latest_snapshots(WORKSPACE)
    latest_done = time.perf_counter()
    await store.count_operations(OperationKind.DEPLOY, WORKSPACE)
    await store.count_operations(OperationKind.DEPLOY, WORKSPACE, since_ns=today_ns)
    await store.count_operations(OperationKind.BUILD, WORKSPACE, since_ns=today_ns, status=OperationStatus.FAILED)
    await store.recent_operations(OperationKind.DEPLOY, WORKSPACE, ACTIVITY_LIMIT)
    await store.recent_operations(OperationKind.BUILD, WORKSPACE, ACTIVITY_LIMIT)
    await store.list_alerts(WORKSPACE, limit=ACTIVITY_LIMIT)
    return time.perf_counter() - started, latest_done - started, len(latest)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def measure(store: Store, today_ns: int, calls: int, seconds: float) -> dict[str, Any]:
    _, _, apps = await overview_reads(store, today_ns)  # warm-up
    whole, latest = [], []
    deadline = time.perf_counter() + seconds
    for n in range(calls):
        if n >= 3 and time.perf_counter() > deadline:
            break
        total, first, apps = await overview_reads(store, today_ns)
        whole.append(total)
        latest.append(first)
    return {
        "calls": len(whole),
        "p50": statistics.median(whole),
        "p99": p99(whole),
        "latest_p50": statistics.median(latest),
        "apps": apps,
        "load": load(),
    }


def row(label: str, m: dict[str, Any]) -> str:
    return (
        f"  {label:<28} {m['calls']:>4} calls  p50 {m['p50'] * 1000:9.2f} ms  p99 {m['p99'] * 1000:9.2f} ms"
        f"  latest_snapshots p50 {m['latest_p50'] * 1000:9.2f} ms  ({m['apps']} apps; load {m['load']})"
    )


async def run_backend(
    backend: str,
    location: str,
    fill: Callable[[int, int], Awaitable[float]],
    rows: int,
    args: argparse.Namespace,
    today_ns: int,
) -> dict[str, dict[str, Any]]:
    opener = open_sqlite if backend == "sqlite" else open_postgres
    workspaces, ticks = shape(rows)
    with before_schema(backend):
        await (await opener(location)).close()  # the schema as it was
    total = workspaces * APPS_PER_WORKSPACE * ticks
    seconds = await fill(workspaces, ticks)
    print(
        f"{backend}: {total:,} snapshots ({workspaces} workspaces × {APPS_PER_WORKSPACE} apps × {ticks} ticks)"
        f" inserted in {seconds:.1f} s ({total / seconds:,.0f} rows/s); load {load()}",
        flush=True,
    )
    results = {}
    with before_schema(backend):
        store = await opener(location)
        try:
            results["before"] = await measure(store, today_ns, args.calls, args.seconds)
            print(row("before", results["before"]), flush=True)
            before_rows = await store.latest_snapshots(WORKSPACE)
        finally:
            await store.close()
    if args.index_alone:
        await raw(backend, location, WORKSPACE_INDEX)
        with before_schema(backend):
            store = await opener(location)
            try:
                results["index alone"] = await measure(store, today_ns, args.calls, args.seconds)
                print(row("old query + workspace index", results["index alone"]), flush=True)
            finally:
                await store.close()
        await raw(backend, location, "DROP INDEX bench_snapshots_by_workspace")
    started = time.perf_counter()
    store = await opener(location)  # applies the new migration
    print(f"  migration applied in {time.perf_counter() - started:.2f} s", flush=True)
    try:
        results["after"] = await measure(store, today_ns, args.calls, args.seconds)
        print(row("after", results["after"]), flush=True)
        same = await store.latest_snapshots(WORKSPACE) == before_rows
    finally:
        await store.close()
    before, after = results["before"], results["after"]
    print(
        f"  before/after: p50 {before['p50'] / after['p50']:.1f}×, p99 {before['p99'] / after['p99']:.1f}×,"
        f" latest_snapshots p50 {before['latest_p50'] / after['latest_p50']:.1f}×; same rows before and after: {same}",
        flush=True,
    )
    return results


async def raw(backend: str, location: str, sql: str) -> None:
    started = time.perf_counter()
    if backend == "sqlite":
        db = sqlite3.connect(location)
        try:
            db.execute(sql)
            db.commit()
        finally:
            db.close()
    else:
        connection = await asyncpg.connect(location)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()
    print(f"  {sql.split(' ON ')[0]}: {time.perf_counter() - started:.1f} s", flush=True)


async def main(args: argparse.Namespace) -> None:
    now_ns = time.time_ns()
    today_ns = now_ns // DAY_NS * DAY_NS
    print(f"load average at start {load()}; {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        work = pathlib.Path(tmp)
        if "sqlite" in args.backends:
            for size, rows in (("small", 1000), ("large", args.sqlite_rows)):
                path = work / f"{size}.db"

                async def fill_file(workspaces: int, ticks: int, path: pathlib.Path = path) -> float:
                    return await asyncio.to_thread(fill_sqlite, path, workspaces, ticks, now_ns)

                print(f"-- SQLite, {size} table", flush=True)
                await run_backend("sqlite", str(path), fill_file, rows, args, today_ns)
                path.unlink()
        if "postgres" in args.backends:
            with running_postgres() as cluster:
                for size, rows in (("small", 1000), ("large", args.postgres_rows)):
                    url = cluster.create_database(f"bench_{size}")

                    async def fill_db(workspaces: int, ticks: int, url: str = url) -> float:
                        return await fill_postgres(url, workspaces, ticks, now_ns)

                    print(f"-- PostgreSQL, {size} table", flush=True)
                    await run_backend("postgres", url, fill_db, rows, args, today_ns)
    print(f"load average at end {load()}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite-rows", type=int, default=10_000_000)
    parser.add_argument("--postgres-rows", type=int, default=2_000_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--index-alone", action="store_true")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    args.sqlite_rows = max(1000, min(args.sqlite_rows, 50_000_000))
    args.postgres_rows = max(1000, min(args.postgres_rows, 10_000_000))
    args.calls = max(3, min(args.calls, 10_000))
    args.seconds = max(1.0, min(args.seconds, 600.0))
    args.backends = [b for b in args.backends.split(",") if b in MODULES]
    asyncio.run(main(args))
