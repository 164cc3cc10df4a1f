"""Every statement a request runs reads the tables that grow through an index, on both backends.

The statements are the store modules' own ``REQUEST_QUERIES`` (the methods run those very strings; the first
test checks that the request-path methods run exactly them). Each is explained on a migrated database: SQLite's
``EXPLAIN QUERY PLAN`` on empty tables (without statistics SQLite plans as if tables were large), PostgreSQL's
``EXPLAIN (FORMAT JSON)`` on a few thousand analyzed rows with ``enable_seqscan = off``, so that a sequential scan
of a small test table is never the cheapest plan and shows up only where no index can serve the query.

A full scan is any walk of a whole table or index: SQLite's ``SCAN t`` (with or without ``USING INDEX``: a
scan in index order still reads every entry), PostgreSQL's ``Seq Scan`` and any index scan without an index
condition.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import pytest

from server.states import (
    AlertSeverity,
    AlertType,
    ChannelKind,
    DeliveryStatus,
    NotificationEvent,
    OperationKind,
    OperationStatus,
    PayloadFormat,
    ResolvedBy,
)
from server.store import Store, open_store
from server.store import postgres as postgres_store
from server.store import sqlite as sqlite_store
from server.store.records import (
    Alert,
    AlertChanges,
    AlertRule,
    ApiKey,
    App,
    Channel,
    Delivery,
    HealthSnapshot,
    Operation,
    Silence,
)
from tests.store.backends import BACKENDS, fresh_database, is_postgres, raw_sql

pytestmark = pytest.mark.timeout(60)

# The tables whose rows grow with time or with the number of tenants.
GROWING = frozenset(
    {"health_snapshots", "alerts", "deploys", "builds", "api_keys", "apps", "silences", "channels", "outbox"}
)


def _queries(location: str) -> Mapping[str, str]:
    return postgres_store.REQUEST_QUERIES if is_postgres(location) else sqlite_store.REQUEST_QUERIES


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    return fresh_database(request, tmp_path)


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    store = await open_store(database)
    try:
        yield store
    finally:
        await store.close()


def test_both_backends_name_the_same_request_queries() -> None:
    assert sorted(sqlite_store.REQUEST_QUERIES) == sorted(postgres_store.REQUEST_QUERIES)


# Request paths: the servicers (server/api/), the capabilities they call (health, overview, alert book) and
# auth. Each variant of a method whose SQL depends on its arguments is called once. ``off_the_record`` runs the
# evaluator's writes a request path needs to find (a notified alert) without counting their statements.
async def _request_path(store: Store, off_the_record: Callable[[Awaitable[Any]], Awaitable[Any]]) -> None:
    await store.create_workspace("ws_a", "A", 1)
    await store.get_workspace("ws_a")
    await store.upsert_app(App("app_a", "ws_a", "api", "api", 512, 1, 1))
    await store.get_app("ws_a", "app_a")
    await store.list_apps("ws_a")
    for kind in OperationKind:
        await store.record_operation(kind, Operation(f"{kind}_1", "app_a", "ws_a", OperationStatus.FAILED, 5, None))
        await store.count_operations(kind, "ws_a")
        await store.count_operations(kind, "ws_a", since_ns=1, status=OperationStatus.FAILED)
        await store.recent_operations(kind, "ws_a", 5)
    await store.last_deploy_started_ns("app_a", OperationStatus.SUCCEEDED)
    await store.deploys_between("app_a", 1, 10, 5)
    await store.create_api_key(ApiKey("key_a", "ws_a", "ci", "dor_sk_abc", 1, None), b"hash")
    await store.find_api_key(b"hash")
    await store.list_api_keys("ws_a")
    await store.revoke_api_key("ws_a", "key_a", 2)
    await store.latest_snapshot("app_a")
    await store.latest_snapshots("ws_a")
    await store.app_health_reads("ws_a", "app_a")
    # Two evaluations of different statuses (the evaluator's write): the walk runs each of its statements.
    await off_the_record(
        store.save_snapshots(
            [
                HealthSnapshot("app_a", "ws_a", t, s, None, 1, None, None, ())
                for t, s in ((12, "healthy"), (15, "unknown"))
            ]
        )
    )
    await store.health_transitions("app_a", 10, 20, 100)
    await store.health_status_counts("app_a", (15, 12, 10), 20)
    await store.get_alert("ws_a", "alr_a")
    for app_id in ("", "app_a"):
        for resolved in (None, True, False):
            await store.list_alerts("ws_a", app_id=app_id, resolved=resolved, limit=10)
    await store.resolve_alert("ws_a", "alr_a", 3, ResolvedBy.MANUAL)
    # Notification channels and silences; an acknowledgement and a resolution of a notified alert queue events
    # in their transactions (the channel's subscribers, the outbox rows).
    channel = Channel(
        "chn_a", "ws_a", "ops", ChannelKind.WEBHOOK, "https://hooks.test/a", PayloadFormat.SERVICE, "whsec_a",
        tuple(NotificationEvent), 0, 1,
    )  # fmt: skip
    await store.create_channel(channel)
    await store.get_channel("ws_a", "chn_a")
    await store.list_channels("ws_a")
    await store.update_channel(channel)
    silence = Silence("sil_a", "ws_a", "app_a", (AlertType.HIGH_CPU,), 1, 10, "maintenance", "key_a", 1)
    await store.count_live_silences("ws_a", 1)
    await store.create_silence(silence)
    await store.get_silence("ws_a", "sil_a")
    await store.list_silences("ws_a", limit=10)
    await store.update_silence(silence)
    fired = Alert(
        "alr_b", "ws_a", "app_a", AlertType.HIGH_CPU, AlertSeverity.WARNING, "m", 2, None, None, notified_ns=2
    )
    await off_the_record(store.apply_alert_changes(AlertChanges(2, fire=[fired])))
    await store.acknowledge_alert("ws_a", "alr_b", 3, "key_a", "on it", None)
    await store.resolve_alert("ws_a", "alr_b", 4, ResolvedBy.MANUAL, "key_a")
    await store.enqueue_delivery(
        Delivery("evt_a", "chn_a", "ws_a", NotificationEvent.TEST, None, 5, DeliveryStatus.PENDING, 0, 5, *[None] * 4)
    )
    await store.list_deliveries("ws_a", "chn_a", limit=10)
    await store.list_deliveries("ws_a", "chn_a", status=DeliveryStatus.PENDING, limit=10)
    await store.get_delivery("ws_a", "evt_a")
    await store.delete_channel("ws_a", "chn_a")
    rule = AlertRule("rule_a", "ws_a", "app_a", AlertType.HIGH_CPU, 70, 90, 60, 60, 1, 1)
    await store.create_alert_rule(rule)
    await store.get_alert_rule("ws_a", "rule_a")
    await store.list_alert_rules("ws_a")
    await store.update_alert_rule(rule)
    await store.delete_alert_rule("ws_a", "rule_a")
    await store.current_lease("evaluator")
    await store.delete_app("ws_a", "app_a")


# The methods that send a statement, of aiosqlite's and sqlite3's connections and of asyncpg's.
_SENDING = frozenset({"execute", "execute_fetchall", "executemany", "fetch", "fetchrow", "fetchval"})
# What SqliteStore._transaction sends around a transaction's statements: not queries.
_TRANSACTION_CONTROL = frozenset({"BEGIN IMMEDIATE", "COMMIT"})


class _RecordingConnection:
    """A connection, noting the SQL of every statement sent through it."""

    def __init__(self, connection: Any, seen: list[str]):
        self._connection = connection
        self._seen = seen

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._connection, name)
        if name not in _SENDING:
            return attribute
        return _recording(attribute, self._seen)


def _recording(method: Callable[..., Awaitable[Any]], seen: list[str]) -> Callable[..., Awaitable[Any]]:
    def recorded(sql: str, *args: Any) -> Awaitable[Any]:
        seen.append(sql)
        return method(sql, *args)

    return recorded


def _record(store: Any, seen: list[str]) -> None:
    if isinstance(store, sqlite_store.SqliteStore):
        if store._tx_db is not store._db:  # the transactions' own connection
            store._tx_db = _RecordingConnection(store._tx_db, seen)
        store._db = _RecordingConnection(store._db, seen)
        if store._reader is not None:  # the reads on the loop's thread
            store._reader = _RecordingConnection(store._reader, seen)
        return
    for name in ("_one", "_all", "_execute"):  # every lone statement of the PostgreSQL store goes through these
        setattr(store, name, _recording(getattr(store, name), seen))
    transaction = store._transaction  # ... and the statements of its transactions through the connection it yields

    @contextlib.asynccontextmanager
    async def recorded_transaction(*args: Any, **kwargs: Any) -> AsyncIterator[_RecordingConnection]:
        async with transaction(*args, **kwargs) as connection:
            yield _RecordingConnection(connection, seen)

    store._transaction = recorded_transaction


async def test_the_request_paths_run_exactly_the_listed_queries(store: Store, database: str) -> None:
    seen: list[str] = []

    async def off_the_record(write: Awaitable[Any]) -> None:
        mark = len(seen)
        await write
        del seen[mark:]

    _record(store, seen)
    await _request_path(store, off_the_record)
    seen = [sql for sql in seen if sql not in _TRANSACTION_CONTROL]
    listed = _queries(database)
    assert {sql for sql in seen if sql not in listed.values()} == set()
    assert {name for name, sql in listed.items() if sql not in seen} == set()


def _sqlite_full_scans(plan: list[tuple[Any, ...]], tables: set[str]) -> list[str]:
    """SCAN rows of a growing table, or of a name that is no table (an alias, which could stand for one)."""
    scans = []
    for *_, detail in plan:
        match = re.match(r"SCAN (\w+)", detail)
        if match and detail != "SCAN CONSTANT ROW" and (match.group(1) in GROWING or match.group(1) not in tables):
            scans.append(detail)
    return scans


def _postgres_full_scans(node: Mapping[str, Any]) -> list[str]:
    scans = []
    relation = node.get("Relation Name")
    kind = node["Node Type"]
    if relation in GROWING and (
        kind == "Seq Scan" or (kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node)
    ):
        scans.append(f"{kind} on {relation}" + (f" using {node['Index Name']}" if "Index Name" in node else ""))
    for child in node.get("Plans", ()):
        scans += _postgres_full_scans(child)
    return scans


# A value of each parameter type the request queries use, for PostgreSQL to plan with.
_SAMPLE_VALUES = {"text": "x", "int8": 20, "int4": 20, "float8": 1.0, "bytea": b"x"}


# A few thousand rows and their statistics, so that PostgreSQL weighs the indexes as it would on a real database
# (on empty tables any index looks as cheap as another); most alerts resolved, one open per app.
_POSTGRES_ROWS = """
INSERT INTO workspaces SELECT 'ws_' || i, 'w', 1 FROM generate_series(0, 49) i;
INSERT INTO apps SELECT 'app_' || i, 'ws_' || i % 50, 'a', 'a', 512, 1, 1 FROM generate_series(0, 499) i;
INSERT INTO health_snapshots SELECT 'app_' || i % 500, 'ws_' || i % 50, i, 'healthy', NULL, 1, 0, 1, '[]'
    FROM generate_series(0, 19999) i;
INSERT INTO alerts (id, workspace_id, app_id, type, severity, message, triggered_ns, resolved_ns, resolved_by)
    SELECT 'alr_' || i, 'ws_' || i % 50, 'app_' || i % 500, 'high_cpu', 'warning', 'm', i,
        CASE WHEN i < 4500 THEN i + 1 END, CASE WHEN i < 4500 THEN 'recovery' END FROM generate_series(0, 4999) i;
INSERT INTO deploys SELECT 'app_' || i % 500, 'dep_' || i, 'ws_' || i % 50, 'succeeded', i, i
    FROM generate_series(0, 4999) i;
INSERT INTO builds SELECT 'app_' || i % 500, 'bld_' || i, 'ws_' || i % 50, 'failed', i, i
    FROM generate_series(0, 4999) i;
INSERT INTO api_keys SELECT 'key_' || i, 'ws_' || i % 50, 'k', 'dor_sk_', decode(md5(i::text), 'hex'), i, NULL
    FROM generate_series(0, 1999) i;
INSERT INTO silences SELECT 'sil_' || i, 'ws_' || i % 50, NULL, '', i, i + 100, '', 'key_0', i
    FROM generate_series(0, 1999) i;
INSERT INTO channels SELECT 'chn_' || i, 'ws_' || i % 50, 'c', 'webhook', 'https://h.test', 'service', 's',
    'fired,resolved', 0, i FROM generate_series(0, 199) i;
INSERT INTO outbox SELECT 'evt_' || i, 'chn_' || i % 200, 'ws_' || i % 50, 'fired', 'alr_' || i, i,
    CASE WHEN i < 4900 THEN 'delivered' ELSE 'pending' END, 1, CASE WHEN i >= 4900 THEN i END, i, 200, NULL, NULL
    FROM generate_series(0, 4999) i;
ANALYZE;
"""


async def _postgres_plans(location: str, queries: Mapping[str, str]) -> dict[str, list[str]]:
    connection = await asyncpg.connect(location)
    try:
        await connection.execute(_POSTGRES_ROWS)
        await connection.execute("SET enable_seqscan = off")
        scans = {}
        for name, sql in queries.items():
            statement = await connection.prepare(f"EXPLAIN (FORMAT JSON) {sql}")
            args = [_SAMPLE_VALUES[parameter.name] for parameter in statement.get_parameters()]
            (explained,) = json.loads(await statement.fetchval(*args))
            scans[name] = _postgres_full_scans(explained["Plan"])
        return scans
    finally:
        await connection.close()


def _sqlite_plans(location: str, queries: Mapping[str, str]) -> dict[str, list[str]]:
    connection = sqlite3.connect(location)
    try:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        scans = {}
        for name, sql in queries.items():
            # The planner does not look at the values (there are no statistics); any will do.
            plan = connection.execute(f"EXPLAIN QUERY PLAN {sql}", [None] * sql.count("?")).fetchall()
            scans[name] = _sqlite_full_scans(plan, tables)
        return scans
    finally:
        connection.close()


async def test_no_request_query_scans_a_growing_table(store: Store, database: str) -> None:
    queries = _queries(database)
    plans = await _postgres_plans(database, queries) if is_postgres(database) else _sqlite_plans(database, queries)
    assert {name: scans for name, scans in plans.items() if scans} == {}


async def _indexed_foreign_keys(location: str) -> dict[tuple[str, str], bool]:
    """(table, column) of every foreign key of a growing table → whether an index (not partial) leads with it:
    deleting the parent (DeleteApp) looks the children up by that column."""
    async with raw_sql(location) as sql:
        if is_postgres(location):
            rows = await sql(
                "SELECT c.conrelid::regclass::text, a.attname, EXISTS (SELECT 1 FROM pg_index i"
                " WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1] AND i.indpred IS NULL)"
                " FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
                " WHERE c.contype = 'f'"
            )
            return {(table, column): indexed for table, column, indexed in rows if table in GROWING}
        found = {}
        for table in sorted(GROWING):
            leading = set()
            for _, index, _, _, partial in await sql(f"PRAGMA index_list({table})"):
                if not partial:
                    leading.add((await sql(f"PRAGMA index_info({index})"))[0][2])
            for key in await sql(f"PRAGMA foreign_key_list({table})"):
                found[(table, key[3])] = key[3] in leading
        return found


async def test_the_foreign_keys_of_growing_tables_are_indexed(store: Store, database: str) -> None:
    indexed = await _indexed_foreign_keys(database)
    assert ("alerts", "app_id") in indexed
    assert [key for key, ok in indexed.items() if not ok] == []


async def test_latest_snapshots_are_each_apps_newest_row_as_a_plain_group_by_finds_them(
    store: Store, database: str
) -> None:
    """The request query reads each app's newest row through an index; the answer must be the one the plain
    aggregate over the whole table gives, for every workspace and for all of them."""
    workspaces = ("ws_a", "ws_b", "ws_empty")
    for workspace in workspaces:
        await store.create_workspace(workspace, workspace, 1)
    apps = [(f"app_{i}", "ws_a" if i % 3 else "ws_b") for i in range(9)]
    for app_id, workspace in apps:
        await store.upsert_app(App(app_id, workspace, app_id, app_id, 512, 1, 1))
    for tick in range(1, 6):
        # app_0 is never judged, app_1 stops after the second tick, app_4 misses the last one.
        judged = [(i, app_id, ws) for i, (app_id, ws) in enumerate(apps) if i and (i, tick > 2) != (1, True)]
        status = "healthy" if tick % 2 else "degraded"
        await store.save_snapshots(
            [
                HealthSnapshot(app_id, ws, tick * 10 + i, status, i, i, 0.5, 9.0, (f"tick {tick}",))
                for i, app_id, ws in judged
                if (i, tick) != (4, 5)
            ]
        )
    # A snapshot naming a workspace its app is not in (the app was deleted and registered elsewhere since the
    # tick listed it) is skipped: every snapshot lies in its app's workspace, so the latest rows can be found
    # from the workspace's apps.
    await store.save_snapshots([HealthSnapshot("app_3", "ws_a", 99, "healthy", 1, 1, 0.0, 1.0, ())])
    await store.delete_app("ws_a", "app_2")  # its snapshots go with it
    newest = (
        "SELECT h.app_id, h.checked_ns, h.status, h.reasons FROM health_snapshots h JOIN (SELECT app_id,"
        " max(checked_ns) AS t FROM health_snapshots {where} GROUP BY app_id) m ON h.app_id = m.app_id"
        " AND h.checked_ns = m.t ORDER BY h.app_id"
    )
    async with raw_sql(database) as sql:
        for workspace in (*workspaces, None):
            where = "" if workspace is None else f"WHERE workspace_id = '{workspace}'"
            expected = [
                (app_id, t, status, reasons) for app_id, t, status, reasons in await sql(newest.format(where=where))
            ]
            got = await store.latest_snapshots(workspace)
            assert [(s.app_id, s.checked_ns, s.status, json.dumps(list(s.reasons))) for s in got] == expected
            assert len(expected) == {"ws_a": 5, "ws_b": 2, "ws_empty": 0, None: 7}[workspace]
