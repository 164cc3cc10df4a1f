"""The SQLite store (aiosqlite), in WAL mode with ``synchronous=FULL``: a committed write survives kill -9
and power loss. Versioned migrations in ``migrations/sqlite/NNNN_*.sql`` are applied at open, each atomically.

The reads of the hottest calls (auth, GetAppHealth, ListAlerts, an app's lookup) run on the event loop's own
thread, on a read-only connection of their own: each is a few index seeks (tests/store/test_query_plans.py)
that take 5 to 60 microseconds, where aiosqlite's hop to its thread and back costs the server about 40 (at 50
concurrent calls; more one at a time). WAL readers do not wait for writers; a read that finds the file locked
all the same (a WAL recovery, say) is not waited for on the loop but sent through aiosqlite's thread. Every
other statement goes there too. The file is local (WAL does not work over a network filesystem): a read waits
at most for a local disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

import aiosqlite

from server.ids import new_id
from server.states import DeliveryStatus, HealthStatus, NotificationEvent, OperationKind, OperationStatus, ResolvedBy
from server.store import history
from server.store.base import LeaseLost
from server.store.records import (
    ALERT_COLUMNS,
    Alert,
    AlertChanges,
    AlertRule,
    ApiKey,
    App,
    AppHealthReads,
    Attempt,
    Channel,
    Delivery,
    DueDelivery,
    Fence,
    HealthSnapshot,
    HealthTransitions,
    Lease,
    Operation,
    Silence,
    Workspace,
    alert_from_row,
    health_reads_from_row,
    pending_delivery,
)
from server.store.schema import migrations

_OPERATION_TABLES = {OperationKind.DEPLOY: "deploys", OperationKind.BUILD: "builds"}

# Every statement a request runs (the servicers in server/api/, the capabilities they call, auth), by name. The
# methods below run these very strings, and tests/store/test_query_plans.py asks SQLite's planner for each: none
# may scan a table that grows. Not here: the evaluator's statements (every app at once, once per tick: snapshots,
# the rules engine, leases), and server_secret (read once per process, then cached).
REQUEST_QUERIES: dict[str, str] = {}


def _request_query(name: str, sql: str) -> str:
    REQUEST_QUERIES[name] = sql
    return sql


_CREATE_WORKSPACE = _request_query(
    "create_workspace", "INSERT INTO workspaces (id, name, created_ns) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
_GET_WORKSPACE = _request_query("get_workspace", "SELECT * FROM workspaces WHERE id = ?")
_UPSERT_APP = _request_query(
    "upsert_app",
    "INSERT INTO apps (id, workspace_id, name, service_name, memory_limit_mib, cpu_limit_cores,"
    " created_ns) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
    " service_name = excluded.service_name, memory_limit_mib = excluded.memory_limit_mib,"
    " cpu_limit_cores = excluded.cpu_limit_cores WHERE apps.workspace_id = excluded.workspace_id",
)
_APP_COLUMNS = "id, workspace_id, name, service_name, memory_limit_mib, cpu_limit_cores, created_ns"  # App's order
_GET_APP = _request_query("get_app", f"SELECT {_APP_COLUMNS} FROM apps WHERE id = ? AND workspace_id = ?")
_LIST_APPS = _request_query("list_apps", "SELECT * FROM apps WHERE workspace_id = ? ORDER BY id")
_DELETE_APP = _request_query("delete_app", "DELETE FROM apps WHERE id = ? AND workspace_id = ?")
_RECORD_OPERATION = {
    kind: _request_query(
        f"record_operation({table})",
        f"INSERT INTO {table} (app_id, id, workspace_id, status, started_ns, finished_ns)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app_id, id) DO UPDATE SET status = excluded.status,"
        " started_ns = excluded.started_ns, finished_ns = excluded.finished_ns",
    )
    for kind, table in _OPERATION_TABLES.items()
}
_LAST_DEPLOY_STARTED = _request_query(
    "last_deploy_started_ns", "SELECT max(started_ns) AS t FROM deploys WHERE app_id = ? AND status = ?"
)
_COUNT_OPERATIONS = {
    (kind, with_status): _request_query(
        f"count_operations({table}{', status' if with_status else ''})",
        f"SELECT count(*) FROM {table} WHERE workspace_id = ? AND started_ns >= ?"
        + (" AND status = ?" if with_status else ""),
    )
    for kind, table in _OPERATION_TABLES.items()
    for with_status in (False, True)
}
_RECENT_OPERATIONS = {
    kind: _request_query(
        f"recent_operations({table})",
        f"SELECT * FROM {table} WHERE workspace_id = ? ORDER BY started_ns DESC LIMIT ?",
    )
    for kind, table in _OPERATION_TABLES.items()
}
# The newest `limit` within the window, by the (app_id, status, started_ns) index's app_id prefix; the caller
# reverses them to oldest first (a window holds few deploys, so the sort is of a handful of rows).
_DEPLOYS_BETWEEN = _request_query(
    "deploys_between",
    "SELECT * FROM deploys WHERE app_id = ? AND started_ns >= ? AND started_ns <= ?"
    " ORDER BY started_ns DESC, id DESC LIMIT ?",
)
_API_KEY_COLUMNS = "id, workspace_id, name, prefix, created_ns, revoked_ns"
_CREATE_API_KEY = _request_query(
    "create_api_key",
    "INSERT INTO api_keys (id, workspace_id, name, prefix, secret_hash, created_ns, revoked_ns)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)",
)
_FIND_API_KEY = _request_query("find_api_key", f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE secret_hash = ?")
_LIST_API_KEYS = _request_query(
    "list_api_keys", f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE workspace_id = ? ORDER BY created_ns, id"
)
_REVOKE_API_KEY = _request_query(
    "revoke_api_key",
    "UPDATE api_keys SET revoked_ns = ? WHERE id = ? AND workspace_id = ? AND revoked_ns IS NULL",
)
_GET_API_KEY = _request_query(
    "revoke_api_key(read)", f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE id = ? AND workspace_id = ?"
)
_LATEST_SNAPSHOT = _request_query(
    "latest_snapshot", "SELECT * FROM health_snapshots WHERE app_id = ? ORDER BY checked_ns DESC LIMIT 1"
)
# Each app's newest row, in app order: one seek per app on the primary key (app_id, checked_ns), from the apps
# table, rather than an aggregate over every row of the workspace's history (the table holds every app's
# snapshots of the retention period). The same rows: every snapshot lies in its app's workspace (save_snapshots
# skips any other) and goes when its app does (ON DELETE CASCADE).
_LATEST_SNAPSHOTS = (
    "SELECT health_snapshots.* FROM apps JOIN health_snapshots ON health_snapshots.app_id = apps.id"
    " AND health_snapshots.checked_ns = (SELECT newest.checked_ns FROM health_snapshots AS newest"
    " WHERE newest.app_id = apps.id ORDER BY newest.checked_ns DESC LIMIT 1)"
)
_LATEST_SNAPSHOTS_OF_WORKSPACE = _request_query(
    "latest_snapshots(workspace)",
    _LATEST_SNAPSHOTS + " WHERE apps.workspace_id = ? AND health_snapshots.workspace_id = apps.workspace_id"
    " ORDER BY apps.id",
)
_LATEST_SNAPSHOTS += " ORDER BY apps.id"  # every app's: the evaluator's, when it starts
# GetAppHealth's three reads in one statement (one trip to the database instead of three): the app's columns in
# App's order, its newest snapshot's in HealthSnapshot's (NULLs before the first tick), the last successful
# deploy's start. The snapshot is found as _LATEST_SNAPSHOTS finds it, the deploy by deploys_by_app_status.
_APP_HEALTH_READS = _request_query(
    "app_health_reads",
    "SELECT apps.id, apps.workspace_id, apps.name, apps.service_name, apps.memory_limit_mib,"
    " apps.cpu_limit_cores, apps.created_ns, newest.app_id, newest.workspace_id, newest.checked_ns, newest.status,"
    " newest.up_since_ns, newest.instance_count, newest.error_rate, newest.avg_latency_ms, newest.reasons,"
    " (SELECT max(deploys.started_ns) FROM deploys WHERE deploys.app_id = apps.id"
    f" AND deploys.status = '{OperationStatus.SUCCEEDED}')"
    " FROM apps LEFT JOIN health_snapshots AS newest ON newest.app_id = apps.id AND newest.checked_ns ="
    " (SELECT latest.checked_ns FROM health_snapshots AS latest WHERE latest.app_id = apps.id"
    " ORDER BY latest.checked_ns DESC LIMIT 1)"
    " WHERE apps.id = ? AND apps.workspace_id = ?",
)
# GetAppHealthHistory's statements (server/store/history.py walks them): seeks, and range counts on
# health_snapshots_by_status.
_LATEST_BEFORE = _request_query("health_latest_before", history.latest_before_sql(lambda _: "?"))
_LAST_OF_EACH_STATUS = _request_query("health_last_of_each_status", history.last_of_each_status_sql(lambda _: "?"))
_FIRST_AFTER = _request_query("health_first_after", history.first_after_sql(lambda _: "?"))
_SEGMENT_COUNTS = _request_query("health_segment_counts", history.segment_counts_sql(lambda _: "?"))
_GET_ALERT = _request_query("get_alert", "SELECT * FROM alerts WHERE id = ? AND workspace_id = ?")
# The alerts' columns in ALERT_COLUMNS' order, then the name of each one's app ('' when it is not in the
# workspace): one statement, not a second one listing the workspace's apps.
_LIST_ALERTS = {
    (by_app, resolved): _request_query(
        f"list_alerts({'app' if by_app else 'workspace'}"
        f"{'' if resolved is None else ', resolved' if resolved else ', open'})",
        "SELECT "
        + ", ".join(f"alerts.{column}" for column in ALERT_COLUMNS)
        + ", coalesce(apps.name, '') FROM alerts LEFT JOIN apps ON apps.id = alerts.app_id"
        " AND apps.workspace_id = alerts.workspace_id WHERE alerts.workspace_id = ?"
        + (" AND alerts.app_id = ?" if by_app else "")
        + (
            ""
            if resolved is None
            else " AND alerts.resolved_ns IS NOT NULL"
            if resolved
            else " AND alerts.resolved_ns IS NULL"
        )
        + " ORDER BY alerts.triggered_ns DESC, alerts.id DESC LIMIT ?",
    )
    for by_app in (False, True)
    for resolved in (None, True, False)
}
_RESOLVE_ALERT = _request_query(
    "resolve_alert",
    "UPDATE alerts SET resolved_ns = ?, resolved_by = ?, resolved_by_key = ? WHERE id = ? AND workspace_id = ?"
    " AND resolved_ns IS NULL",
)
# Only an open alert whose acknowledgement is not in effect: never acknowledged, or lapsed (ack_until_ns NULL
# means "until resolved", and NULL <= ? is not true). A second acknowledgement while one stands changes nothing,
# so it queues no second event.
_ACKNOWLEDGE_ALERT = _request_query(
    "acknowledge_alert",
    "UPDATE alerts SET acknowledged_ns = ?, acknowledged_by = ?, ack_note = ?, ack_until_ns = ?"
    " WHERE id = ? AND workspace_id = ? AND resolved_ns IS NULL AND (acknowledged_ns IS NULL OR ack_until_ns <= ?)",
)
# The channels of a workspace and the events each takes: whom an alert change is told to (a few rows; the
# event is matched in Python, the same way on both backends).
_SUBSCRIBERS = _request_query("subscribers", "SELECT id, events FROM channels WHERE workspace_id = ?")
_DELIVERY_COLUMNS = (
    "id, channel_id, workspace_id, event, alert_id, created_ns, status, attempts, next_attempt_ns,"
    " last_attempt_ns, last_status_code, last_error, body"
)  # Delivery's order
# An outbox row as given: the events alert changes queue, and enqueue_delivery's test events.
_ENQUEUE_DELIVERY = _request_query(
    "enqueue_delivery",
    f"INSERT INTO outbox ({_DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
_GET_DELIVERY = _request_query(
    "get_delivery", f"SELECT {_DELIVERY_COLUMNS} FROM outbox WHERE id = ? AND workspace_id = ?"
)
# A channel's log, newest first, by outbox_by_channel (the status, when asked for, filters the walk).
_LIST_DELIVERIES = {
    with_status: _request_query(
        f"list_deliveries{'(status)' if with_status else ''}",
        f"SELECT {_DELIVERY_COLUMNS} FROM outbox WHERE channel_id = ? AND workspace_id = ?"
        + (" AND status = ?" if with_status else "")
        + " ORDER BY created_ns DESC, id DESC LIMIT ?",
    )
    for with_status in (False, True)
}
_SILENCE_COLUMNS = "id, workspace_id, app_id, alert_types, starts_ns, ends_ns, comment, created_by, created_ns"
_CREATE_SILENCE = _request_query(
    "create_silence", f"INSERT INTO silences ({_SILENCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_GET_SILENCE = _request_query(
    "get_silence", f"SELECT {_SILENCE_COLUMNS} FROM silences WHERE id = ? AND workspace_id = ?"
)
_LIST_SILENCES = _request_query(
    "list_silences",
    f"SELECT {_SILENCE_COLUMNS} FROM silences WHERE workspace_id = ? ORDER BY starts_ns DESC, id DESC LIMIT ?",
)
_UPDATE_SILENCE = _request_query(
    "update_silence",
    "UPDATE silences SET app_id = ?, alert_types = ?, starts_ns = ?, ends_ns = ?, comment = ?"
    " WHERE id = ? AND workspace_id = ?",
)
_COUNT_LIVE_SILENCES = _request_query(
    "count_live_silences", "SELECT count(*) FROM silences WHERE workspace_id = ? AND ends_ns > ?"
)
# Every workspace's, each tick: the silences not yet ended (silences_by_end), of which the started ones; sorted
# in Python (an ORDER BY would have SQLite walk silences_by_workspace, every silence ever made, for the order).
_ACTIVE_SILENCES = f"SELECT {_SILENCE_COLUMNS} FROM silences WHERE ends_ns > ? AND starts_ns <= ?"
_CHANNEL_COLUMNS = "id, workspace_id, name, kind, url, format, secret, events, reminder_s, created_ns"
_CREATE_CHANNEL = _request_query(
    "create_channel", f"INSERT INTO channels ({_CHANNEL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_GET_CHANNEL = _request_query(
    "get_channel", f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE id = ? AND workspace_id = ?"
)
_LIST_CHANNELS = _request_query(
    "list_channels", f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE workspace_id = ? ORDER BY created_ns, id"
)
_LIST_ALL_CHANNELS = f"SELECT {_CHANNEL_COLUMNS} FROM channels ORDER BY workspace_id, created_ns, id"  # the notifier's
_UPDATE_CHANNEL = _request_query(
    "update_channel",
    "UPDATE channels SET name = ?, url = ?, format = ?, events = ?, reminder_s = ? WHERE id = ? AND workspace_id = ?",
)
# Its deliveries go with it (ON DELETE CASCADE, found by outbox_by_channel).
_DELETE_CHANNEL = _request_query("delete_channel", "DELETE FROM channels WHERE id = ? AND workspace_id = ?")
_CREATE_ALERT_RULE = _request_query(
    "create_alert_rule",
    "INSERT INTO alert_rules (id, workspace_id, app_id, type, warning_threshold, critical_threshold,"
    " recovery_threshold, hold_seconds, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING",
)
_GET_ALERT_RULE = _request_query("get_alert_rule", "SELECT * FROM alert_rules WHERE id = ? AND workspace_id = ?")
# Workspace-wide rules before app rules, then by app and type: the order ListAlertRules documents.
_ALERT_RULES_ORDER = " ORDER BY workspace_id, app_id IS NOT NULL, app_id, type"
_LIST_ALERT_RULES_OF_WORKSPACE = _request_query(
    "list_alert_rules(workspace)", "SELECT * FROM alert_rules WHERE workspace_id = ?" + _ALERT_RULES_ORDER
)
_LIST_ALERT_RULES = "SELECT * FROM alert_rules" + _ALERT_RULES_ORDER  # the rules engine's, every tick
_UPDATE_ALERT_RULE = _request_query(
    "update_alert_rule",
    "UPDATE alert_rules SET warning_threshold = ?, critical_threshold = ?, recovery_threshold = ?,"
    " hold_seconds = ?, updated_ns = ? WHERE id = ? AND workspace_id = ?",
)
_DELETE_ALERT_RULE = _request_query("delete_alert_rule", "DELETE FROM alert_rules WHERE id = ? AND workspace_id = ?")
_CURRENT_LEASE = _request_query("current_lease", "SELECT * FROM leases WHERE name = ?")

# The evaluator's and the notifier's statements (every workspace at once, not a request's).
_INSERT_FIRED_ALERT = (
    "INSERT INTO alerts (id, workspace_id, app_id, type, severity, message, triggered_ns, silence_id,"
    " held_until_ns, notified_ns) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM alerts"
    " WHERE app_id = ? AND type = ? AND resolved_by = 'manual' AND rearmed_ns IS NULL)"
    # An app deleted since the tick began: skipped, rather than failing the whole tick.
    " AND EXISTS (SELECT 1 FROM apps WHERE id = ?) ON CONFLICT DO NOTHING"
)
_RECOVER_ALERT = (
    "UPDATE alerts SET resolved_ns = ?, resolved_by = 'recovery' WHERE id = ? AND resolved_ns IS NULL"
    " RETURNING workspace_id, notified_ns"
)
# Once: a second release (or a release of an alert resolved meanwhile) changes nothing and queues nothing.
_RELEASE_ALERT = (
    "UPDATE alerts SET notified_ns = ? WHERE id = ? AND notified_ns IS NULL AND resolved_ns IS NULL"
    " RETURNING workspace_id"
)
# The deploys started in the range, from deploys_by_start alone (a range of a few rows: the newest of each app is
# picked in Python, as a GROUP BY would have SQLite walk deploys_by_app_status, every deploy ever made).
_DEPLOYS_STARTED_SINCE = "SELECT app_id, started_ns FROM deploys WHERE started_ns >= ?"
# A channel deleted since the reminders were decided is skipped (no row to select).
# Checked again inside the insert: the alert may have been acknowledged or resolved (by any replica) since the
# sender read it, and a reminder still pending (a receiver down) is not joined by another one.
_REMINDER_STILL_DUE = (
    " AND EXISTS (SELECT 1 FROM alerts WHERE alerts.id = $alert AND alerts.resolved_ns IS NULL"
    " AND alerts.notified_ns IS NOT NULL AND (alerts.acknowledged_ns IS NULL OR alerts.ack_until_ns <= $now))"
    " AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.alert_id = $alert"
    f" AND earlier.channel_id = channels.id AND earlier.event = '{NotificationEvent.REMINDER}'"
    f" AND earlier.status = '{DeliveryStatus.PENDING}')"
)
_ENQUEUE_REMINDER = (
    f"INSERT INTO outbox ({_DELIVERY_COLUMNS}) SELECT ?, id, workspace_id, '{NotificationEvent.REMINDER}', ?, ?,"
    f" '{DeliveryStatus.PENDING}', 0, ?, NULL, NULL, NULL, NULL FROM channels WHERE id = ?"
    + _REMINDER_STILL_DUE.replace("$alert", "?").replace("$now", "?")
)
# From the open alerts (a partial index of them) to their events (outbox_by_alert): CROSS JOIN keeps SQLite
# from walking the whole outbox instead, for the order of the GROUP BY.
_LAST_EVENTS_OF_OPEN_ALERTS = (
    "SELECT outbox.channel_id, outbox.alert_id, max(outbox.created_ns) FROM alerts CROSS JOIN outbox"
    " WHERE outbox.alert_id = alerts.id AND alerts.resolved_ns IS NULL GROUP BY outbox.channel_id, outbox.alert_id"
)
# The delivery, its channel, its alert (NULLs for a test event or a deleted alert) and the alert's app name, in
# the records' column orders; by outbox_due.
_DUE_DELIVERIES = (
    "SELECT "
    + ", ".join(f"outbox.{column}" for column in _DELIVERY_COLUMNS.split(", "))
    + ", "
    + ", ".join(f"channels.{column}" for column in _CHANNEL_COLUMNS.split(", "))
    + ", "
    + ", ".join(f"alerts.{column}" for column in ALERT_COLUMNS)
    + ", coalesce(apps.name, '') FROM outbox JOIN channels ON channels.id = outbox.channel_id"
    " LEFT JOIN alerts ON alerts.id = outbox.alert_id AND alerts.workspace_id = outbox.workspace_id"
    " LEFT JOIN apps ON apps.id = alerts.app_id AND apps.workspace_id = alerts.workspace_id"
    f" WHERE outbox.status = '{DeliveryStatus.PENDING}' AND outbox.next_attempt_ns <= ?"
    " ORDER BY outbox.next_attempt_ns, outbox.created_ns LIMIT ?"
)
# The first attempt's body is the one every retry sends: kept, never replaced.
# Only a pending row: a delivery settled meanwhile (by a sender whose lease was taken over) stays as it was.
_RECORD_ATTEMPT = (
    "UPDATE outbox SET attempts = attempts + 1, status = ?, last_attempt_ns = ?, next_attempt_ns = ?,"
    " last_status_code = ?, last_error = ?, body = coalesce(body, ?)"
    f" WHERE id = ? AND status = '{DeliveryStatus.PENDING}'"
)
# Pending deliveries are kept whatever their age: they are still to be sent. A range of outbox_by_time: without
# statistics SQLite would take outbox_due for the status, and walk every delivered row.
_DELETE_DELIVERIES_BEFORE = (
    "DELETE FROM outbox INDEXED BY outbox_by_time WHERE created_ns < ?"
    f" AND status IN ('{DeliveryStatus.DELIVERED}', '{DeliveryStatus.FAILED}')"
)


def _statements(script: str) -> Iterator[str]:
    # executescript() would COMMIT the surrounding transaction first, so a script runs statement by statement.
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""


_OPEN_ATTEMPTS = 20  # about 2 s of retries in all
# What a read on the loop's thread answers when the file is locked: it is sent to aiosqlite's thread instead.
_LOCKED_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_PRAGMAS = ("busy_timeout=5000", "journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON")


async def _connect(path: str) -> aiosqlite.Connection:
    # isolation_level=None: no implicit transactions; multi-statement writes use BEGIN IMMEDIATE explicitly.
    db = await aiosqlite.connect(path, isolation_level=None)
    db.row_factory = aiosqlite.Row
    try:
        await _configure(db)
    except BaseException:
        await db.close()
        raise
    return db


async def _configure(db: aiosqlite.Connection) -> None:
    # Processes opening a fresh file together: turning it to WAL takes an exclusive lock, and SQLite answers
    # "locked" at once, without its busy wait, to one whose lock upgrade could deadlock. Retry, bounded.
    for attempt in range(1, _OPEN_ATTEMPTS):
        try:
            return await _set_pragmas(db)
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
        await asyncio.sleep(0.01 * attempt)
    await _set_pragmas(db)  # the last attempt: its error is the caller's


async def _set_pragmas(db: aiosqlite.Connection) -> None:
    for pragma in _PRAGMAS:
        await db.execute(f"PRAGMA {pragma}")


async def open_sqlite(path: str) -> SqliteStore:
    if path != ":memory:":
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = await _connect(path)
    # Multi-statement transactions run on a connection of their own, one at a time. On the shared one, a
    # statement another coroutine sends while a transaction is open would run inside it (and commit or roll
    # back with it), and a second BEGIN would fail. (":memory:" cannot be opened twice.)
    transactions = db if path == ":memory:" else await _connect(path)
    store = SqliteStore(db, transactions)
    await store.migrate()
    if path != ":memory:":  # another connection would open another, empty, database
        store.read_on_loop(_reader(path))
    return store


def _reader(path: str) -> sqlite3.Connection:
    # timeout=0: a locked file is not waited for on the loop (see _read). Default check_same_thread: the loop's
    # thread opens it and is the only one to use it.
    reader = sqlite3.connect(path, timeout=0, isolation_level=None)
    reader.execute("PRAGMA query_only=ON")
    return reader


class SqliteStore:
    def __init__(self, db: aiosqlite.Connection, transactions: aiosqlite.Connection | None = None):
        self._db = db
        self._tx_db = transactions or db
        self._tx_lock = asyncio.Lock()
        self._reader: sqlite3.Connection | None = None

    def read_on_loop(self, reader: sqlite3.Connection) -> None:
        """Runs the request reads on ``reader``, in the event loop's thread (closed with the store)."""
        self._reader = reader

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._tx_db is not self._db:
            await self._tx_db.close()
        await self._db.close()

    async def migrate(self) -> None:
        """Applies each pending migration in its own write transaction. The applied versions are read inside
        that transaction, so servers starting together on a fresh file apply each migration exactly once."""
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ns INTEGER)"
        )
        for version, sql in migrations("sqlite"):
            async with self._transaction() as db:
                applied = await db.execute_fetchall("SELECT 1 FROM schema_migrations WHERE version = ?", (version,))
                if applied:
                    continue
                for statement in _statements(sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations VALUES (?, CAST(unixepoch('subsec') * 1e9 AS INTEGER))", (version,)
                )

    @contextlib.asynccontextmanager
    async def _transaction(self, fence: Fence | None = None) -> AsyncIterator[aiosqlite.Connection]:
        # One transaction at a time on the transactions connection; BEGIN IMMEDIATE takes the file's write
        # lock, so single-statement writes (the other connection) and other processes wait for the COMMIT.
        # The body must use the yielded connection. With a fence, the lease is checked under that lock: no
        # other holder can take the lease between the check and the COMMIT.
        async with self._tx_lock:
            db = self._tx_db
            try:
                await db.execute("BEGIN IMMEDIATE")
                if fence is not None:
                    await _check_fence(db, fence)
                yield db
                await db.execute("COMMIT")
            except BaseException:
                # Also when the caller was cancelled during BEGIN or COMMIT: aiosqlite still runs those, in
                # order, before this rollback, and sqlite3's rollback() does nothing when no transaction is
                # open. Otherwise a cancelled BEGIN would hold the file's write lock for good.
                await db.rollback()
                raise

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self._db.execute_fetchall(sql, tuple(params))
        return next(iter(rows), None)

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self._db.execute_fetchall(sql, tuple(params)))

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """The rows of a request's read (index seeks only), as tuples: on the loop's thread when the reader can
        answer at once, else through aiosqlite's thread (":memory:", or a locked file)."""
        if self._reader is not None:
            try:
                return self._reader.execute(sql, params).fetchall()
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & 0xFF not in _LOCKED_CODES:  # the primary code of an extended one
                    raise
        return [tuple(row) for row in await self._db.execute_fetchall(sql, params)]

    # Workspaces

    async def create_workspace(self, workspace_id: str, name: str, now_ns: int) -> Workspace:
        await self._db.execute(_CREATE_WORKSPACE, (workspace_id, name, now_ns))
        workspace = await self.get_workspace(workspace_id)
        assert workspace is not None
        return workspace

    async def get_workspace(self, workspace_id: str) -> Workspace | None:
        row = await self._one(_GET_WORKSPACE, (workspace_id,))
        return Workspace(**row) if row else None

    # Apps

    async def upsert_app(self, app: App) -> App | None:
        await self._db.execute(
            _UPSERT_APP,
            (
                app.id,
                app.workspace_id,
                app.name,
                app.service_name,
                app.memory_limit_mib,
                app.cpu_limit_cores,
                app.created_ns,
            ),
        )
        return await self.get_app(app.workspace_id, app.id)  # None: the id belongs to another workspace

    async def get_app(self, workspace_id: str, app_id: str) -> App | None:
        rows = await self._read(_GET_APP, (app_id, workspace_id))
        return App(*rows[0]) if rows else None

    async def list_apps(self, workspace_id: str) -> list[App]:
        rows = await self._all(_LIST_APPS, (workspace_id,))
        return [App(**row) for row in rows]

    async def list_all_apps(self) -> list[App]:
        return [App(**row) for row in await self._all("SELECT * FROM apps ORDER BY workspace_id, id")]

    async def delete_app(self, workspace_id: str, app_id: str) -> bool:
        cursor = await self._db.execute(_DELETE_APP, (app_id, workspace_id))
        return cursor.rowcount > 0

    # Deploys and builds

    async def record_operation(self, kind: OperationKind, op: Operation) -> Operation:
        await self._db.execute(
            _RECORD_OPERATION[kind],
            (op.app_id, op.id, op.workspace_id, op.status, op.started_ns, op.finished_ns),
        )
        return op

    async def last_deploy_started_ns(self, app_id: str, status: OperationStatus) -> int | None:
        row = await self._one(_LAST_DEPLOY_STARTED, (app_id, status))
        return row["t"] if row else None

    async def count_operations(
        self, kind: OperationKind, workspace_id: str, *, since_ns: int = 0, status: OperationStatus | None = None
    ) -> int:
        params: list[Any] = [workspace_id, since_ns]
        if status is not None:
            params.append(status)
        row = await self._one(_COUNT_OPERATIONS[kind, status is not None], params)
        return int(row[0]) if row else 0

    async def recent_operations(self, kind: OperationKind, workspace_id: str, limit: int) -> list[Operation]:
        rows = await self._all(_RECENT_OPERATIONS[kind], (workspace_id, limit))
        return [Operation(**row) for row in rows]

    async def deploys_between(self, app_id: str, start_ns: int, end_ns: int, limit: int) -> list[Operation]:
        rows = await self._all(_DEPLOYS_BETWEEN, (app_id, start_ns, end_ns, limit))
        return [Operation(**row) for row in reversed(rows)]

    # API keys

    async def create_api_key(self, key: ApiKey, secret_hash: bytes) -> ApiKey:
        await self._db.execute(
            _CREATE_API_KEY,
            (key.id, key.workspace_id, key.name, key.prefix, secret_hash, key.created_ns, key.revoked_ns),
        )
        return key

    async def find_api_key(self, secret_hash: bytes) -> ApiKey | None:
        rows = await self._read(_FIND_API_KEY, (secret_hash,))
        return ApiKey(*rows[0]) if rows else None  # _API_KEY_COLUMNS are in ApiKey's order

    async def list_api_keys(self, workspace_id: str) -> list[ApiKey]:
        rows = await self._all(_LIST_API_KEYS, (workspace_id,))
        return [ApiKey(**row) for row in rows]

    async def revoke_api_key(self, workspace_id: str, key_id: str, now_ns: int) -> ApiKey | None:
        await self._db.execute(_REVOKE_API_KEY, (now_ns, key_id, workspace_id))
        row = await self._one(_GET_API_KEY, (key_id, workspace_id))
        return ApiKey(**row) if row else None

    # Health snapshots

    async def save_snapshots(self, snapshots: Sequence[HealthSnapshot], *, fence: Fence | None = None) -> None:
        async with self._transaction(fence) as db:
            # An app deleted since the tick listed it (or deleted and registered in another workspace) is skipped,
            # rather than failing every app's snapshot.
            await db.executemany(
                "INSERT OR REPLACE INTO health_snapshots (app_id, workspace_id, checked_ns, status, up_since_ns,"
                " instance_count, error_rate, avg_latency_ms, reasons) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?"
                " WHERE EXISTS (SELECT 1 FROM apps WHERE id = ? AND workspace_id = ?)",
                [
                    (
                        s.app_id,
                        s.workspace_id,
                        s.checked_ns,
                        s.status,
                        s.up_since_ns,
                        s.instance_count,
                        s.error_rate,
                        s.avg_latency_ms,
                        json.dumps(list(s.reasons)),
                        s.app_id,
                        s.workspace_id,
                    )
                    for s in snapshots
                ],
            )

    async def latest_snapshot(self, app_id: str) -> HealthSnapshot | None:
        row = await self._one(_LATEST_SNAPSHOT, (app_id,))
        return _snapshot(row) if row else None

    async def latest_snapshots(self, workspace_id: str | None = None) -> list[HealthSnapshot]:
        if workspace_id is None:
            rows = await self._all(_LATEST_SNAPSHOTS)
        else:
            rows = await self._all(_LATEST_SNAPSHOTS_OF_WORKSPACE, (workspace_id,))
        return [_snapshot(row) for row in rows]

    async def app_health_reads(self, workspace_id: str, app_id: str) -> AppHealthReads | None:
        rows = await self._read(_APP_HEALTH_READS, (app_id, workspace_id))
        return health_reads_from_row(rows[0]) if rows else None

    async def health_transitions(self, app_id: str, start_ns: int, end_ns: int, limit: int) -> HealthTransitions:
        # Seeks only (five per transition): on the loop's thread, as the other request reads.
        async def latest_before(at_ns: int) -> tuple[Any, ...] | None:
            return next(iter(await self._read(_LATEST_BEFORE, (app_id, at_ns))), None)

        async def last_of_each_status(at_ns: int) -> tuple[Any, ...] | None:
            return next(iter(await self._read(_LAST_OF_EACH_STATUS, (app_id, at_ns) * len(history.STATUSES))), None)

        async def first_after(at_ns: int) -> tuple[int, tuple[str, ...]] | None:
            rows = await self._read(_FIRST_AFTER, (app_id, at_ns))
            return (rows[0][0], tuple(json.loads(rows[0][1]))) if rows else None

        return await history.walk_transitions(latest_before, last_of_each_status, first_after, start_ns, end_ns, limit)

    async def health_status_counts(
        self, app_id: str, after_ns: tuple[int, int, int], until_ns: int
    ) -> dict[HealthStatus, tuple[int, int, int]]:
        # Through aiosqlite's thread: a month's counts step through ~86,400 index entries (milliseconds).
        bounds, order = history.segments(after_ns, until_ns)
        params: list[Any] = []
        for segment in range(3):
            params += [(app_id, *bounds[2 * segment : 2 * segment + 2]) for _ in history.STATUSES]
        row = await self._one(_SEGMENT_COUNTS, [value for group in params for value in group])
        assert row is not None
        return history.window_counts(tuple(row), order)

    async def delete_snapshots_before(self, before_ns: int, *, fence: Fence | None = None) -> int:
        # Uses health_snapshots_by_time (migration 0002): deletes one tick's worth of rows, not a table scan.
        sql = "DELETE FROM health_snapshots WHERE checked_ns < ?"
        if fence is None:
            cursor = await self._db.execute(sql, (before_ns,))
            return cursor.rowcount
        async with self._transaction(fence) as db:
            cursor = await db.execute(sql, (before_ns,))
            return cursor.rowcount

    # Alerts

    async def get_alert(self, workspace_id: str, alert_id: str) -> Alert | None:
        row = await self._one(_GET_ALERT, (alert_id, workspace_id))
        return Alert(**row) if row else None

    async def list_alerts(
        self, workspace_id: str, *, app_id: str = "", resolved: bool | None = None, limit: int
    ) -> list[Alert]:
        named = await self.list_alerts_with_app_names(workspace_id, app_id=app_id, resolved=resolved, limit=limit)
        return [alert for alert, _ in named]

    async def list_alerts_with_app_names(
        self, workspace_id: str, *, app_id: str = "", resolved: bool | None = None, limit: int
    ) -> list[tuple[Alert, str]]:
        params = (workspace_id, app_id, limit) if app_id else (workspace_id, limit)
        return [
            (alert_from_row(row), row[-1]) for row in await self._read(_LIST_ALERTS[bool(app_id), resolved], params)
        ]

    async def resolve_alert(
        self, workspace_id: str, alert_id: str, now_ns: int, by: ResolvedBy, by_key: str | None = None
    ) -> Alert | None:
        async with self._transaction() as db:
            cursor = await db.execute(_RESOLVE_ALERT, (now_ns, by, by_key, alert_id, workspace_id))
            alert = await _alert_in(db, workspace_id, alert_id)
            if cursor.rowcount > 0 and alert is not None and alert.notified_ns is not None:
                await _queue(db, [(workspace_id, alert_id, NotificationEvent.RESOLVED)], now_ns)
        return alert

    async def acknowledge_alert(
        self, workspace_id: str, alert_id: str, now_ns: int, by_key: str, note: str, until_ns: int | None
    ) -> Alert | None:
        async with self._transaction() as db:
            cursor = await db.execute(
                _ACKNOWLEDGE_ALERT, (now_ns, by_key, note, until_ns, alert_id, workspace_id, now_ns)
            )
            alert = await _alert_in(db, workspace_id, alert_id)
            if cursor.rowcount > 0 and alert is not None and alert.notified_ns is not None:
                await _queue(db, [(workspace_id, alert_id, NotificationEvent.ACKNOWLEDGED)], now_ns)
        return alert

    async def open_alerts(self) -> list[Alert]:
        return [Alert(**row) for row in await self._all("SELECT * FROM alerts WHERE resolved_ns IS NULL")]

    async def latched_alerts(self) -> list[Alert]:
        rows = await self._all("SELECT * FROM alerts WHERE resolved_by = 'manual' AND rearmed_ns IS NULL")
        return [Alert(**row) for row in rows]

    async def apply_alert_changes(self, changes: AlertChanges, *, fence: Fence | None = None) -> list[Alert]:
        """Applies a tick's decisions in one write transaction, with the outbox rows of the events they make;
        returns the alerts that did fire.

        A fire is skipped when (app, type) is latched by a manual resolution, and is a no-op when an
        alert for (app, type) is open: the partial unique index alerts_one_open makes that hold across
        processes, so two evaluators on one database fire a breach once (and queue its `fired` events once).
        Recoveries are applied before releases: an alert that recovers in the tick its hold ends was never
        told, and is not told now.
        """
        now_ns = changes.now_ns
        fired = []
        async with self._transaction(fence) as db:
            events: list[_Event] = []
            for alert in changes.fire:
                cursor = await db.execute(
                    _INSERT_FIRED_ALERT,
                    (
                        alert.id,
                        alert.workspace_id,
                        alert.app_id,
                        alert.type,
                        alert.severity,
                        alert.message,
                        alert.triggered_ns,
                        alert.silence_id,
                        alert.held_until_ns,
                        alert.notified_ns,
                        alert.app_id,
                        alert.type,
                        alert.app_id,
                    ),
                )
                if cursor.rowcount > 0:
                    fired.append(alert)
                    if alert.notified_ns is not None:
                        events.append((alert.workspace_id, alert.id, NotificationEvent.FIRED))
            for alert_id in changes.resolve:
                for workspace_id, notified_ns in await db.execute_fetchall(_RECOVER_ALERT, (now_ns, alert_id)):
                    if notified_ns is not None:
                        events.append((workspace_id, alert_id, NotificationEvent.RESOLVED))
            for alert_id in changes.release:
                for (workspace_id,) in await db.execute_fetchall(_RELEASE_ALERT, (now_ns, alert_id)):
                    events.append((workspace_id, alert_id, NotificationEvent.FIRED))
            await _queue(db, events, now_ns)
            await db.executemany(
                "UPDATE alerts SET severity = ?, message = ? WHERE id = ? AND resolved_ns IS NULL",
                [(severity, message, alert_id) for alert_id, severity, message in changes.escalate],
            )
            await db.executemany(
                "UPDATE alerts SET rearmed_ns = ? WHERE app_id = ? AND type = ? AND resolved_by = 'manual'"
                " AND rearmed_ns IS NULL",
                [(now_ns, app_id, alert_type) for app_id, alert_type in changes.rearm],
            )
        return fired

    async def deploys_started_since(self, since_ns: int) -> dict[str, int]:
        newest: dict[str, int] = {}
        for app_id, started_ns in await self._all(_DEPLOYS_STARTED_SINCE, (since_ns,)):
            newest[app_id] = max(started_ns, newest.get(app_id, started_ns))
        return newest

    # Silences

    async def create_silence(self, silence: Silence) -> Silence:
        await self._db.execute(
            _CREATE_SILENCE,
            (
                silence.id,
                silence.workspace_id,
                silence.app_id,
                _joined(silence.alert_types),
                silence.starts_ns,
                silence.ends_ns,
                silence.comment,
                silence.created_by,
                silence.created_ns,
            ),
        )
        return silence

    async def get_silence(self, workspace_id: str, silence_id: str) -> Silence | None:
        row = await self._one(_GET_SILENCE, (silence_id, workspace_id))
        return _silence(row) if row else None

    async def list_silences(self, workspace_id: str, *, limit: int) -> list[Silence]:
        return [_silence(row) for row in await self._all(_LIST_SILENCES, (workspace_id, limit))]

    async def update_silence(self, silence: Silence) -> Silence | None:
        cursor = await self._db.execute(
            _UPDATE_SILENCE,
            (
                silence.app_id,
                _joined(silence.alert_types),
                silence.starts_ns,
                silence.ends_ns,
                silence.comment,
                silence.id,
                silence.workspace_id,
            ),
        )
        return await self.get_silence(silence.workspace_id, silence.id) if cursor.rowcount > 0 else None

    async def active_silences(self, now_ns: int) -> list[Silence]:
        silences = [_silence(row) for row in await self._all(_ACTIVE_SILENCES, (now_ns, now_ns))]
        return sorted(silences, key=lambda silence: (silence.workspace_id, silence.starts_ns, silence.id))

    async def count_live_silences(self, workspace_id: str, now_ns: int) -> int:
        row = await self._one(_COUNT_LIVE_SILENCES, (workspace_id, now_ns))
        return int(row[0]) if row else 0

    # Notification channels

    async def create_channel(self, channel: Channel) -> Channel:
        await self._db.execute(
            _CREATE_CHANNEL,
            (
                channel.id,
                channel.workspace_id,
                channel.name,
                channel.kind,
                channel.url,
                channel.format,
                channel.secret,
                _joined(channel.events),
                channel.reminder_s,
                channel.created_ns,
            ),
        )
        return channel

    async def get_channel(self, workspace_id: str, channel_id: str) -> Channel | None:
        row = await self._one(_GET_CHANNEL, (channel_id, workspace_id))
        return _channel(row) if row else None

    async def list_channels(self, workspace_id: str) -> list[Channel]:
        return [_channel(row) for row in await self._all(_LIST_CHANNELS, (workspace_id,))]

    async def list_all_channels(self) -> list[Channel]:
        return [_channel(row) for row in await self._all(_LIST_ALL_CHANNELS)]

    async def update_channel(self, channel: Channel) -> Channel | None:
        cursor = await self._db.execute(
            _UPDATE_CHANNEL,
            (
                channel.name,
                channel.url,
                channel.format,
                _joined(channel.events),
                channel.reminder_s,
                channel.id,
                channel.workspace_id,
            ),
        )
        return await self.get_channel(channel.workspace_id, channel.id) if cursor.rowcount > 0 else None

    async def delete_channel(self, workspace_id: str, channel_id: str) -> bool:
        cursor = await self._db.execute(_DELETE_CHANNEL, (channel_id, workspace_id))
        return cursor.rowcount > 0

    # The outbox

    async def enqueue_reminders(
        self, pairs: Sequence[tuple[str, str]], now_ns: int, *, fence: Fence | None = None
    ) -> None:
        async with self._transaction(fence) as db:
            await db.executemany(
                _ENQUEUE_REMINDER,
                [
                    (new_id("evt", now_ns), alert_id, now_ns, now_ns, channel_id, alert_id, now_ns, alert_id)
                    for channel_id, alert_id in pairs
                ],
            )

    async def enqueue_delivery(self, delivery: Delivery) -> Delivery:
        await self._db.execute(_ENQUEUE_DELIVERY, _delivery_row(delivery))
        return delivery

    async def last_events_of_open_alerts(self) -> dict[tuple[str, str], int]:
        rows = await self._all(_LAST_EVENTS_OF_OPEN_ALERTS)
        return {(channel_id, alert_id): created_ns for channel_id, alert_id, created_ns in rows}

    async def due_deliveries(self, now_ns: int, limit: int) -> list[DueDelivery]:
        return [_due(tuple(row)) for row in await self._all(_DUE_DELIVERIES, (now_ns, limit))]

    async def record_attempt(self, delivery_id: str, attempt: Attempt, *, fence: Fence | None = None) -> None:
        params = (
            attempt.status,
            attempt.at_ns,
            attempt.next_attempt_ns,
            attempt.status_code,
            attempt.error,
            attempt.body,
            delivery_id,
        )
        if fence is None:
            await self._db.execute(_RECORD_ATTEMPT, params)
            return
        async with self._transaction(fence) as db:
            await db.execute(_RECORD_ATTEMPT, params)

    async def get_delivery(self, workspace_id: str, delivery_id: str) -> Delivery | None:
        row = await self._one(_GET_DELIVERY, (delivery_id, workspace_id))
        return Delivery(*row) if row else None

    async def list_deliveries(
        self, workspace_id: str, channel_id: str, *, status: DeliveryStatus | None = None, limit: int
    ) -> list[Delivery]:
        params: tuple[Any, ...] = (channel_id, workspace_id)
        params += (limit,) if status is None else (status, limit)
        return [Delivery(*row) for row in await self._all(_LIST_DELIVERIES[status is not None], params)]

    async def delete_deliveries_before(self, before_ns: int, *, fence: Fence | None = None) -> int:
        if fence is None:
            cursor = await self._db.execute(_DELETE_DELIVERIES_BEFORE, (before_ns,))
            return cursor.rowcount
        async with self._transaction(fence) as db:
            cursor = await db.execute(_DELETE_DELIVERIES_BEFORE, (before_ns,))
            return cursor.rowcount

    # Alert rules

    async def create_alert_rule(self, rule: AlertRule) -> AlertRule | None:
        cursor = await self._db.execute(
            _CREATE_ALERT_RULE,
            (
                rule.id,
                rule.workspace_id,
                rule.app_id,
                rule.type,
                rule.warning_threshold,
                rule.critical_threshold,
                rule.recovery_threshold,
                rule.hold_seconds,
                rule.created_ns,
                rule.updated_ns,
            ),
        )
        return rule if cursor.rowcount > 0 else None

    async def get_alert_rule(self, workspace_id: str, rule_id: str) -> AlertRule | None:
        row = await self._one(_GET_ALERT_RULE, (rule_id, workspace_id))
        return AlertRule(**row) if row else None

    async def list_alert_rules(self, workspace_id: str | None = None) -> list[AlertRule]:
        if workspace_id is None:
            rows = await self._all(_LIST_ALERT_RULES)
        else:
            rows = await self._all(_LIST_ALERT_RULES_OF_WORKSPACE, (workspace_id,))
        return [AlertRule(**row) for row in rows]

    async def update_alert_rule(self, rule: AlertRule) -> AlertRule | None:
        await self._db.execute(
            _UPDATE_ALERT_RULE,
            (
                rule.warning_threshold,
                rule.critical_threshold,
                rule.recovery_threshold,
                rule.hold_seconds,
                rule.updated_ns,
                rule.id,
                rule.workspace_id,
            ),
        )
        return await self.get_alert_rule(rule.workspace_id, rule.id)

    async def delete_alert_rule(self, workspace_id: str, rule_id: str) -> bool:
        cursor = await self._db.execute(_DELETE_ALERT_RULE, (rule_id, workspace_id))
        return cursor.rowcount > 0

    # Server secrets

    async def server_secret(self, name: str, candidate: bytes, now_ns: int) -> bytes:
        # Insert-if-absent and read in one write transaction: two servers starting on one database agree.
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR IGNORE INTO server_secrets (name, value, created_ns) VALUES (?, ?, ?)",
                (name, candidate, now_ns),
            )
            rows = await db.execute_fetchall("SELECT value FROM server_secrets WHERE name = ?", (name,))
        return bytes(next(iter(rows))[0])

    # Leases: time.time_ns() is the store's clock here, since every process on one file shares the machine's.

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        async with self._transaction() as db:  # BEGIN IMMEDIATE: racing processes take turns
            now_ns = time.time_ns()
            rows = await db.execute_fetchall("SELECT holder, epoch, expires_ns FROM leases WHERE name = ?", (name,))
            current = next(iter(rows), None)
            if current is None:
                epoch = 1
            elif current["holder"] == holder:
                epoch = current["epoch"]
            elif current["expires_ns"] <= now_ns:
                epoch = current["epoch"] + 1
            else:
                return None
            lease = Lease(name, holder, epoch, now_ns + round(ttl_s * 1e9))
            await db.execute(
                "INSERT OR REPLACE INTO leases (name, holder, epoch, expires_ns) VALUES (?, ?, ?, ?)",
                (lease.name, lease.holder, lease.epoch, lease.expires_ns),
            )
        return lease

    async def release_lease(self, name: str, holder: str) -> None:
        now_ns = time.time_ns()
        await self._db.execute(
            "UPDATE leases SET expires_ns = ? WHERE name = ? AND holder = ? AND expires_ns > ?",
            (now_ns, name, holder, now_ns),
        )

    async def current_lease(self, name: str) -> Lease | None:
        row = await self._one(_CURRENT_LEASE, (name,))
        return Lease(**row) if row else None


async def _check_fence(db: aiosqlite.Connection, fence: Fence) -> None:
    rows = await db.execute_fetchall("SELECT holder, epoch FROM leases WHERE name = ?", (fence.name,))
    current = next(iter(rows), None)
    if current is None or (current["holder"], current["epoch"]) != (fence.holder, fence.epoch):
        raise LeaseLost(fence)


# (workspace id, alert id or None, event): an event an alert change makes, to queue for the workspace's channels.
_Event = tuple[str, str | None, NotificationEvent]


async def _alert_in(db: aiosqlite.Connection, workspace_id: str, alert_id: str) -> Alert | None:
    rows = await db.execute_fetchall(_GET_ALERT, (alert_id, workspace_id))
    row = next(iter(rows), None)
    return Alert(**row) if row else None


async def _queue(db: aiosqlite.Connection, events: Sequence[_Event], now_ns: int) -> None:
    """Writes a pending outbox row per event for each channel of its workspace that takes the event, in the
    caller's transaction (so the rows land exactly when the change they tell does). Each workspace's channels
    are read once."""
    subscribers: dict[str, list[tuple[str, list[str]]]] = {}
    rows = []
    for workspace_id, alert_id, event in events:
        if workspace_id not in subscribers:
            found = await db.execute_fetchall(_SUBSCRIBERS, (workspace_id,))
            subscribers[workspace_id] = [(channel_id, taken.split(",")) for channel_id, taken in found]
        for channel_id, taken in subscribers[workspace_id]:
            if event in taken:
                rows.append(_delivery_row(pending_delivery(channel_id, workspace_id, event, alert_id, now_ns)))
    if rows:
        await db.executemany(_ENQUEUE_DELIVERY, rows)


def _delivery_row(d: Delivery) -> tuple[Any, ...]:
    """The values of _DELIVERY_COLUMNS."""
    return (
        d.id,
        d.channel_id,
        d.workspace_id,
        d.event,
        d.alert_id,
        d.created_ns,
        d.status,
        d.attempts,
        d.next_attempt_ns,
        d.last_attempt_ns,
        d.last_status_code,
        d.last_error,
        d.body,
    )


def _joined(values: Iterable[str]) -> str:
    """Alert types or events as stored: comma-separated ('' for none). No value contains a comma."""
    return ",".join(values)


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split(",")) if text else ()


def _silence(row: Sequence[Any]) -> Silence:
    """A row of _SILENCE_COLUMNS."""
    return Silence(*row[:3], _split(row[3]), *row[4:])  # type: ignore[arg-type]


def _channel(row: Sequence[Any]) -> Channel:
    """A row of _CHANNEL_COLUMNS."""
    return Channel(*row[:7], _split(row[7]), *row[8:])  # type: ignore[arg-type]


_DELIVERY_WIDTH = len(_DELIVERY_COLUMNS.split(", "))
_CHANNEL_END = _DELIVERY_WIDTH + len(_CHANNEL_COLUMNS.split(", "))


def _due(row: tuple[Any, ...]) -> DueDelivery:
    """A row of _DUE_DELIVERIES: the delivery's columns, the channel's, the alert's (NULLs without one), the name."""
    alert = alert_from_row(row[_CHANNEL_END:-1]) if row[_CHANNEL_END] is not None else None
    return DueDelivery(Delivery(*row[:_DELIVERY_WIDTH]), _channel(row[_DELIVERY_WIDTH:_CHANNEL_END]), alert, row[-1])


def _snapshot(row: aiosqlite.Row) -> HealthSnapshot:
    fields = {k: row[k] for k in row.keys() if k in HealthSnapshot.__dataclass_fields__}  # noqa: SIM118
    fields["reasons"] = tuple(json.loads(fields["reasons"]))
    return HealthSnapshot(**fields)
