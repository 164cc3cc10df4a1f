"""The evaluator in-process over the real Prometheus and a real SQLite file: grouped queries, joins, failures."""

from __future__ import annotations

import asyncio
import math
import pathlib
from collections.abc import AsyncIterator

import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.config import HealthSettings
from server.metrics.evaluator import Evaluator, Tick
from server.metrics.health import HealthRecorder, HealthService, UptimeHistory
from server.metrics.prometheus import PrometheusClient
from server.metrics.promql import GROUPED_TEMPLATES, Queries
from server.store import SqliteStore, open_sqlite
from server.store.records import App, HealthSnapshot
from testing import metrics_data as data
from testing.procs import free_port
from testing.prometheus import CountingTransport
from tests.metrics.conftest import Backfilled

pytestmark = pytest.mark.timeout(60)


class Recorder:
    def __init__(self, wanted: int = 1) -> None:
        self.ticks: list[Tick] = []
        self.enough = asyncio.Event()
        self._wanted = wanted

    async def on_tick(self, tick: Tick) -> None:
        self.ticks.append(tick)
        if len(self.ticks) >= self._wanted:
            self.enough.set()


class Broken:
    async def on_tick(self, tick: Tick) -> None:
        raise RuntimeError("a listener bug")


@pytest.fixture
async def store(tmp_path: pathlib.Path) -> AsyncIterator[SqliteStore]:
    store = await open_sqlite(str(tmp_path / "evaluator.db"))
    await store.create_workspace(data.WORKSPACE, "metrics", 1)
    yield store
    await store.close()


async def add_apps(store: SqliteStore, ids: list[str]) -> None:
    for app_id in ids:
        await store.upsert_app(App(app_id, data.WORKSPACE, app_id, app_id, 512, 1, 1))


def at(backfilled: Backfilled) -> int:
    """A tick time on the sample grid, so rates are exact (see testing/metrics_data.py)."""
    return backfilled.now // 60 * 60 * 10**9


async def test_one_tick_sends_the_same_number_of_queries_for_1_and_for_500_apps(
    store: SqliteStore, backfilled: Backfilled
) -> None:
    transport = CountingTransport()
    client = PrometheusClient(backfilled.prometheus.url, 5.0, transport=transport)
    try:
        evaluator = Evaluator(store, client, Queries(), [], interval_s=30, clock=lambda: at(backfilled))
        await add_apps(store, ["app_healthy"])
        one = await evaluator.evaluate()
        sent_for_one = transport.requests
        await add_apps(store, [f"bulk_{i:03d}" for i in range(499)])
        many = await evaluator.evaluate()
    finally:
        await client.close()
    assert sent_for_one == len(GROUPED_TEMPLATES) == one.queries
    assert transport.requests - sent_for_one == sent_for_one == many.queries
    assert (len(one.samples), len(many.samples)) == (1, 500)


async def test_samples_join_each_app_with_its_own_series(store: SqliteStore, backfilled: Backfilled) -> None:
    await add_apps(store, [data.FULL, "app_some_down", "app_erroring", "app_all_down", "app_new"])
    client = PrometheusClient(backfilled.prometheus.url, 5.0)
    try:
        tick = await Evaluator(store, client, Queries(), [], interval_s=30, clock=lambda: at(backfilled)).evaluate()
    finally:
        await client.close()
    assert tick.error is None
    by_id = {s.app.id: s for s in tick.samples}
    t = backfilled.now // 60 * 60
    full, model = by_id[data.FULL], backfilled.model
    assert full.memory_mib == data.memory_bytes(t) / data.MIB  # not the neighbour's 1e12, not the pod series
    assert math.isclose(full.cpu_percent or 0, model.expected("cpu", t, 60) or 0, rel_tol=1e-9)
    assert math.isclose(full.error_rate_percent or 0, model.expected("error_rate", t, 60) or 0, abs_tol=1e-9)
    assert math.isclose(full.latency_ms or 0, model.expected("request_latency", t, 60) or 0, rel_tol=1e-9)
    assert math.isclose(full.request_rate or 0, (model.ok.delta(t, 300) + model.errors.delta(t, 300)) / 300)
    assert (full.instances_up, full.instances_total) == (int(1 + data.second_instance_up(t)), 2)
    assert (by_id["app_some_down"].instances_up, by_id["app_some_down"].instances_total) == (2, 3)
    assert math.isclose(by_id["app_erroring"].error_rate_percent or 0, 10.0, rel_tol=1e-9)
    assert math.isclose(by_id["app_erroring"].latency_ms or 0, 100.0, rel_tol=1e-9)
    assert (by_id["app_all_down"].instances_up, by_id["app_all_down"].instances_total) == (0, 2)
    new = by_id["app_new"]
    assert (new.instances_up, new.instances_total, new.memory_mib, new.error_rate_percent) == (None, None, None, None)


async def test_prometheus_down_gives_a_tick_with_the_error_and_every_app(store: SqliteStore) -> None:
    await add_apps(store, ["app_healthy", "app_slow"])
    recorder = Recorder()
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", 2.0)
    try:
        evaluator = Evaluator(
            store, client, Queries(), [recorder, HealthRecorder(store, HealthSettings())], interval_s=30
        )
        tick = await evaluator.evaluate()
    finally:
        await client.close()
    assert list(tick.samples) == []
    assert tick.error is not None and tick.error.startswith("prometheus unavailable: connection refused")
    assert [a.id for a in tick.apps] == ["app_healthy", "app_slow"]
    assert recorder.ticks == [tick]
    snapshot = await store.latest_snapshot("app_healthy")
    assert snapshot is not None and snapshot.status == "unknown"
    assert snapshot.reasons == ("no data this tick: prometheus unavailable",)  # which backend, not how


async def test_a_failing_listener_does_not_stop_the_others_or_the_loop(
    store: SqliteStore, backfilled: Backfilled
) -> None:
    await add_apps(store, ["app_healthy"])
    recorder = Recorder(wanted=3)
    client = PrometheusClient(backfilled.prometheus.url, 5.0)
    evaluator = Evaluator(store, client, Queries(), [Broken(), recorder], interval_s=0.05)
    task = asyncio.create_task(evaluator.run())
    try:
        await asyncio.wait_for(recorder.enough.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
    times = [t.now_ns for t in recorder.ticks]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(t.error is None and len(t.samples) == 1 for t in recorder.ticks)


async def test_health_snapshots_older_than_the_retention_are_pruned(store: SqliteStore, backfilled: Backfilled) -> None:
    await add_apps(store, ["app_healthy"])
    now_ns = [at(backfilled) - 3 * 10**9]
    client = PrometheusClient(backfilled.prometheus.url, 5.0)
    health = HealthRecorder(store, HealthSettings(snapshot_retention_s=1.5))
    evaluator = Evaluator(store, client, Queries(), [health], interval_s=30, clock=lambda: now_ns[0])
    try:
        for _ in range(4):  # ticks 1 s apart, keeping 1.5 s: two snapshots survive
            await evaluator.evaluate()
            now_ns[0] += 10**9
    finally:
        await client.close()
    rows = await store._all("SELECT checked_ns, up_since_ns FROM health_snapshots ORDER BY checked_ns")
    first_tick = at(backfilled) - 3 * 10**9
    assert [r["checked_ns"] for r in rows] == [first_tick + 2 * 10**9, first_tick + 3 * 10**9]
    assert {r["up_since_ns"] for r in rows} == {first_tick}  # uptime counts from the first tick seen up


async def test_a_snapshot_older_than_three_missed_ticks_reads_as_unknown(store: SqliteStore) -> None:
    await add_apps(store, ["app_healthy"])
    checked_ns = 1_800_000_000 * 10**9
    snapshot = HealthSnapshot("app_healthy", data.WORKSPACE, checked_ns, "healthy", checked_ns, 2, 1.0, 100.0, ())
    await store.save_snapshots([snapshot])
    app = await store.get_app(data.WORKSPACE, "app_healthy")
    assert app is not None

    fresh = await HealthService(store, stale_after_s=90, clock=lambda: checked_ns + 90 * 10**9).app_health(app)
    assert fresh.status == pb.HEALTH_STATUS_HEALTHY and fresh.instance_count == 2

    stale = await HealthService(store, stale_after_s=90, clock=lambda: checked_ns + 91 * 10**9).app_health(app)
    assert stale.status == pb.HEALTH_STATUS_UNKNOWN
    assert list(stale.reasons) == ["last evaluation 91 s ago: the evaluator is not running"]
    assert stale.last_checked_at.ToNanoseconds() == checked_ns
    assert not stale.HasField("instance_count") and not stale.HasField("uptime")


async def test_uptime_history_is_read_only_for_apps_never_judged_before(
    store: SqliteStore, backfilled: Backfilled
) -> None:
    await add_apps(store, ["app_healthy", "app_recovered"])
    transport = CountingTransport()
    client = PrometheusClient(backfilled.prometheus.url, 5.0, transport=transport)
    rules = HealthSettings()
    health = HealthRecorder(store, rules, UptimeHistory(client, Queries(), rules))
    evaluator = Evaluator(store, client, Queries(), [health], interval_s=30, clock=lambda: at(backfilled))
    try:
        first = await evaluator.evaluate()
        after_first = transport.requests
        await evaluator.evaluate()
    finally:
        await client.close()
    assert after_first == first.queries + 2  # the two history queries, for both apps at once
    assert transport.requests - after_first == first.queries  # nothing new: no history read
    tick_s = at(backfilled) // 10**9
    healthy = await store.latest_snapshot("app_healthy")
    recovered = await store.latest_snapshot("app_recovered")
    assert healthy is not None and recovered is not None
    assert healthy.up_since_ns is not None and recovered.up_since_ns is not None
    # Up since its data began 30 min ago; the other since its outage ended 10 min ago (10-minute steps).
    assert 0 <= healthy.up_since_ns // 10**9 - (tick_s - data.HISTORY) <= 600
    assert 0 <= recovered.up_since_ns // 10**9 - (tick_s - 600) <= 600
