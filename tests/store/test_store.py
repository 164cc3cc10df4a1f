"""Both store backends, by the same tests: migrations, the schema, the one-open-alert constraint, snapshots.

Each test gets a fresh database of its backend (a SQLite file, or a database of the session's throwaway
PostgreSQL). SQLite-only behaviour (the file, WAL, locking) is in test_sqlite.py, PostgreSQL-only behaviour
(URLs, the pool, connection failures) in test_postgres.py.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator

import pytest

from server.states import AlertSeverity, AlertType, OperationKind, OperationStatus, ResolvedBy
from server.store import Store, open_store
from server.store.records import Alert, AlertChanges, App, AppHealthReads, HealthSnapshot, Operation
from server.store.schema import migrations
from testing.postgres import PostgresCluster
from tests.store.backends import BACKENDS, UNIQUE_VIOLATION, fresh_database, raw_sql, schema_of, schema_versions

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    return fresh_database(request, tmp_path)


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    """A store with workspace ws_a and its app app_a."""
    store = await open_store(database)
    try:
        await store.create_workspace("ws_a", "A", 1)
        await store.upsert_app(App("app_a", "ws_a", "api", "api", 512, 1, 1))
        yield store
    finally:
        await store.close()


def _backend(database: str) -> str:
    return "postgres" if database.startswith("postgresql://") else "sqlite"


async def test_migrations_apply_once_and_are_recorded(database: str) -> None:
    for _ in range(2):
        store = await open_store(database)
        await store.close()
    assert await schema_versions(database) == [version for version, _ in migrations(_backend(database))]


async def test_stores_opening_a_fresh_database_together_apply_each_migration_once(database: str) -> None:
    stores = await asyncio.gather(*(open_store(database) for _ in range(3)))
    for store in stores:
        await store.close()
    versions = await schema_versions(database)
    assert versions == [version for version, _ in migrations(_backend(database))]  # each once, none missing


async def test_both_backends_end_at_the_same_schema(tmp_path: pathlib.Path, postgres_cluster: PostgresCluster) -> None:
    locations = [str(tmp_path / "schema.db"), postgres_cluster.create_database("t_schema")]
    for location in locations:
        await (await open_store(location)).close()
    sqlite_schema, postgres_schema = [await schema_of(location) for location in locations]
    assert sqlite_schema == postgres_schema
    assert {"alerts_one_open", "alerts_latched", "health_snapshots_by_time"} <= postgres_schema.indexes
    assert postgres_schema.columns["leases"] == ("name", "holder", "epoch", "expires_ns")


async def test_latest_snapshot_per_app(store: Store) -> None:
    older = HealthSnapshot("app_a", "ws_a", 10, "unknown", None, None, None, None, ())
    newer = HealthSnapshot("app_a", "ws_a", 20, "degraded", 5, 2, 7.5, 40.0, ("error rate 7.5% ≥ 5%",))
    await store.save_snapshots([older, newer])
    assert await store.latest_snapshot("app_a") == newer
    assert await store.latest_snapshots("ws_a") == [newer]
    assert await store.latest_snapshots() == [newer]


async def test_app_health_reads_are_the_app_its_newest_snapshot_and_its_last_successful_deploy(store: Store) -> None:
    app = await store.get_app("ws_a", "app_a")
    assert await store.app_health_reads("ws_a", "app_a") == AppHealthReads(app, None, None)  # type: ignore[arg-type]
    older = HealthSnapshot("app_a", "ws_a", 10, "unknown", None, None, None, None, ())
    newer = HealthSnapshot("app_a", "ws_a", 20, "degraded", 5, 2, 7.5, 40.0, ("2 of 3 instances up", "é ≥ 1"))
    await store.save_snapshots([older, newer])
    deploys = [("dep_1", OperationStatus.SUCCEEDED, 100), ("dep_2", OperationStatus.SUCCEEDED, 300)]
    deploys += [("dep_3", OperationStatus.FAILED, 400), ("dep_4", OperationStatus.RUNNING, 500)]
    for deploy_id, status, started_ns in deploys:
        await store.record_operation(
            OperationKind.DEPLOY, Operation(deploy_id, "app_a", "ws_a", status, started_ns, None)
        )
    reads = await store.app_health_reads("ws_a", "app_a")
    assert reads == AppHealthReads(app, newer, 300)  # type: ignore[arg-type]
    # The same answers as the separate reads.
    assert reads.snapshot == await store.latest_snapshot("app_a")  # type: ignore[union-attr]
    assert reads.last_deploy_started_ns == await store.last_deploy_started_ns("app_a", OperationStatus.SUCCEEDED)  # type: ignore[union-attr]
    assert await store.app_health_reads("ws_b", "app_a") is None  # in another workspace: not found
    assert await store.app_health_reads("ws_a", "app_missing") is None


async def test_alerts_are_listed_with_their_apps_names(store: Store) -> None:
    await store.create_workspace("ws_b", "B", 1)
    await store.upsert_app(App("app_b", "ws_b", "web", "web", 512, 1, 1))
    await store.upsert_app(App("app_c", "ws_a", "worker", "worker", 512, 1, 1))
    fired = [
        Alert("alr_1", "ws_a", "app_a", AlertType.HIGH_CPU, AlertSeverity.WARNING, "cpu ≥ 80%", 10, None, None),
        Alert("alr_2", "ws_a", "app_c", AlertType.HIGH_MEMORY, AlertSeverity.CRITICAL, "memory", 20, None, None),
        # An alert of ws_a naming an app of ws_b: listed in ws_a without a name.
        Alert("alr_3", "ws_a", "app_b", AlertType.HIGH_LATENCY, AlertSeverity.WARNING, "latency", 30, None, None),
    ]
    assert await store.apply_alert_changes(AlertChanges(now_ns=40, fire=fired)) == fired
    await store.resolve_alert("ws_a", "alr_1", 50, ResolvedBy.MANUAL)
    named = await store.list_alerts_with_app_names("ws_a", limit=10)
    assert [(alert.id, name) for alert, name in named] == [("alr_3", ""), ("alr_2", "worker"), ("alr_1", "api")]
    assert named[2][0] == Alert(
        "alr_1", "ws_a", "app_a", AlertType.HIGH_CPU, AlertSeverity.WARNING, "cpu ≥ 80%", 10, 50, ResolvedBy.MANUAL
    )
    assert [type(named[2][0].resolved_by), type(named[1][0].type)] == [ResolvedBy, AlertType]
    assert [alert for alert, _ in named] == await store.list_alerts("ws_a", limit=10)
    for app_id, resolved, limit, ids in [
        ("app_c", None, 10, ["alr_2"]),
        ("", True, 10, ["alr_1"]),
        ("", False, 10, ["alr_3", "alr_2"]),
        ("", None, 1, ["alr_3"]),
    ]:
        listed = await store.list_alerts_with_app_names("ws_a", app_id=app_id, resolved=resolved, limit=limit)
        assert [alert.id for alert, _ in listed] == ids
    assert await store.list_alerts_with_app_names("ws_b", limit=10) == []


async def test_at_most_one_open_alert_per_app_and_type(store: Store, database: str) -> None:
    # Straight SQL from another connection: the unique index holds whoever writes, not only the store's code.
    def row(alert_id: str, triggered_ns: int) -> str:
        return (
            "INSERT INTO alerts (id, workspace_id, app_id, type, severity, message, triggered_ns)"
            f" VALUES ('{alert_id}', 'ws_a', 'app_a', 'high_cpu', 'warning', 'm', {triggered_ns})"
        )

    async with raw_sql(database) as sql:
        await sql(row("alr_1", 1))
        with pytest.raises(UNIQUE_VIOLATION):
            await sql(row("alr_2", 2))
        await sql(row("alr_3", 2).replace("high_cpu", "high_memory"))  # another type: its own open alert
        await sql("UPDATE alerts SET resolved_ns = 3 WHERE id = 'alr_1'")
        await sql(row("alr_2", 4))
    assert sorted(a.id for a in await store.open_alerts()) == ["alr_2", "alr_3"]


async def test_snapshots_of_an_app_deleted_during_the_tick_do_not_sink_the_others(store: Store) -> None:
    await store.upsert_app(App("app_b", "ws_a", "web", "web", 512, 1, 1))
    await store.delete_app("ws_a", "app_b")  # between the tick listing the apps and storing its results
    kept = HealthSnapshot("app_a", "ws_a", 10, "healthy", 1, 1, 0.0, 5.0, ())
    await store.save_snapshots([kept, HealthSnapshot("app_b", "ws_a", 10, "healthy", 1, 1, 0.0, 5.0, ())])
    assert await store.latest_snapshot("app_a") == kept
    assert await store.latest_snapshot("app_b") is None


async def test_a_snapshot_saved_twice_for_one_tick_keeps_the_last(store: Store) -> None:
    first = HealthSnapshot("app_a", "ws_a", 10, "healthy", 1, 1, 0.0, 5.0, ())
    second = HealthSnapshot("app_a", "ws_a", 10, "degraded", 1, 2, 6.0, 5.0, ("error rate 6% ≥ 5%",))
    await store.save_snapshots([first])
    await store.save_snapshots([second])
    assert await store.latest_snapshot("app_a") == second


async def test_old_snapshots_are_deleted_by_age(store: Store) -> None:
    await store.save_snapshots([HealthSnapshot("app_a", "ws_a", t, "healthy", 1, 1, 0.0, 5.0, ()) for t in (1, 2, 3)])
    assert await store.delete_snapshots_before(3) == 2
    assert (await store.latest_snapshot("app_a")).checked_ns == 3  # type: ignore[union-attr]


async def test_upserting_an_id_another_workspace_owns_changes_nothing_and_says_so(store: Store) -> None:
    await store.create_workspace("ws_b", "B", 1)
    # PlatformService checks first, but two calls can pass that check together: the store decides.
    assert await store.upsert_app(App("app_a", "ws_b", "taken", "taken", 256, 2, 5)) is None
    assert await store.get_app("ws_a", "app_a") == App("app_a", "ws_a", "api", "api", 512, 1, 1)


async def test_apps_are_listed_in_byte_order_of_their_ids(store: Store) -> None:
    # SQLite compares bytes; PostgreSQL's columns use the "C" collation so a locale cannot reorder them.
    for app_id in ("app_B", "app-c", "app_a2"):
        await store.upsert_app(App(app_id, "ws_a", app_id, app_id, 512, 1, 1))
    assert [a.id for a in await store.list_apps("ws_a")] == sorted(["app_a", "app_B", "app-c", "app_a2"])


async def test_server_secrets_keep_the_first_candidate_across_stores(store: Store, database: str) -> None:
    other = await open_store(database)
    try:
        values = await asyncio.gather(
            *(s.server_secret("token", bytes([n]) * 32, n) for n, s in enumerate([store, other] * 3))
        )
    finally:
        await other.close()
    assert len(set(values)) == 1
    assert await store.server_secret("token", b"later", 9) == values[0]
