"""The engine sends one query per (type, distinct hold), counted on the wire: 1 app or 300, per-app rules
or none. The server's own RulesEngine, in-process, over the stage's real Prometheus and real SQLite files."""

from __future__ import annotations

import pathlib
import sqlite3
import time

import pytest

from server.alerts.engine import RulesEngine
from server.config import AlertSettings
from server.metrics.evaluator import Tick
from server.metrics.prometheus import PrometheusClient
from server.metrics.promql import Queries
from server.store import open_sqlite
from server.store.records import AlertRule
from testing.prometheus import CountingTransport
from tests.alerts.conftest import Stage

pytestmark = pytest.mark.timeout(60)


async def queries_per_tick(stage: Stage, db: pathlib.Path, apps: int, with_rules: int = 0) -> int:
    """Queries of one tick over ``apps`` apps, the first ``with_rules`` of them with a high_cpu rule of their own."""
    store = await open_sqlite(str(db))  # the schema, through the migrations
    with sqlite3.connect(db) as bulk:  # one transaction for the fleet (hundreds of fsyncs otherwise)
        bulk.execute("INSERT INTO workspaces VALUES ('ws_count', 'ws_count', 0)")
        bulk.executemany(
            "INSERT INTO apps VALUES (?, 'ws_count', ?, ?, 512, 1, 0)", [(f"c_{i:03d}",) * 3 for i in range(apps)]
        )
    for i in range(with_rules):  # thresholds differ per app; the hold (120 s) is the same for all
        rule = AlertRule(f"rule_{i:03d}", "ws_count", f"c_{i:03d}", "high_cpu", 60 + i % 7, 90, 40, 120, 0, 0)
        assert await store.create_alert_rule(rule) is not None
    transport = CountingTransport()
    client = PrometheusClient(stage.prometheus.url, 10, transport=transport)
    try:
        engine = RulesEngine(store, client, Queries(), AlertSettings())
        await engine.on_tick(Tick(time.time_ns(), (), apps=await store.list_all_apps()))
        return transport.requests
    finally:
        await client.close()
        await store.close()


async def test_queries_per_tick_do_not_depend_on_the_number_of_apps(stage: Stage, tmp_path: pathlib.Path) -> None:
    one = await queries_per_tick(stage, tmp_path / "one.db", 1)
    many = await queries_per_tick(stage, tmp_path / "many.db", 300)
    assert one == many == 4  # the four default rules, one hold each

    # 150 apps with per-app high_cpu rules (one hold, 120 s), 150 on the default (300 s): one more query.
    assert await queries_per_tick(stage, tmp_path / "half.db", 300, with_rules=150) == 5
    # Every app with its own rule: the default's hold is no longer in effect for high_cpu.
    assert await queries_per_tick(stage, tmp_path / "all.db", 300, with_rules=300) == 4
