"""The stack the web console is shown on, for its browser tests and ``make screenshots``: a Prometheus over
the metrics data set (testing/metrics_data.py), the Loki double, a server and an edge on loopback; the
workspace ``metrics_data.WORKSPACE`` with its apps, a key, deploys and builds, log lines and alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import time
from collections.abc import AsyncIterator

import grpc

from dooor.monitoring.v1 import monitoring_pb2 as pb
from edge import console
from testing import alert_rows
from testing import metrics_data as data
from testing.edge import EdgeProcess, running_edge
from testing.loki import LokiDouble, running_loki
from testing.platform import Tenant, new_tenant
from testing.procs import ServerProcess, running_server

EVAL_INTERVAL_S = 2.0
# Every app of the data set (the overview shows each health status); the `make run` style link names them too.
APPS = (data.FULL, *data.HEALTH_CASES, data.IDLE, data.EMPTY)
LOG_APP = data.FULL
# Names as a workspace would have them (the data set calls every app "my-api").
NAMES = {
    data.FULL: "checkout-api",
    "app_healthy": "web-frontend",
    "app_some_down": "search",
    "app_erroring": "payments",
    "app_slow": "reports",
    "app_all_down": "legacy-importer",
    "app_failing": "notifications",
    "app_recovered": "auth",
    "app_gap": "batch-jobs",
    "app_new": "preview",
    data.IDLE: "admin-panel",
    data.EMPTY: "docs-site",
}
_LINES = (
    ("info", "GET /api/orders 200 in 42 ms"),
    ("debug", "cache hit ratio 0.93 over the last minute"),
    ("info", "POST /api/orders 201 in 88 ms"),
    ("warning", "slow query on orders_by_customer: 812 ms"),
    ("error", "upstream payment-gateway answered 503; retrying (attempt 2 of 3)"),
    ("info", "worker pool resized from 4 to 6"),
    ("critical", "database connection pool exhausted for 2.1 s"),
)


@dataclasses.dataclass(frozen=True)
class ConsoleStack:
    server: ServerProcess
    edge: EdgeProcess
    loki: LokiDouble
    workspace_id: str
    key: str

    def signed_in_url(self, apps: tuple[str, ...] = APPS) -> str:
        """The URL `make run` prints: the fragment signs the console in and never reaches the server."""
        return console.signed_in_url(self.edge.url, self.workspace_id, self.key, list(apps))

    def push_logs(self, app_id: str, lines: list[tuple[str, str]], at_ns: int | None = None) -> None:
        """Lines into the Loki double, one nanosecond apart from ``at_ns`` (default now), as ``(level, text)``."""
        start = at_ns if at_ns is not None else time.time_ns()
        self.push_entries(app_id, [(start + i, level, text) for i, (level, text) in enumerate(lines)])

    def push_entries(self, app_id: str, entries: list[tuple[int, str, str]]) -> None:
        """``(timestamp ns, level, text)`` entries in one push: a stream per level, as a log agent sends them."""
        by_level: dict[str, list[list[object]]] = {}
        for at_ns, level, text in sorted(entries):
            by_level.setdefault(level, []).append([at_ns, text])
        labels = {"workspace_id": self.workspace_id, "app_id": app_id}
        self.loki.push([{"stream": {**labels, "level": level}, "values": v} for level, v in by_level.items()])

    def insert_alert(self, alert_id: str, app_id: str, **fields: object) -> None:
        alert_rows.insert_alert(
            pathlib.Path(self.server.db), alert_id=alert_id, workspace_id=self.workspace_id, app_id=app_id, **fields
        )


async def _seed(server: ServerProcess) -> Tenant:
    async with grpc.aio.insecure_channel(server.addr) as channel:
        tenant = await new_tenant(channel, data.WORKSPACE)
        await data.seed_apps(tenant)
        for app_id, name in NAMES.items():
            await tenant.add_app(app_id, name=name, service_name=name)
        now = time.time_ns()
        ok, failed = pb.OPERATION_STATUS_SUCCEEDED, pb.OPERATION_STATUS_FAILED
        await tenant.record("deploy", data.FULL, "dep_today", ok, now - 3600 * 10**9)
        await tenant.record("build", data.FULL, "bld_today_ok", ok, now - 2 * 3600 * 10**9)
        await tenant.record("build", "app_failing", "bld_today_failed", failed, now - 1800 * 10**9)
        await _wait_evaluated(tenant, now)
        return tenant


async def _wait_evaluated(tenant: Tenant, after_ns: int, within_s: float = 30.0) -> None:
    """Until the evaluator has judged the apps once after ``after_ns`` (health badges need a snapshot)."""
    request = pb.GetAppHealthRequest(workspace_id=tenant.workspace_id, app_id=data.FULL)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        reply = await tenant.monitoring.GetAppHealth(request, metadata=tenant.auth)
        checked = reply.last_checked_at.seconds * 10**9 + reply.last_checked_at.nanos
        if reply.HasField("last_checked_at") and checked > after_ns:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the evaluator judged no app within {within_s} s")


def _history(stack: ConsoleStack) -> None:
    """Log lines over the last minutes and a few alerts beside those the rules engine fires by itself.

    The engine opens alerts from the data set at its first evaluations (app_slow's latency, the error rates
    of app_erroring and app_failing); the rows added here take (app, type) pairs it never fires, since an
    app has at most one open alert per type.
    """
    now = time.time_ns()
    history = [
        (now - minute * 60 * 10**9 + i * 7 * 10**9, level, text)
        for minute in range(12, 0, -1)
        for i, (level, text) in enumerate(_LINES)
    ]
    stack.push_entries(LOG_APP, history)
    stack.insert_alert("alr_seed_mem", "app_slow", triggered_ns=now - 40 * 60 * 10**9)
    stack.insert_alert(
        "alr_seed_cpu",
        data.FULL,
        alert_type="high_cpu",
        message="CPU usage exceeded 80% threshold",
        triggered_ns=now - 5 * 3600 * 10**9,
        resolved_ns=now - 4 * 3600 * 10**9,
    )
    stack.insert_alert(
        "alr_seed_err",
        "app_healthy",
        alert_type="high_error_rate",
        severity="critical",
        message="Error rate exceeded 20% threshold",
        triggered_ns=now - 26 * 3600 * 10**9,
        resolved_ns=now - 25 * 3600 * 10**9,
    )


@contextlib.asynccontextmanager
async def running_console_stack(
    log_dir: pathlib.Path, work: pathlib.Path, prometheus_url: str
) -> AsyncIterator[ConsoleStack]:
    """Loki double, server and edge over ``prometheus_url`` (which must hold the metrics data set), seeded."""
    with running_loki(log_dir) as loki:
        env = {
            "MONITORING_PROMETHEUS_URL": prometheus_url,
            "MONITORING_LOKI_URL": loki.url,
            "MONITORING_EVAL_INTERVAL": str(EVAL_INTERVAL_S),
            "MONITORING_TOKEN_SECRET": "console-tests-secret-0123456789abcdef",
        }
        with running_server(log_dir, work / "monitoring.db", env) as server, running_edge(log_dir, server.addr) as edge:
            tenant = await _seed(server)
            stack = ConsoleStack(server, edge, loki, tenant.workspace_id, tenant.key)
            _history(stack)
            yield stack
