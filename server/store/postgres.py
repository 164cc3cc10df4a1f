"""The PostgreSQL store (asyncpg), for several replicas on one database.

``postgresql://user:password@host:port/database`` (or ``postgres://``); every other query parameter goes
to asyncpg (``sslmode=require``, say), except ``pool_max``: the most connections one replica keeps (default
10; at least one is always open). Versioned migrations in ``migrations/postgres/NNNN_*.sql`` are applied
at open in one transaction that holds an advisory lock, so replicas starting together apply each once.

Every write is committed before its method returns (asyncpg runs a lone statement in its own transaction;
multi-statement writes use an explicit one). Constraints live in the schema, not in Python: the partial
unique index ``alerts_one_open`` keeps one open alert per (app, type) across replicas. A connection that
is refused or lost during a call raises :class:`server.errors.Unavailable`, naming neither host nor password.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from server.errors import Unavailable
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

SCHEMES = ("postgresql", "postgres")
DEFAULT_POOL_MAX = 10
_POOL_MIN = 1
_POOL_LIMIT = 1000  # a larger pool_max is a typo, not a plan: PostgreSQL's default max_connections is 100
_CONNECT_WINDOW_S = 5.0  # startup retries a refused connection this long: a database starting alongside
_CONNECT_TIMEOUT_S = 5.0  # one connection attempt (asyncpg's default, 60 s, would stall the startup)
_CLOSE_TIMEOUT_S = 10.0
# Set on every connection of the pool. Our transactions send their statements back to back, so one idle
# inside a transaction for a second belongs to a stalled or partitioned process: ending it frees the rows it
# locked (the lease row its fence check holds FOR SHARE blocks any takeover). TCP keepalives notice a peer
# that vanished without closing, in about 20 s instead of the kernel's two hours.
_SERVER_SETTINGS = {
    "idle_in_transaction_session_timeout": "1000",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "2",
}
# Any constant shared by every replica: the pg_advisory_xact_lock key that serialises migrations.
_MIGRATION_LOCK = 0x646F6F6F72_01  # "dooor", 1
# The database's clock in nanoseconds: leases expire by it, so replicas on different machines agree.
_NOW_NS = "(extract(epoch FROM clock_timestamp()) * 1000000000)::bigint"
_OPERATION_TABLES = {OperationKind.DEPLOY: "deploys", OperationKind.BUILD: "builds"}

# Every statement a request runs (the servicers in server/api/, the capabilities they call, auth), by name, as in
# sqlite.py. The methods below run these very strings, and tests/store/test_query_plans.py asks PostgreSQL's
# planner for each: none may scan a table that grows. Not here: the evaluator's statements (every app at once,
# once per tick: snapshots, the rules engine, leases), and server_secret (read once per process, then cached).
REQUEST_QUERIES: dict[str, str] = {}


def _request_query(name: str, sql: str) -> str:
    REQUEST_QUERIES[name] = sql
    return sql


_CREATE_WORKSPACE = _request_query(
    "create_workspace",
    "INSERT INTO workspaces (id, name, created_ns) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
)
_GET_WORKSPACE = _request_query("get_workspace", "SELECT * FROM workspaces WHERE id = $1")
_UPSERT_APP = _request_query(
    "upsert_app",
    "INSERT INTO apps (id, workspace_id, name, service_name, memory_limit_mib, cpu_limit_cores,"
    " created_ns) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
    " service_name = excluded.service_name, memory_limit_mib = excluded.memory_limit_mib,"
    " cpu_limit_cores = excluded.cpu_limit_cores WHERE apps.workspace_id = excluded.workspace_id",
)
_GET_APP = _request_query("get_app", "SELECT * FROM apps WHERE id = $1 AND workspace_id = $2")
_LIST_APPS = _request_query("list_apps", "SELECT * FROM apps WHERE workspace_id = $1 ORDER BY id")
_DELETE_APP = _request_query("delete_app", "DELETE FROM apps WHERE id = $1 AND workspace_id = $2")
_RECORD_OPERATION = {
    kind: _request_query(
        f"record_operation({table})",
        f"INSERT INTO {table} (app_id, id, workspace_id, status, started_ns, finished_ns)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (app_id, id) DO UPDATE SET status = excluded.status,"
        " started_ns = excluded.started_ns, finished_ns = excluded.finished_ns",
    )
    for kind, table in _OPERATION_TABLES.items()
}
_LAST_DEPLOY_STARTED = _request_query(
    "last_deploy_started_ns", "SELECT max(started_ns) AS t FROM deploys WHERE app_id = $1 AND status = $2"
)
_COUNT_OPERATIONS = {
    (kind, with_status): _request_query(
        f"count_operations({table}{', status' if with_status else ''})",
        f"SELECT count(*) FROM {table} WHERE workspace_id = $1 AND started_ns >= $2"
        + (" AND status = $3" if with_status else ""),
    )
    for kind, table in _OPERATION_TABLES.items()
    for with_status in (False, True)
}
_RECENT_OPERATIONS = {
    kind: _request_query(
        f"recent_operations({table})",
        f"SELECT * FROM {table} WHERE workspace_id = $1 ORDER BY started_ns DESC LIMIT $2",
    )
    for kind, table in _OPERATION_TABLES.items()
}
# The newest `limit` within the window, by the (app_id, status, started_ns) index's app_id prefix; the caller
# reverses them to oldest first (a window holds few deploys, so the sort is of a handful of rows).
_DEPLOYS_BETWEEN = _request_query(
    "deploys_between",
    "SELECT * FROM deploys WHERE app_id = $1 AND started_ns >= $2 AND started_ns <= $3"
    " ORDER BY started_ns DESC, id DESC LIMIT $4",
)
_API_KEY_COLUMNS = "id, workspace_id, name, prefix, created_ns, revoked_ns"
_CREATE_API_KEY = _request_query(
    "create_api_key",
    "INSERT INTO api_keys (id, workspace_id, name, prefix, secret_hash, created_ns, revoked_ns)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)",
)
_FIND_API_KEY = _request_query("find_api_key", f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1")
_LIST_API_KEYS = _request_query(
    "list_api_keys", f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE workspace_id = $1 ORDER BY created_ns, id"
)
_REVOKE_API_KEY = _request_query(
    "revoke_api_key",
    "UPDATE api_keys SET revoked_ns = $1 WHERE id = $2 AND workspace_id = $3 AND revoked_ns IS NULL",
)
_GET_API_KEY = _request_query(
    "revoke_api_key(read)", f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE id = $1 AND workspace_id = $2"
)
_LATEST_SNAPSHOT = _request_query(
    "latest_snapshot", "SELECT * FROM health_snapshots WHERE app_id = $1 ORDER BY checked_ns DESC LIMIT 1"
)
# Each app's newest row, in app order (as sqlite.py returns them): one backward seek per app on the primary key
# (app_id, checked_ns), from the apps table, rather than DISTINCT ON over every row of the workspace's history.
# The same rows: every snapshot lies in its app's workspace (save_snapshots skips any other) and goes when its
# app does (ON DELETE CASCADE).
_LATEST_SNAPSHOTS = (
    "SELECT newest.* FROM apps CROSS JOIN LATERAL (SELECT * FROM health_snapshots WHERE app_id = apps.id"
    " ORDER BY checked_ns DESC LIMIT 1) AS newest"
)
_LATEST_SNAPSHOTS_OF_WORKSPACE = _request_query(
    "latest_snapshots(workspace)",
    _LATEST_SNAPSHOTS + " WHERE apps.workspace_id = $1 AND newest.workspace_id = apps.workspace_id ORDER BY apps.id",
)
_LATEST_SNAPSHOTS += " ORDER BY apps.id"  # every app's: the evaluator's, when it starts
# GetAppHealth's three reads in one statement (one round trip instead of three): the app's columns in App's
# order, its newest snapshot's in HealthSnapshot's (NULLs before the first tick), the last successful deploy's
# start. The snapshot is found as _LATEST_SNAPSHOTS finds it, the deploy by deploys_by_app_status.
_APP_HEALTH_READS = _request_query(
    "app_health_reads",
    "SELECT apps.id, apps.workspace_id, apps.name, apps.service_name, apps.memory_limit_mib,"
    " apps.cpu_limit_cores, apps.created_ns, newest.app_id, newest.workspace_id, newest.checked_ns, newest.status,"
    " newest.up_since_ns, newest.instance_count, newest.error_rate, newest.avg_latency_ms, newest.reasons,"
    " (SELECT max(deploys.started_ns) FROM deploys WHERE deploys.app_id = apps.id"
    f" AND deploys.status = '{OperationStatus.SUCCEEDED}')"
    " FROM apps LEFT JOIN LATERAL (SELECT * FROM health_snapshots WHERE health_snapshots.app_id = apps.id"
    " ORDER BY health_snapshots.checked_ns DESC LIMIT 1) AS newest ON true"
    " WHERE apps.id = $1 AND apps.workspace_id = $2",
)


def _numbered(position: int) -> str:
    return f"${position}"


# GetAppHealthHistory's statements (server/store/history.py walks them): seeks, and range counts on
# health_snapshots_by_status.
_LATEST_BEFORE = _request_query("health_latest_before", history.latest_before_sql(_numbered))
_LAST_OF_EACH_STATUS = _request_query("health_last_of_each_status", history.last_of_each_status_sql(_numbered))
_FIRST_AFTER = _request_query("health_first_after", history.first_after_sql(_numbered))
_SEGMENT_COUNTS = _request_query("health_segment_counts", history.segment_counts_sql(_numbered))
_GET_ALERT = _request_query("get_alert", "SELECT * FROM alerts WHERE id = $1 AND workspace_id = $2")
# The alerts' columns in ALERT_COLUMNS' order, then the name of each one's app ('' when it is not in the
# workspace): one statement, not a second one listing the workspace's apps.
_LIST_ALERTS = {
    (by_app, resolved): _request_query(
        f"list_alerts({'app' if by_app else 'workspace'}"
        f"{'' if resolved is None else ', resolved' if resolved else ', open'})",
        "SELECT "
        + ", ".join(f"alerts.{column}" for column in ALERT_COLUMNS)
        + ", coalesce(apps.name, '') FROM alerts LEFT JOIN apps ON apps.id = alerts.app_id"
        " AND apps.workspace_id = alerts.workspace_id WHERE alerts.workspace_id = $1"
        + (" AND alerts.app_id = $2" if by_app else "")
        + (
            ""
            if resolved is None
            else " AND alerts.resolved_ns IS NOT NULL"
            if resolved
            else " AND alerts.resolved_ns IS NULL"
        )
        + f" ORDER BY alerts.triggered_ns DESC, alerts.id DESC LIMIT ${3 if by_app else 2}",
    )
    for by_app in (False, True)
    for resolved in (None, True, False)
}
_RESOLVE_ALERT = _request_query(
    "resolve_alert",
    "UPDATE alerts SET resolved_ns = $1, resolved_by = $2, resolved_by_key = $3 WHERE id = $4 AND workspace_id = $5"
    " AND resolved_ns IS NULL",
)
# Only an open alert whose acknowledgement is not in effect: never acknowledged, or lapsed (ack_until_ns NULL
# means "until resolved", and NULL <= $7 is not true). A second acknowledgement while one stands changes
# nothing, so it queues no second event; two at once queue on the row, and the second then finds the first's.
_ACKNOWLEDGE_ALERT = _request_query(
    "acknowledge_alert",
    "UPDATE alerts SET acknowledged_ns = $1, acknowledged_by = $2, ack_note = $3, ack_until_ns = $4"
    " WHERE id = $5 AND workspace_id = $6 AND resolved_ns IS NULL AND (acknowledged_ns IS NULL OR ack_until_ns <= $7)",
)
# The channels of a workspace and the events each takes: whom an alert change is told to (a few rows; the
# event is matched in Python, the same way on both backends). FOR KEY SHARE: a channel deleted meanwhile
# waits for this commit (its new deliveries go with it), or went first and is not seen; never a foreign key
# error that would sink the change.
_SUBSCRIBERS = _request_query("subscribers", "SELECT id, events FROM channels WHERE workspace_id = $1 FOR KEY SHARE")
_DELIVERY_COLUMNS = (
    "id, channel_id, workspace_id, event, alert_id, created_ns, status, attempts, next_attempt_ns,"
    " last_attempt_ns, last_status_code, last_error, body"
)  # Delivery's order
# An outbox row as given: the events alert changes queue, and enqueue_delivery's test events.
_ENQUEUE_DELIVERY = _request_query(
    "enqueue_delivery",
    f"INSERT INTO outbox ({_DELIVERY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
)
_GET_DELIVERY = _request_query(
    "get_delivery", f"SELECT {_DELIVERY_COLUMNS} FROM outbox WHERE id = $1 AND workspace_id = $2"
)
# A channel's log, newest first, by outbox_by_channel (the status, when asked for, filters the walk).
_LIST_DELIVERIES = {
    with_status: _request_query(
        f"list_deliveries{'(status)' if with_status else ''}",
        f"SELECT {_DELIVERY_COLUMNS} FROM outbox WHERE channel_id = $1 AND workspace_id = $2"
        + (" AND status = $3" if with_status else "")
        + f" ORDER BY created_ns DESC, id DESC LIMIT ${4 if with_status else 3}",
    )
    for with_status in (False, True)
}
_SILENCE_COLUMNS = "id, workspace_id, app_id, alert_types, starts_ns, ends_ns, comment, created_by, created_ns"
_CREATE_SILENCE = _request_query(
    "create_silence", f"INSERT INTO silences ({_SILENCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
_GET_SILENCE = _request_query(
    "get_silence", f"SELECT {_SILENCE_COLUMNS} FROM silences WHERE id = $1 AND workspace_id = $2"
)
_LIST_SILENCES = _request_query(
    "list_silences",
    f"SELECT {_SILENCE_COLUMNS} FROM silences WHERE workspace_id = $1 ORDER BY starts_ns DESC, id DESC LIMIT $2",
)
_UPDATE_SILENCE = _request_query(
    "update_silence",
    "UPDATE silences SET app_id = $1, alert_types = $2, starts_ns = $3, ends_ns = $4, comment = $5"
    " WHERE id = $6 AND workspace_id = $7",
)
_COUNT_LIVE_SILENCES = _request_query(
    "count_live_silences", "SELECT count(*) FROM silences WHERE workspace_id = $1 AND ends_ns > $2"
)
# Every workspace's, each tick: the silences not yet ended (silences_by_end), of which the started ones; sorted
# in Python (an ORDER BY would have SQLite walk silences_by_workspace, every silence ever made, for the order).
_ACTIVE_SILENCES = f"SELECT {_SILENCE_COLUMNS} FROM silences WHERE ends_ns > $1 AND starts_ns <= $1"
_CHANNEL_COLUMNS = "id, workspace_id, name, kind, url, format, secret, events, reminder_s, created_ns"
_CREATE_CHANNEL = _request_query(
    "create_channel", f"INSERT INTO channels ({_CHANNEL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)
_GET_CHANNEL = _request_query(
    "get_channel", f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE id = $1 AND workspace_id = $2"
)
_LIST_CHANNELS = _request_query(
    "list_channels", f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE workspace_id = $1 ORDER BY created_ns, id"
)
_LIST_ALL_CHANNELS = f"SELECT {_CHANNEL_COLUMNS} FROM channels ORDER BY workspace_id, created_ns, id"  # the notifier's
_UPDATE_CHANNEL = _request_query(
    "update_channel",
    "UPDATE channels SET name = $1, url = $2, format = $3, events = $4, reminder_s = $5"
    " WHERE id = $6 AND workspace_id = $7",
)
# Its deliveries go with it (ON DELETE CASCADE, found by outbox_by_channel).
_DELETE_CHANNEL = _request_query("delete_channel", "DELETE FROM channels WHERE id = $1 AND workspace_id = $2")
_CREATE_ALERT_RULE = _request_query(
    "create_alert_rule",
    "INSERT INTO alert_rules (id, workspace_id, app_id, type, warning_threshold, critical_threshold,"
    " recovery_threshold, hold_seconds, created_ns, updated_ns)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
)
_GET_ALERT_RULE = _request_query("get_alert_rule", "SELECT * FROM alert_rules WHERE id = $1 AND workspace_id = $2")
# Workspace-wide rules before app rules, then by app and type: the order ListAlertRules documents.
_ALERT_RULES_ORDER = " ORDER BY workspace_id, app_id IS NOT NULL, app_id, type"
_LIST_ALERT_RULES_OF_WORKSPACE = _request_query(
    "list_alert_rules(workspace)", "SELECT * FROM alert_rules WHERE workspace_id = $1" + _ALERT_RULES_ORDER
)
_LIST_ALERT_RULES = "SELECT * FROM alert_rules" + _ALERT_RULES_ORDER  # the rules engine's, every tick
_UPDATE_ALERT_RULE = _request_query(
    "update_alert_rule",
    "UPDATE alert_rules SET warning_threshold = $1, critical_threshold = $2, recovery_threshold = $3,"
    " hold_seconds = $4, updated_ns = $5 WHERE id = $6 AND workspace_id = $7",
)
_DELETE_ALERT_RULE = _request_query("delete_alert_rule", "DELETE FROM alert_rules WHERE id = $1 AND workspace_id = $2")
_CURRENT_LEASE = _request_query("current_lease", "SELECT name, holder, epoch, expires_ns FROM leases WHERE name = $1")

# The evaluator's and the notifier's statements (every workspace at once, not a request's).
# FROM apps ... FOR KEY SHARE: an app deleted since the tick began is skipped, not fatal.
_INSERT_FIRED_ALERT = (
    "INSERT INTO alerts (id, workspace_id, app_id, type, severity, message, triggered_ns, silence_id,"
    " held_until_ns, notified_ns) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM apps WHERE apps.id = $3"
    " AND NOT EXISTS (SELECT 1 FROM alerts WHERE app_id = $3 AND type = $4 AND resolved_by = 'manual'"
    " AND rearmed_ns IS NULL) FOR KEY SHARE OF apps ON CONFLICT DO NOTHING"
)
_RECOVER_ALERT = (
    "UPDATE alerts SET resolved_ns = $1, resolved_by = 'recovery' WHERE id = $2 AND resolved_ns IS NULL"
    " RETURNING workspace_id, notified_ns"
)
# Once: a second release (or a release of an alert resolved meanwhile) changes nothing and queues nothing.
_RELEASE_ALERT = (
    "UPDATE alerts SET notified_ns = $1 WHERE id = $2 AND notified_ns IS NULL AND resolved_ns IS NULL"
    " RETURNING workspace_id"
)
# The deploys started in the range, from deploys_by_start alone (a range of a few rows: the newest of each app is
# picked in Python, as a GROUP BY would have SQLite walk deploys_by_app_status, every deploy ever made).
_DEPLOYS_STARTED_SINCE = "SELECT app_id, started_ns FROM deploys WHERE started_ns >= $1"
# A channel deleted since the reminders were decided is skipped (no row to select; FOR KEY SHARE as in
# _SUBSCRIBERS).
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
    f"INSERT INTO outbox ({_DELIVERY_COLUMNS}) SELECT $1, id, workspace_id, '{NotificationEvent.REMINDER}', $2, $3,"
    f" '{DeliveryStatus.PENDING}', 0, $3, NULL, NULL, NULL, NULL FROM channels WHERE id = $4"
    + _REMINDER_STILL_DUE.replace("$alert", "$2").replace("$now", "$3")
    + " FOR KEY SHARE OF channels"
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
    f" WHERE outbox.status = '{DeliveryStatus.PENDING}' AND outbox.next_attempt_ns <= $1"
    " ORDER BY outbox.next_attempt_ns, outbox.created_ns LIMIT $2"
)
# The first attempt's body is the one every retry sends: kept, never replaced.
# Only a pending row: a delivery settled meanwhile (by a sender whose lease was taken over) stays as it was.
_RECORD_ATTEMPT = (
    "UPDATE outbox SET attempts = attempts + 1, status = $1, last_attempt_ns = $2, next_attempt_ns = $3,"
    " last_status_code = $4, last_error = $5, body = coalesce(body, $6)"
    f" WHERE id = $7 AND status = '{DeliveryStatus.PENDING}'"
)
# Pending deliveries are kept whatever their age: they are still to be sent.
_DELETE_DELIVERIES_BEFORE = (
    f"DELETE FROM outbox WHERE created_ns < $1 AND status IN ('{DeliveryStatus.DELIVERED}', '{DeliveryStatus.FAILED}')"
)

# A refused or lost connection, or a server that cannot take one now: the database is unavailable, which is
# not the query's fault. (TimeoutError, ConnectionRefusedError and ConnectionResetError are OSErrors.)
_CONNECTION_ERRORS = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # The server ended the session under us (idle_in_transaction_session_timeout, a restart): the connection
    # is closed, and asyncpg says so when the transaction is left.
    asyncpg.InterfaceError,
)
_REFUSED_AT_START = (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)


@dataclasses.dataclass(frozen=True)
class _Target:
    dsn: str  # for asyncpg: the URL without our own parameters
    where: str  # host:port/database, for messages (never the user's password)
    pool_max: int


def is_postgres_url(url: str) -> bool:
    return urllib.parse.urlsplit(url).scheme in SCHEMES


def _target(url: str) -> _Target:
    parts = urllib.parse.urlsplit(url)
    where = parts.netloc.rpartition("@")[2] + parts.path  # host(s) and database: no user, no password
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    pool_max = DEFAULT_POOL_MAX
    for key, value in query:
        if key == "pool_max":
            if not value.isdigit() or not 1 <= int(value) <= _POOL_LIMIT:
                raise ValueError(f"PostgreSQL URL {where}: pool_max must be a whole number from 1 to {_POOL_LIMIT}")
            pool_max = int(value)
    rest = urllib.parse.urlencode([(key, value) for key, value in query if key != "pool_max"])
    return _Target(urllib.parse.urlunsplit(parts._replace(query=rest)), where, pool_max)


async def open_postgres(url: str) -> PostgresStore:
    """Connects (retrying a refused connection for a few seconds), applies pending migrations, returns the store."""
    target = _target(url)
    pool = await _create_pool(target)
    try:
        async with _acquire(pool) as connection:
            await _migrate(connection)
    except BaseException:
        pool.terminate()
        raise
    return PostgresStore(pool)


async def _create_pool(target: _Target) -> asyncpg.Pool:
    deadline = time.monotonic() + _CONNECT_WINDOW_S
    attempt = 0
    while True:
        attempt += 1
        try:
            return await asyncpg.create_pool(
                target.dsn,
                min_size=_POOL_MIN,
                max_size=target.pool_max,
                timeout=_CONNECT_TIMEOUT_S,
                server_settings=_SERVER_SETTINGS,
            )
        except _REFUSED_AT_START as error:
            if time.monotonic() >= deadline:
                raise Unavailable(
                    "store", f"PostgreSQL at {target.where} refused {attempt} connection attempts: {error}"
                ) from error
        except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as error:
            # A wrong password, a missing database, a malformed URL: retrying would not help. The message
            # names the target by host and database only (asyncpg's own messages never quote the password).
            raise Unavailable("store", f"cannot open PostgreSQL database {target.where}: {error}") from error
        await asyncio.sleep(min(0.1 * attempt, 1.0))


async def _migrate(connection: PoolConnectionProxy) -> None:
    """Applies the pending migrations in one transaction under an advisory lock: replicas starting together
    queue on the lock, and each reads schema_migrations only once it holds it, so every version runs once."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ns BIGINT NOT NULL)"
        )
        applied = {row["version"] for row in await connection.fetch("SELECT version FROM schema_migrations")}
        for version, sql in migrations("postgres"):
            if version in applied:
                continue
            await connection.execute(sql)  # no arguments: the simple protocol, several statements at once
            await connection.execute(f"INSERT INTO schema_migrations VALUES ($1, {_NOW_NS})", version)


@contextlib.asynccontextmanager
async def _acquire(pool: asyncpg.Pool) -> AsyncIterator[PoolConnectionProxy]:
    try:
        async with pool.acquire() as connection:
            yield connection
    except _CONNECTION_ERRORS as error:
        raise Unavailable("store", "the database connection was refused or lost") from error


async def _check_fence(connection: PoolConnectionProxy, fence: Fence) -> None:
    # FOR SHARE: a takeover (acquire_lease updates the row) waits until this write commits or rolls back, so
    # the fence stays true until the COMMIT; several fenced writes of one leader do not wait for each other.
    row = await connection.fetchrow("SELECT holder, epoch FROM leases WHERE name = $1 FOR SHARE", fence.name)
    if row is None or (row["holder"], row["epoch"]) != (fence.holder, fence.epoch):
        raise LeaseLost(fence)


def _count(status: str) -> int:
    """Rows a command touched, from its status tag ("DELETE 3", "INSERT 0 1")."""
    return int(status.rpartition(" ")[2])


# (workspace id, alert id or None, event): an event an alert change makes, to queue for the workspace's channels.
_Event = tuple[str, str | None, NotificationEvent]


async def _alert_in(connection: PoolConnectionProxy, workspace_id: str, alert_id: str) -> Alert | None:
    row = await connection.fetchrow(_GET_ALERT, alert_id, workspace_id)
    return Alert(**row) if row else None


async def _queue(connection: PoolConnectionProxy, events: Sequence[_Event], now_ns: int) -> None:
    """Writes a pending outbox row per event for each channel of its workspace that takes the event, in the
    caller's transaction (so the rows land exactly when the change they tell does). Each workspace's channels
    are read once."""
    subscribers: dict[str, list[tuple[str, list[str]]]] = {}
    rows = []
    for workspace_id, alert_id, event in events:
        if workspace_id not in subscribers:
            found = await connection.fetch(_SUBSCRIBERS, workspace_id)
            subscribers[workspace_id] = [(channel_id, taken.split(",")) for channel_id, taken in found]
        for channel_id, taken in subscribers[workspace_id]:
            if event in taken:
                rows.append(_delivery_row(pending_delivery(channel_id, workspace_id, event, alert_id, now_ns)))
    if rows:
        await connection.executemany(_ENQUEUE_DELIVERY, rows)


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


def _delivery(row: Sequence[Any]) -> Delivery:
    """A row of _DELIVERY_COLUMNS (BYTEA arrives as bytes)."""
    return Delivery(*row)


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
    return DueDelivery(_delivery(row[:_DELIVERY_WIDTH]), _channel(row[_DELIVERY_WIDTH:_CHANNEL_END]), alert, row[-1])


def _snapshot(row: Mapping[str, Any]) -> HealthSnapshot:
    return HealthSnapshot(**{**row, "reasons": tuple(json.loads(row["reasons"]))})


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool):
        self._pool = pool

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._pool.close(), _CLOSE_TIMEOUT_S)
        except TimeoutError:  # a connection still in use: close it anyway
            self._pool.terminate()

    @contextlib.asynccontextmanager
    async def _transaction(self, fence: Fence | None = None) -> AsyncIterator[PoolConnectionProxy]:
        # Commits when the body returns, rolls back when it raises (LeaseLost included).
        async with _acquire(self._pool) as connection, connection.transaction():
            if fence is not None:
                await _check_fence(connection, fence)
            yield connection

    async def _one(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with _acquire(self._pool) as connection:
            return await connection.fetchrow(sql, *args)

    async def _all(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with _acquire(self._pool) as connection:
            return list(await connection.fetch(sql, *args))

    async def _execute(self, sql: str, *args: Any) -> int:
        async with _acquire(self._pool) as connection:
            return _count(await connection.execute(sql, *args))

    # Workspaces

    async def create_workspace(self, workspace_id: str, name: str, now_ns: int) -> Workspace:
        await self._execute(_CREATE_WORKSPACE, workspace_id, name, now_ns)
        workspace = await self.get_workspace(workspace_id)
        assert workspace is not None
        return workspace

    async def get_workspace(self, workspace_id: str) -> Workspace | None:
        row = await self._one(_GET_WORKSPACE, workspace_id)
        return Workspace(**row) if row else None

    # Apps

    async def upsert_app(self, app: App) -> App | None:
        await self._execute(
            _UPSERT_APP,
            app.id,
            app.workspace_id,
            app.name,
            app.service_name,
            app.memory_limit_mib,
            app.cpu_limit_cores,
            app.created_ns,
        )
        return await self.get_app(app.workspace_id, app.id)  # None: the id belongs to another workspace

    async def get_app(self, workspace_id: str, app_id: str) -> App | None:
        row = await self._one(_GET_APP, app_id, workspace_id)
        return App(**row) if row else None

    async def list_apps(self, workspace_id: str) -> list[App]:
        rows = await self._all(_LIST_APPS, workspace_id)
        return [App(**row) for row in rows]

    async def list_all_apps(self) -> list[App]:
        return [App(**row) for row in await self._all("SELECT * FROM apps ORDER BY workspace_id, id")]

    async def delete_app(self, workspace_id: str, app_id: str) -> bool:
        return await self._execute(_DELETE_APP, app_id, workspace_id) > 0

    # Deploys and builds

    async def record_operation(self, kind: OperationKind, op: Operation) -> Operation:
        await self._execute(
            _RECORD_OPERATION[kind],
            op.app_id,
            op.id,
            op.workspace_id,
            op.status,
            op.started_ns,
            op.finished_ns,
        )
        return op

    async def last_deploy_started_ns(self, app_id: str, status: OperationStatus) -> int | None:
        row = await self._one(_LAST_DEPLOY_STARTED, app_id, status)
        return row["t"] if row else None

    async def count_operations(
        self, kind: OperationKind, workspace_id: str, *, since_ns: int = 0, status: OperationStatus | None = None
    ) -> int:
        args: list[Any] = [workspace_id, since_ns]
        if status is not None:
            args.append(status)
        row = await self._one(_COUNT_OPERATIONS[kind, status is not None], *args)
        return int(row[0]) if row else 0

    async def recent_operations(self, kind: OperationKind, workspace_id: str, limit: int) -> list[Operation]:
        rows = await self._all(_RECENT_OPERATIONS[kind], workspace_id, limit)
        return [Operation(**row) for row in rows]

    async def deploys_between(self, app_id: str, start_ns: int, end_ns: int, limit: int) -> list[Operation]:
        rows = await self._all(_DEPLOYS_BETWEEN, app_id, start_ns, end_ns, limit)
        return [Operation(**row) for row in reversed(rows)]

    # API keys

    async def create_api_key(self, key: ApiKey, secret_hash: bytes) -> ApiKey:
        await self._execute(
            _CREATE_API_KEY,
            key.id,
            key.workspace_id,
            key.name,
            key.prefix,
            secret_hash,
            key.created_ns,
            key.revoked_ns,
        )
        return key

    async def find_api_key(self, secret_hash: bytes) -> ApiKey | None:
        row = await self._one(_FIND_API_KEY, secret_hash)
        return ApiKey(**row) if row else None

    async def list_api_keys(self, workspace_id: str) -> list[ApiKey]:
        rows = await self._all(_LIST_API_KEYS, workspace_id)
        return [ApiKey(**row) for row in rows]

    async def revoke_api_key(self, workspace_id: str, key_id: str, now_ns: int) -> ApiKey | None:
        await self._execute(_REVOKE_API_KEY, now_ns, key_id, workspace_id)
        row = await self._one(_GET_API_KEY, key_id, workspace_id)
        return ApiKey(**row) if row else None

    # Health snapshots

    async def save_snapshots(self, snapshots: Sequence[HealthSnapshot], *, fence: Fence | None = None) -> None:
        async with self._transaction(fence) as connection:
            # An app deleted since the tick listed it (or deleted and registered in another workspace) is skipped,
            # rather than failing every app's snapshot.
            # FOR KEY SHARE: a delete of the app waits for this commit, or went first and the row is skipped.
            await connection.executemany(
                "INSERT INTO health_snapshots (app_id, workspace_id, checked_ns, status, up_since_ns,"
                " instance_count, error_rate, avg_latency_ms, reasons) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9"
                " FROM apps WHERE apps.id = $1 AND apps.workspace_id = $2 FOR KEY SHARE"
                " ON CONFLICT (app_id, checked_ns) DO UPDATE SET workspace_id = excluded.workspace_id,"
                " status = excluded.status, up_since_ns = excluded.up_since_ns,"
                " instance_count = excluded.instance_count, error_rate = excluded.error_rate,"
                " avg_latency_ms = excluded.avg_latency_ms, reasons = excluded.reasons",
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
                    )
                    for s in snapshots
                ],
            )

    async def latest_snapshot(self, app_id: str) -> HealthSnapshot | None:
        row = await self._one(_LATEST_SNAPSHOT, app_id)
        return _snapshot(row) if row else None

    async def latest_snapshots(self, workspace_id: str | None = None) -> list[HealthSnapshot]:
        if workspace_id is None:
            rows = await self._all(_LATEST_SNAPSHOTS)
        else:
            rows = await self._all(_LATEST_SNAPSHOTS_OF_WORKSPACE, workspace_id)
        return [_snapshot(row) for row in rows]

    async def app_health_reads(self, workspace_id: str, app_id: str) -> AppHealthReads | None:
        row = await self._one(_APP_HEALTH_READS, app_id, workspace_id)
        return health_reads_from_row(tuple(row)) if row else None

    async def health_transitions(self, app_id: str, start_ns: int, end_ns: int, limit: int) -> HealthTransitions:
        async def latest_before(at_ns: int) -> asyncpg.Record | None:
            return await self._one(_LATEST_BEFORE, app_id, at_ns)

        async def last_of_each_status(at_ns: int) -> asyncpg.Record | None:
            return await self._one(_LAST_OF_EACH_STATUS, app_id, at_ns)

        async def first_after(at_ns: int) -> tuple[int, tuple[str, ...]] | None:
            row = await self._one(_FIRST_AFTER, app_id, at_ns)
            return (row[0], tuple(json.loads(row[1]))) if row else None

        return await history.walk_transitions(latest_before, last_of_each_status, first_after, start_ns, end_ns, limit)

    async def health_status_counts(
        self, app_id: str, after_ns: tuple[int, int, int], until_ns: int
    ) -> dict[HealthStatus, tuple[int, int, int]]:
        bounds, order = history.segments(after_ns, until_ns)
        row = await self._one(_SEGMENT_COUNTS, app_id, *bounds)
        assert row is not None
        return history.window_counts(tuple(row), order)

    async def delete_snapshots_before(self, before_ns: int, *, fence: Fence | None = None) -> int:
        # Uses health_snapshots_by_time: deletes one tick's worth of rows, not a table scan.
        sql = "DELETE FROM health_snapshots WHERE checked_ns < $1"
        if fence is None:
            return await self._execute(sql, before_ns)
        async with self._transaction(fence) as connection:
            return _count(await connection.execute(sql, before_ns))

    # Alerts

    async def get_alert(self, workspace_id: str, alert_id: str) -> Alert | None:
        row = await self._one(_GET_ALERT, alert_id, workspace_id)
        return Alert(**row) if row else None

    async def list_alerts(
        self, workspace_id: str, *, app_id: str = "", resolved: bool | None = None, limit: int
    ) -> list[Alert]:
        named = await self.list_alerts_with_app_names(workspace_id, app_id=app_id, resolved=resolved, limit=limit)
        return [alert for alert, _ in named]

    async def list_alerts_with_app_names(
        self, workspace_id: str, *, app_id: str = "", resolved: bool | None = None, limit: int
    ) -> list[tuple[Alert, str]]:
        args = [workspace_id, app_id, limit] if app_id else [workspace_id, limit]
        return [(alert_from_row(row), row[-1]) for row in await self._all(_LIST_ALERTS[bool(app_id), resolved], *args)]

    async def resolve_alert(
        self, workspace_id: str, alert_id: str, now_ns: int, by: ResolvedBy, by_key: str | None = None
    ) -> Alert | None:
        async with self._transaction() as connection:
            changed = _count(await connection.execute(_RESOLVE_ALERT, now_ns, by, by_key, alert_id, workspace_id))
            alert = await _alert_in(connection, workspace_id, alert_id)
            if changed > 0 and alert is not None and alert.notified_ns is not None:
                await _queue(connection, [(workspace_id, alert_id, NotificationEvent.RESOLVED)], now_ns)
        return alert

    async def acknowledge_alert(
        self, workspace_id: str, alert_id: str, now_ns: int, by_key: str, note: str, until_ns: int | None
    ) -> Alert | None:
        async with self._transaction() as connection:
            changed = _count(
                await connection.execute(
                    _ACKNOWLEDGE_ALERT, now_ns, by_key, note, until_ns, alert_id, workspace_id, now_ns
                )
            )
            alert = await _alert_in(connection, workspace_id, alert_id)
            if changed > 0 and alert is not None and alert.notified_ns is not None:
                await _queue(connection, [(workspace_id, alert_id, NotificationEvent.ACKNOWLEDGED)], now_ns)
        return alert

    async def open_alerts(self) -> list[Alert]:
        return [Alert(**row) for row in await self._all("SELECT * FROM alerts WHERE resolved_ns IS NULL")]

    async def latched_alerts(self) -> list[Alert]:
        rows = await self._all("SELECT * FROM alerts WHERE resolved_by = 'manual' AND rearmed_ns IS NULL")
        return [Alert(**row) for row in rows]

    async def apply_alert_changes(self, changes: AlertChanges, *, fence: Fence | None = None) -> list[Alert]:
        """Applies a tick's decisions in one transaction, with the outbox rows of the events they make; returns
        the alerts that did fire.

        A fire is skipped when (app, type) is latched by a manual resolution, and is a no-op when an alert
        for (app, type) is open: ON CONFLICT DO NOTHING on the partial unique index alerts_one_open waits for
        a concurrent insert of the same (app, type) and then skips, so two evaluators fire a breach once (and
        queue its `fired` events once). Recoveries are applied before releases: an alert that recovers in the
        tick its hold ends was never told, and is not told now.
        """
        now_ns = changes.now_ns
        fired = set()
        async with self._transaction(fence) as connection:
            events: list[_Event] = []
            # Rows are locked in one order (app, type; then id) by every replica, so two ticks that overlap
            # wait for each other instead of deadlocking.
            for alert in sorted(changes.fire, key=lambda a: (a.app_id, a.type, a.id)):
                status = await connection.execute(
                    _INSERT_FIRED_ALERT,
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
                )
                if _count(status) > 0:
                    fired.add(alert.id)
                    if alert.notified_ns is not None:
                        events.append((alert.workspace_id, alert.id, NotificationEvent.FIRED))
            for alert_id in sorted(changes.resolve):
                row = await connection.fetchrow(_RECOVER_ALERT, now_ns, alert_id)
                if row is not None and row["notified_ns"] is not None:
                    events.append((row["workspace_id"], alert_id, NotificationEvent.RESOLVED))
            for alert_id in sorted(changes.release):
                workspace_id = await connection.fetchval(_RELEASE_ALERT, now_ns, alert_id)
                if workspace_id is not None:
                    events.append((workspace_id, alert_id, NotificationEvent.FIRED))
            await _queue(connection, events, now_ns)
            await connection.executemany(
                "UPDATE alerts SET severity = $1, message = $2 WHERE id = $3 AND resolved_ns IS NULL",
                [(severity, message, alert_id) for alert_id, severity, message in sorted(changes.escalate)],
            )
            await connection.executemany(
                "UPDATE alerts SET rearmed_ns = $1 WHERE app_id = $2 AND type = $3 AND resolved_by = 'manual'"
                " AND rearmed_ns IS NULL",
                [(now_ns, app_id, alert_type) for app_id, alert_type in sorted(changes.rearm)],
            )
        return [alert for alert in changes.fire if alert.id in fired]  # in the caller's order

    async def deploys_started_since(self, since_ns: int) -> dict[str, int]:
        newest: dict[str, int] = {}
        for app_id, started_ns in await self._all(_DEPLOYS_STARTED_SINCE, since_ns):
            newest[app_id] = max(started_ns, newest.get(app_id, started_ns))
        return newest

    # Silences

    async def create_silence(self, silence: Silence) -> Silence:
        await self._execute(
            _CREATE_SILENCE,
            silence.id,
            silence.workspace_id,
            silence.app_id,
            _joined(silence.alert_types),
            silence.starts_ns,
            silence.ends_ns,
            silence.comment,
            silence.created_by,
            silence.created_ns,
        )
        return silence

    async def get_silence(self, workspace_id: str, silence_id: str) -> Silence | None:
        row = await self._one(_GET_SILENCE, silence_id, workspace_id)
        return _silence(row) if row else None

    async def list_silences(self, workspace_id: str, *, limit: int) -> list[Silence]:
        return [_silence(row) for row in await self._all(_LIST_SILENCES, workspace_id, limit)]

    async def update_silence(self, silence: Silence) -> Silence | None:
        updated = await self._execute(
            _UPDATE_SILENCE,
            silence.app_id,
            _joined(silence.alert_types),
            silence.starts_ns,
            silence.ends_ns,
            silence.comment,
            silence.id,
            silence.workspace_id,
        )
        return await self.get_silence(silence.workspace_id, silence.id) if updated > 0 else None

    async def active_silences(self, now_ns: int) -> list[Silence]:
        silences = [_silence(row) for row in await self._all(_ACTIVE_SILENCES, now_ns)]
        return sorted(silences, key=lambda silence: (silence.workspace_id, silence.starts_ns, silence.id))

    async def count_live_silences(self, workspace_id: str, now_ns: int) -> int:
        row = await self._one(_COUNT_LIVE_SILENCES, workspace_id, now_ns)
        return int(row[0]) if row else 0

    # Notification channels

    async def create_channel(self, channel: Channel) -> Channel:
        await self._execute(
            _CREATE_CHANNEL,
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
        )
        return channel

    async def get_channel(self, workspace_id: str, channel_id: str) -> Channel | None:
        row = await self._one(_GET_CHANNEL, channel_id, workspace_id)
        return _channel(row) if row else None

    async def list_channels(self, workspace_id: str) -> list[Channel]:
        return [_channel(row) for row in await self._all(_LIST_CHANNELS, workspace_id)]

    async def list_all_channels(self) -> list[Channel]:
        return [_channel(row) for row in await self._all(_LIST_ALL_CHANNELS)]

    async def update_channel(self, channel: Channel) -> Channel | None:
        updated = await self._execute(
            _UPDATE_CHANNEL,
            channel.name,
            channel.url,
            channel.format,
            _joined(channel.events),
            channel.reminder_s,
            channel.id,
            channel.workspace_id,
        )
        return await self.get_channel(channel.workspace_id, channel.id) if updated > 0 else None

    async def delete_channel(self, workspace_id: str, channel_id: str) -> bool:
        return await self._execute(_DELETE_CHANNEL, channel_id, workspace_id) > 0

    # The outbox

    async def enqueue_reminders(
        self, pairs: Sequence[tuple[str, str]], now_ns: int, *, fence: Fence | None = None
    ) -> None:
        async with self._transaction(fence) as connection:
            await connection.executemany(
                _ENQUEUE_REMINDER,
                [(new_id("evt", now_ns), alert_id, now_ns, channel_id) for channel_id, alert_id in sorted(pairs)],
            )

    async def enqueue_delivery(self, delivery: Delivery) -> Delivery:
        await self._execute(_ENQUEUE_DELIVERY, *_delivery_row(delivery))
        return delivery

    async def last_events_of_open_alerts(self) -> dict[tuple[str, str], int]:
        rows = await self._all(_LAST_EVENTS_OF_OPEN_ALERTS)
        return {(channel_id, alert_id): created_ns for channel_id, alert_id, created_ns in rows}

    async def due_deliveries(self, now_ns: int, limit: int) -> list[DueDelivery]:
        return [_due(tuple(row)) for row in await self._all(_DUE_DELIVERIES, now_ns, limit)]

    async def record_attempt(self, delivery_id: str, attempt: Attempt, *, fence: Fence | None = None) -> None:
        args = (
            attempt.status,
            attempt.at_ns,
            attempt.next_attempt_ns,
            attempt.status_code,
            attempt.error,
            attempt.body,
            delivery_id,
        )
        if fence is None:
            await self._execute(_RECORD_ATTEMPT, *args)
            return
        async with self._transaction(fence) as connection:
            await connection.execute(_RECORD_ATTEMPT, *args)

    async def get_delivery(self, workspace_id: str, delivery_id: str) -> Delivery | None:
        row = await self._one(_GET_DELIVERY, delivery_id, workspace_id)
        return _delivery(row) if row else None

    async def list_deliveries(
        self, workspace_id: str, channel_id: str, *, status: DeliveryStatus | None = None, limit: int
    ) -> list[Delivery]:
        args: tuple[Any, ...] = (channel_id, workspace_id)
        args += (limit,) if status is None else (status, limit)
        return [_delivery(row) for row in await self._all(_LIST_DELIVERIES[status is not None], *args)]

    async def delete_deliveries_before(self, before_ns: int, *, fence: Fence | None = None) -> int:
        if fence is None:
            return await self._execute(_DELETE_DELIVERIES_BEFORE, before_ns)
        async with self._transaction(fence) as connection:
            return _count(await connection.execute(_DELETE_DELIVERIES_BEFORE, before_ns))

    # Alert rules

    async def create_alert_rule(self, rule: AlertRule) -> AlertRule | None:
        created = await self._execute(
            _CREATE_ALERT_RULE,
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
        )
        return rule if created > 0 else None

    async def get_alert_rule(self, workspace_id: str, rule_id: str) -> AlertRule | None:
        row = await self._one(_GET_ALERT_RULE, rule_id, workspace_id)
        return AlertRule(**row) if row else None

    async def list_alert_rules(self, workspace_id: str | None = None) -> list[AlertRule]:
        if workspace_id is None:
            rows = await self._all(_LIST_ALERT_RULES)
        else:
            rows = await self._all(_LIST_ALERT_RULES_OF_WORKSPACE, workspace_id)
        return [AlertRule(**row) for row in rows]

    async def update_alert_rule(self, rule: AlertRule) -> AlertRule | None:
        await self._execute(
            _UPDATE_ALERT_RULE,
            rule.warning_threshold,
            rule.critical_threshold,
            rule.recovery_threshold,
            rule.hold_seconds,
            rule.updated_ns,
            rule.id,
            rule.workspace_id,
        )
        return await self.get_alert_rule(rule.workspace_id, rule.id)

    async def delete_alert_rule(self, workspace_id: str, rule_id: str) -> bool:
        deleted = await self._execute(_DELETE_ALERT_RULE, rule_id, workspace_id)
        return deleted > 0

    # Server secrets

    async def server_secret(self, name: str, candidate: bytes, now_ns: int) -> bytes:
        # Two statements in one transaction: the INSERT waits for a concurrent one of the same name, and the
        # SELECT (a new snapshot under READ COMMITTED) then sees whichever row won.
        async with self._transaction() as connection:
            await connection.execute(
                "INSERT INTO server_secrets (name, value, created_ns) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                name,
                candidate,
                now_ns,
            )
            value = await connection.fetchval("SELECT value FROM server_secrets WHERE name = $1", name)
        return bytes(value)

    # Leases, on the database's clock

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> Lease | None:
        # One statement: concurrent callers queue on the row, and each sees the row the previous one left.
        # The update applies only to a renewal or an expired lease (excluded.expires_ns - ttl is "now").
        # A fenced write of the holder locks the row FOR SHARE until it commits: wait for it at most a third of
        # the lease (the caller tries again then), never for a holder that stalled mid-transaction (whose
        # session PostgreSQL ends after a second idle, see _SERVER_SETTINGS).
        async with _acquire(self._pool) as connection, connection.transaction():
            await connection.execute(f"SET LOCAL lock_timeout = {max(1, round(ttl_s * 1000 / 3))}")
            try:
                row = await connection.fetchrow(
                    "INSERT INTO leases AS held (name, holder, epoch, expires_ns)"
                    f" VALUES ($1, $2, 1, {_NOW_NS} + $3) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                    " epoch = held.epoch + CASE WHEN held.holder = excluded.holder THEN 0 ELSE 1 END,"
                    " expires_ns = excluded.expires_ns"
                    " WHERE held.holder = excluded.holder OR held.expires_ns <= excluded.expires_ns - $3"
                    " RETURNING name, holder, epoch, expires_ns",
                    name,
                    holder,
                    round(ttl_s * 1e9),
                )
            except asyncpg.LockNotAvailableError:
                # Not "held by another": the holder keeps working until its lease runs out, and tries again.
                raise Unavailable("store", "the lease is locked by a write in progress") from None
        return Lease(**row) if row else None

    async def release_lease(self, name: str, holder: str) -> None:
        await self._execute(
            f"UPDATE leases SET expires_ns = {_NOW_NS} WHERE name = $1 AND holder = $2 AND expires_ns > {_NOW_NS}",
            name,
            holder,
        )

    async def current_lease(self, name: str) -> Lease | None:
        row = await self._one(_CURRENT_LEASE, name)
        return Lease(**row) if row else None
