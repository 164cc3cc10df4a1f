"""App health: the judgement, the evaluator listener that stores a snapshot per app per tick, and GetAppHealth.

The judgement (:func:`judge`), most severe first (each condition that holds adds one reason; the status is
the worst level matched; thresholds from ``[health]``, :class:`~server.config.HealthSettings`):

- ``unknown``    Prometheus could not be queried this tick, or the app has no ``up`` sample in the last
                 5 minutes (Prometheus's lookback): not deployed yet, a new deploy not scraped yet, or a gap.
- ``unhealthy``  no instance up; or error rate ≥ ``unhealthy_error_rate_percent``; or average latency
                 ≥ ``unhealthy_latency_ms``.
- ``degraded``   some instances down; or error rate ≥ ``degraded_error_rate_percent``; or average latency
                 ≥ ``degraded_latency_ms``.
- ``healthy``    otherwise (no reasons).

Uptime is counted by the evaluator: since the first tick of an unbroken run of ticks in which at least
one instance was up (the snapshot keeps that start, so it survives a restart of this server that is
shorter than ``uptime_gap_s``). A tick on which Prometheus failed does not break the run (we did not
look; the app may well have been up) but reports no uptime.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.config import HealthSettings
from server.convert import NS_PER_S, json_numbers, now_ns, set_timestamp
from server.errors import NotFound, ServiceError
from server.metrics.evaluator import AppSample, Tick
from server.metrics.prometheus import BACKEND as PROMETHEUS
from server.metrics.prometheus import PrometheusClient, Sample
from server.metrics.promql import Queries
from server.states import HealthStatus
from server.store import Store
from server.store.records import MEMO_ROWS, App, HealthSnapshot

log = logging.getLogger("server.metrics.health")

_WORSE = {HealthStatus.HEALTHY: 0, HealthStatus.DEGRADED: 1, HealthStatus.UNHEALTHY: 2}
# The proto's number of each status, looked up once rather than on every GetAppHealth.
_STATUS_NUMBERS = json_numbers(pb.HealthStatus.DESCRIPTOR)


def judge(sample: AppSample, settings: HealthSettings) -> tuple[HealthStatus, tuple[str, ...]]:
    """The status of one app's sample, and the reasons for it (empty when healthy)."""
    up, total = sample.instances_up, sample.instances_total
    if total is None or up is None:
        return HealthStatus.UNKNOWN, ("no `up` sample in the last 5 minutes (not scraped yet, new deploy or data gap)",)
    matched: list[tuple[HealthStatus, str]] = []
    if up == 0:
        matched.append((HealthStatus.UNHEALTHY, f"no instance up (0 of {total})"))
    elif up < total:
        matched.append((HealthStatus.DEGRADED, f"{up} of {total} instances up"))
    error_rate = sample.error_rate_percent
    if error_rate is not None:
        matched += _threshold(
            "error rate", error_rate, "%", settings.degraded_error_rate_percent, settings.unhealthy_error_rate_percent
        )
    latency = sample.latency_ms
    if latency is not None:
        matched += _threshold(
            "average latency", latency, " ms", settings.degraded_latency_ms, settings.unhealthy_latency_ms
        )
    if not matched:
        return HealthStatus.HEALTHY, ()
    status = max((level for level, _ in matched), key=_WORSE.__getitem__)
    return status, tuple(reason for _, reason in matched)


def _threshold(what: str, value: float, unit: str, degraded: float, unhealthy: float) -> list[tuple[HealthStatus, str]]:
    if value >= unhealthy:
        return [(HealthStatus.UNHEALTHY, f"{what} {_number(value)}{unit} ≥ {_number(unhealthy)}{unit}")]
    if value >= degraded:
        return [(HealthStatus.DEGRADED, f"{what} {_number(value)}{unit} ≥ {_number(degraded)}{unit}")]
    return []


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _clean(value: float | None) -> float | None:
    # PromQL arithmetic leaves float noise (5.000000000000001); six decimals are plenty for a status page.
    return None if value is None else round(value, 6)


class UptimeHistory:
    """When each app's current run of "at least one instance up" began, read from Prometheus's history.

    Two grouped instant queries over a subquery window (``HISTORY_TEMPLATES``): the last step with no
    instance up, and the first step with any ``up`` series. Asked once per process, so that uptime
    reflects the data from the first tick instead of starting at zero when this server starts.
    """

    def __init__(self, prometheus: PrometheusClient, queries: Queries, settings: HealthSettings):
        self._prometheus = prometheus
        self._queries = queries
        self._lookback_s = int(settings.uptime_lookback_s)
        self._resolution_s = int(settings.uptime_resolution_s)

    async def up_since(self, now_ns: int) -> dict[tuple[str, str], int]:
        at = now_ns / NS_PER_S
        last_down, first_up = await self._prometheus.query_many(
            [
                self._queries.history_query(name, self._lookback_s, self._resolution_s)
                for name in ("last_down", "first_up")
            ],
            at=at,
        )
        down = self._by_app(last_down)
        since: dict[tuple[str, str], int] = {}
        for key, first in self._by_app(first_up).items():
            # Up again at the step after the last step it was down.
            start = max(first, down[key] + self._resolution_s) if key in down else first
            since[key] = int(start * NS_PER_S)
        return since

    def _by_app(self, samples: list[Sample]) -> dict[tuple[str, str], float]:
        values: dict[tuple[str, str], float] = {}
        for sample in samples:
            key = self._queries.app_key(sample.labels)
            if key is not None and math.isfinite(sample.value):
                values[key] = sample.value
        return values


class HealthRecorder:
    """The evaluator listener: one snapshot per app per tick, saved in one transaction."""

    def __init__(self, store: Store, settings: HealthSettings, history: UptimeHistory | None = None):
        self._store = store
        self._settings = settings
        self._history = history
        # (workspace id, app id) → start of the current run of ticks with an instance up.
        self._up_since: dict[tuple[str, str], int] = {}
        # Apps this process has judged at least once: only the others need Prometheus's history.
        self._seen: set[tuple[str, str]] = set()
        self._seeded = False

    async def on_tick(self, tick: Tick) -> None:
        if not self._seeded:
            await self._seed(tick.now_ns)
        if tick.error is not None:
            snapshots = [self._unavailable(app, tick) for app in tick.apps]
        else:
            if self._history is not None:
                await self._read_history(tick.samples, tick.now_ns)
            snapshots = [self._snapshot(sample, tick.now_ns) for sample in tick.samples]
        known = {(s.workspace_id, s.app_id) for s in snapshots}
        self._up_since = {key: ns for key, ns in self._up_since.items() if key in known}  # forget deleted apps
        self._seen = known if tick.error is None else self._seen & known
        await self._store.save_snapshots(snapshots, fence=tick.fence)
        retention_ns = int(self._settings.snapshot_retention_s * NS_PER_S)
        await self._store.delete_snapshots_before(tick.now_ns - retention_ns, fence=tick.fence)

    async def _seed(self, now_ns: int) -> None:
        """Continues the uptime runs of the previous process, when its last snapshots are recent enough."""
        oldest = now_ns - int(self._settings.uptime_gap_s * NS_PER_S)
        for snapshot in await self._store.latest_snapshots():
            if snapshot.up_since_ns is not None and snapshot.checked_ns >= oldest:
                self._up_since[(snapshot.workspace_id, snapshot.app_id)] = snapshot.up_since_ns
        self._seeded = True

    async def _read_history(self, samples: Sequence[AppSample], now_ns: int) -> None:
        """Starts the uptime of apps this process has never judged from Prometheus's history.

        Only on ticks where such apps appear up (this server's first tick, newly registered apps): two grouped
        queries, whatever their number. An app recovering from an outage this process saw is not one of
        them (its run starts at this tick). A failure is logged and uptime counts from this tick.
        """
        assert self._history is not None
        new = [
            key
            for s in samples
            if s.instances_up
            and (key := (s.app.workspace_id, s.app.id)) not in self._seen
            and key not in self._up_since
        ]
        if not new:
            return
        try:
            since = await self._history.up_since(now_ns)
        except ServiceError as error:
            log.warning("uptime history unavailable, uptime counts from now: %s", error.message)
            return
        for key in new:
            if key in since:
                self._up_since[key] = min(since[key], now_ns)

    def _snapshot(self, sample: AppSample, now_ns: int) -> HealthSnapshot:
        key = (sample.app.workspace_id, sample.app.id)
        status, reasons = judge(sample, self._settings)
        if sample.instances_up:
            self._up_since.setdefault(key, now_ns)
        else:
            self._up_since.pop(key, None)
        return HealthSnapshot(
            app_id=sample.app.id,
            workspace_id=sample.app.workspace_id,
            checked_ns=now_ns,
            status=status,
            up_since_ns=self._up_since.get(key),
            instance_count=sample.instances_up,
            error_rate=_clean(sample.error_rate_percent),
            avg_latency_ms=_clean(sample.latency_ms),
            reasons=reasons,
        )

    def _unavailable(self, app: App, tick: Tick) -> HealthSnapshot:
        return HealthSnapshot(
            app_id=app.id,
            workspace_id=app.workspace_id,
            checked_ns=tick.now_ns,
            status=HealthStatus.UNKNOWN,
            up_since_ns=self._up_since.get((app.workspace_id, app.id)),
            instance_count=None,
            error_rate=None,
            avg_latency_ms=None,
            # Tenants read reasons: the backend only, never its detail (the evaluator logs why the tick failed).
            reasons=(f"no data this tick: {PROMETHEUS} unavailable",),
        )


def is_stale(snapshot: HealthSnapshot, now_ns: int, stale_after_ns: int) -> bool:
    """A snapshot this old says nothing about now (the evaluator stopped, or cannot write): ``unknown``."""
    return now_ns - snapshot.checked_ns > stale_after_ns


class HealthService:
    """GetAppHealth: the latest stored snapshot, plus the last successful deploy from the store.

    A snapshot older than ``stale_after_s`` (the evaluator stopped, or cannot write) is reported as
    ``unknown``, with its age as the reason, but keeps its ``lastCheckedAt``.
    """

    def __init__(self, store: Store, *, stale_after_s: float, clock: Callable[[], int] = now_ns):
        self._store = store
        self._stale_after_ns = int(stale_after_s * NS_PER_S)
        self._clock = clock

    async def health_of(self, workspace_id: str, app_id: str) -> pb.GetAppHealthResponse:
        """The app's health; NotFound when it is not in the workspace. The app, its snapshot and its last deploy
        are read in one store call (one query: the call's only trip to the store besides auth). The reply may be
        shared with other calls (see _evaluated): read it, copy it, never change it."""
        reads = await self._store.app_health_reads(workspace_id, app_id)
        if reads is None:
            raise NotFound("app", app_id)
        return self._reply(app_id, reads.snapshot, reads.last_deploy_started_ns)

    async def app_health(self, app: App) -> pb.GetAppHealthResponse:
        return await self.health_of(app.workspace_id, app.id)

    async def workspace_apps(self, workspace_id: str) -> pb.ListWorkspaceAppsResponse:
        """ListWorkspaceApps: every app of the workspace by name, with the status GetAppHealth would report."""
        at_ns = self._clock()
        latest = {snapshot.app_id: snapshot for snapshot in await self._store.latest_snapshots(workspace_id)}
        reply = pb.ListWorkspaceAppsResponse()
        for app in sorted(await self._store.list_apps(workspace_id), key=lambda a: (a.name, a.id)):
            summary = reply.apps.add(id=app.id, name=app.name, service_name=app.service_name)
            snapshot = latest.get(app.id)
            if snapshot is None:
                summary.status = pb.HEALTH_STATUS_UNKNOWN
                continue
            set_timestamp(summary.last_checked_at, snapshot.checked_ns)
            stale = is_stale(snapshot, at_ns, self._stale_after_ns)
            summary.status = pb.HEALTH_STATUS_UNKNOWN if stale else _STATUS_NUMBERS[snapshot.status]  # type: ignore[assignment]
        return reply

    def _reply(self, app_id: str, snapshot: HealthSnapshot | None, deployed_ns: int | None) -> pb.GetAppHealthResponse:
        at_ns = self._clock()
        if snapshot is not None and not is_stale(snapshot, at_ns, self._stale_after_ns):
            return _evaluated(app_id, snapshot, deployed_ns)
        reply = _unevaluated(app_id, deployed_ns)
        if snapshot is None:
            reply.reasons.append("not evaluated yet")
        else:
            set_timestamp(reply.last_checked_at, snapshot.checked_ns)
            age_s = (at_ns - snapshot.checked_ns) // NS_PER_S
            reply.reasons.append(f"last evaluation {age_s} s ago: the evaluator is not running")
        return reply


def _unevaluated(app_id: str, deployed_ns: int | None) -> pb.GetAppHealthResponse:
    reply = pb.GetAppHealthResponse(app_id=app_id, status=pb.HEALTH_STATUS_UNKNOWN)
    if deployed_ns is not None:
        set_timestamp(reply.last_deployed_at, deployed_ns)
    return reply


@functools.lru_cache(maxsize=MEMO_ROWS)
def _evaluated(app_id: str, snapshot: HealthSnapshot, deployed_ns: int | None) -> pb.GetAppHealthResponse:
    """The reply from a fresh snapshot, kept: the arguments fix it (records are frozen, and the store hands back the
    same record for the same row), so polling an app between two ticks builds one reply. Never changed once made:
    gRPC only serializes it."""
    reply = _unevaluated(app_id, deployed_ns)
    set_timestamp(reply.last_checked_at, snapshot.checked_ns)
    reply.status = _STATUS_NUMBERS[snapshot.status]  # type: ignore[assignment]
    reply.reasons.extend(snapshot.reasons)
    if snapshot.status is not HealthStatus.UNKNOWN:
        # The contract: a number whenever the app has data, 0 when no instance is up (no run under way).
        up_since_ns = snapshot.up_since_ns
        reply.uptime = 0 if up_since_ns is None else (snapshot.checked_ns - up_since_ns) // NS_PER_S
    if snapshot.instance_count is not None:
        reply.instance_count = snapshot.instance_count
    if snapshot.error_rate is not None:
        reply.error_rate = snapshot.error_rate
    if snapshot.avg_latency_ms is not None:
        reply.avg_latency_ms = snapshot.avg_latency_ms
    return reply
