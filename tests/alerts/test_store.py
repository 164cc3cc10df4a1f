"""The store's side of the engine on both backends (a SQLite file, a PostgreSQL database): one open alert per
(app, type), the latch, a tick's changes in one transaction, alert rules' scopes — through two stores on one
database, as two processes would."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator

import pytest

from server.store import Store, open_store
from server.store.records import Alert, AlertChanges, AlertRule, App, HealthSnapshot
from tests.store.backends import BACKENDS, fresh_database

pytestmark = pytest.mark.timeout(30)


def alert(alert_id: str, app_id: str = "app_1", alert_type: str = "high_cpu") -> Alert:
    return Alert(alert_id, "ws_1", app_id, alert_type, "warning", "CPU usage exceeded 80% threshold", 5, None, None)


@pytest.fixture(params=BACKENDS)
async def stores(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[tuple[Store, Store]]:
    database = fresh_database(request, tmp_path)
    first = await open_store(database)
    second = await open_store(database)
    try:
        await first.create_workspace("ws_1", "ws_1", 1)
        for app_id in ("app_1", "app_2"):
            await first.upsert_app(App(app_id, "ws_1", app_id, app_id, 512, 1, 1))
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_two_connections_firing_the_same_breach_open_one_alert(stores: tuple[Store, Store]) -> None:
    first, second = stores
    fired = await asyncio.gather(
        first.apply_alert_changes(AlertChanges(5, fire=[alert("alr_a"), alert("alr_c", "app_2")])),
        second.apply_alert_changes(AlertChanges(5, fire=[alert("alr_b"), alert("alr_d", "app_2", "high_memory")])),
    )
    ids = sorted(a.id for batch in fired for a in batch)
    assert len([i for i in ids if i in ("alr_a", "alr_b")]) == 1  # the same (app, type): once
    assert {"alr_c", "alr_d"} <= set(ids)  # other (app, type) pairs are unaffected
    assert len(await first.open_alerts()) == 3


async def test_a_manual_resolution_latches_until_re_armed(stores: tuple[Store, Store]) -> None:
    first, second = stores
    await first.apply_alert_changes(AlertChanges(5, fire=[alert("alr_1")]))
    await first.resolve_alert("ws_1", "alr_1", 6, by="manual")
    assert [a.id for a in await second.latched_alerts()] == ["alr_1"]
    assert await second.apply_alert_changes(AlertChanges(7, fire=[alert("alr_2")])) == []

    await second.apply_alert_changes(AlertChanges(8, rearm=[("app_1", "high_cpu")]))
    assert await first.latched_alerts() == []
    assert (await first.get_alert("ws_1", "alr_1")).rearmed_ns == 8  # type: ignore[union-attr]
    assert [a.id for a in await first.apply_alert_changes(AlertChanges(9, fire=[alert("alr_3")]))] == ["alr_3"]


async def test_a_tick_resolves_and_escalates_open_alerts_only(stores: tuple[Store, Store]) -> None:
    first, _ = stores
    await first.apply_alert_changes(AlertChanges(5, fire=[alert("alr_1"), alert("alr_2", "app_2")]))
    await first.resolve_alert("ws_1", "alr_2", 6, by="manual")
    changes = AlertChanges(
        10,
        resolve=["alr_2"],  # already resolved by hand: left as it is
        escalate=[("alr_1", "critical", "CPU usage exceeded 95% threshold")],
    )
    await first.apply_alert_changes(changes)
    one, two = await first.get_alert("ws_1", "alr_1"), await first.get_alert("ws_1", "alr_2")
    assert one is not None and (one.severity, one.message, one.resolved_ns) == (
        "critical",
        "CPU usage exceeded 95% threshold",
        None,
    )
    assert two is not None and (two.resolved_ns, two.resolved_by) == (6, "manual")
    await first.apply_alert_changes(AlertChanges(11, resolve=["alr_1"]))
    one = await first.get_alert("ws_1", "alr_1")
    assert one is not None and (one.resolved_ns, one.resolved_by) == (11, "recovery")


async def test_an_app_deleted_meanwhile_is_skipped_not_fatal(stores: tuple[Store, Store]) -> None:
    first, second = stores
    await second.delete_app("ws_1", "app_2")
    fired = await first.apply_alert_changes(AlertChanges(5, fire=[alert("alr_1"), alert("alr_2", "app_2")]))
    assert [a.id for a in fired] == ["alr_1"]


async def test_alert_rules_one_per_scope_and_type(stores: tuple[Store, Store]) -> None:
    first, second = stores

    def rule(rule_id: str, app_id: str | None, alert_type: str = "high_cpu") -> AlertRule:
        return AlertRule(rule_id, "ws_1", app_id, alert_type, 80, 95, 70, 60, 1, 1)

    assert await first.create_alert_rule(rule("rule_ws", None)) is not None
    assert await second.create_alert_rule(rule("rule_ws_again", None)) is None
    assert await second.create_alert_rule(rule("rule_app", "app_1")) is not None
    assert await second.create_alert_rule(rule("rule_app_mem", "app_1", "high_memory")) is not None
    assert [r.id for r in await first.list_alert_rules("ws_1")] == ["rule_ws", "rule_app", "rule_app_mem"]


async def test_concurrent_transactions_and_writes_on_one_store_do_not_mix(
    stores: tuple[Store, Store],
) -> None:
    """The evaluator runs the health and alert listeners concurrently, and RPCs write meanwhile."""
    store, _ = stores
    snapshots = [HealthSnapshot(app, "ws_1", 10, "healthy", None, 1, 0.0, 1.0, ()) for app in ("app_1", "app_2")]
    results = await asyncio.gather(
        store.save_snapshots(snapshots),
        store.apply_alert_changes(AlertChanges(5, fire=[alert("alr_1"), alert("alr_2", "app_2")])),
        store.create_workspace("ws_2", "ws_2", 1),
        store.apply_alert_changes(AlertChanges(5, fire=[alert("alr_3", alert_type="high_memory")])),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len(await store.open_alerts()) == 3
    assert len(await store.latest_snapshots("ws_1")) == 2
    assert await store.get_workspace("ws_2") is not None


async def test_overlapping_ticks_touching_the_same_alerts_in_opposite_orders_both_complete(
    stores: tuple[Store, Store],
) -> None:
    """Row locks taken in opposite orders would deadlock two PostgreSQL transactions; the store orders them."""
    first, second = stores
    pairs = [("app_1", "high_cpu"), ("app_2", "high_cpu"), ("app_1", "high_memory"), ("app_2", "high_memory")]
    for round_ in range(5):
        fires = [alert(f"alr_{round_}_{n}", app_id, alert_type) for n, (app_id, alert_type) in enumerate(pairs)]
        fired = await asyncio.gather(
            first.apply_alert_changes(AlertChanges(5, fire=fires)),
            second.apply_alert_changes(AlertChanges(5, fire=[*reversed(fires)])),
        )
        assert len(fired[0]) + len(fired[1]) == len(pairs)  # each (app, type) once, whoever won it
        opened = [a.id for a in await first.open_alerts()]
        await asyncio.gather(
            first.apply_alert_changes(AlertChanges(6, resolve=opened)),
            second.apply_alert_changes(AlertChanges(6, resolve=[*reversed(opened)])),
        )
        assert await first.open_alerts() == []
