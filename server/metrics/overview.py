"""GetWorkspaceOverview: counts from the store, instances and cost from Prometheus, health from snapshots.

- ``activeApps``: registered apps with at least one ``up == 1`` series at the call (Prometheus's 5-minute
  lookback: an instance scraped within the last 5 minutes and up then).
- ``deploysToday`` / ``failedBuildsToday``: started at or after 00:00 UTC today (a build counts as failed
  when its current status is ``failed``).
- ``estimatedMonthlyCost`` (USD, rounded to cents): month-to-date usage plus the current hourly rate for
  the rest of the calendar month (UTC)::

      month_to_date = instance_hours × instance_hour_usd + memory_gib_hours × memory_gib_hour_usd
      instance_hours   = (samples of up == 1 since 00:00 UTC on the 1st) × sample_interval_s / 3600
      memory_gib_hours = (sum of working-set samples since then, in GiB) × sample_interval_s / 3600
      current_rate     = instances up now × instance_hour_usd + GiB in use now × memory_gib_hour_usd
      estimate         = month_to_date + current_rate × hours left until 00:00 UTC on the next 1st

  Prices and ``sample_interval_s`` (the scrape interval of those series) come from ``[cost]``; the four
  queries are ``COST_TEMPLATES`` in server/metrics/promql.py (``[cost.queries]`` can replace them).
- ``appHealthSummary``: each app's latest health snapshot; an app without one counts as ``unknown``.
- ``recentActivity``: deploys and builds (at their start, with their current status) and alerts (when they
  fired, with their message), newest first, at most 20.

Prometheus down → UNAVAILABLE (or DEADLINE_EXCEEDED): no number is guessed.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.config import CostSettings
from server.convert import NS_PER_S, enum_from_json, now_ns, timestamp
from server.metrics.health import is_stale
from server.metrics.prometheus import PrometheusClient, Sample, finite
from server.metrics.promql import Queries
from server.states import HealthStatus, OperationKind, OperationStatus
from server.store import Store
from server.store.records import Alert, App, Operation

ACTIVITY_LIMIT = 20
_GIB = 1024**3
_OPERATION_STATUS = pb.OperationStatus.DESCRIPTOR


def month_bounds(at_ns: int) -> tuple[int, int]:
    """00:00 UTC on the 1st of the month of ``at_ns`` and of the next month, in Unix seconds."""
    moment = datetime.datetime.fromtimestamp(at_ns / NS_PER_S, datetime.UTC)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + datetime.timedelta(days=32)).replace(day=1)
    return int(start.timestamp()), int(end.timestamp())


def day_start_ns(at_ns: int) -> int:
    return at_ns - at_ns % (86400 * NS_PER_S)


def estimate_cost(
    model: CostSettings,
    *,
    up_samples: float,
    memory_byte_samples: float,
    up_now: float,
    memory_bytes_now: float,
    hours_left: float,
) -> float:
    """The formula of the module docstring, rounded to cents."""
    hours_per_sample = model.sample_interval_s / 3600
    month_to_date = (
        up_samples * hours_per_sample * model.instance_hour_usd
        + memory_byte_samples / _GIB * hours_per_sample * model.memory_gib_hour_usd
    )
    rate = up_now * model.instance_hour_usd + memory_bytes_now / _GIB * model.memory_gib_hour_usd
    return round(month_to_date + rate * hours_left, 2)


class WorkspaceOverview:
    """The OverviewReader capability."""

    def __init__(
        self,
        store: Store,
        prometheus: PrometheusClient,
        queries: Queries,
        cost: CostSettings,
        *,
        stale_after_s: float,
        clock: Callable[[], int] = now_ns,
    ):
        self._store = store
        self._prometheus = prometheus
        self._queries = queries
        self._cost = cost
        # The same age as GetAppHealth's: the summary counts what each app's GetAppHealth would say.
        self._stale_after_ns = int(stale_after_s * NS_PER_S)
        self._clock = clock

    async def overview(self, workspace_id: str) -> pb.GetWorkspaceOverviewResponse:
        at_ns = self._clock()
        apps = await self._store.list_apps(workspace_id)
        usage = await self._usage(workspace_id, {a.id for a in apps}, at_ns)
        today = day_start_ns(at_ns)
        snapshots = {
            s.app_id: HealthStatus.UNKNOWN if is_stale(s, at_ns, self._stale_after_ns) else s.status
            for s in await self._store.latest_snapshots(workspace_id)
        }
        health = dict.fromkeys(HealthStatus, 0)
        for app in apps:
            health[snapshots.get(app.id, HealthStatus.UNKNOWN)] += 1
        return pb.GetWorkspaceOverviewResponse(
            total_apps=len(apps),
            active_apps=sum(1 for app in apps if usage["up_now"].get(app.id, 0) >= 1),
            total_deploys=await self._store.count_operations(OperationKind.DEPLOY, workspace_id),
            deploys_today=await self._store.count_operations(OperationKind.DEPLOY, workspace_id, since_ns=today),
            failed_builds_today=await self._store.count_operations(
                OperationKind.BUILD, workspace_id, since_ns=today, status=OperationStatus.FAILED
            ),
            estimated_monthly_cost=self._estimate(usage, at_ns),
            app_health_summary=pb.AppHealthSummary(**{status.value: count for status, count in health.items()}),
            recent_activity=await self._activity(workspace_id, apps),
        )

    async def _usage(self, workspace_id: str, app_ids: set[str], at_ns: int) -> dict[str, dict[str, float]]:
        """Per query, per registered app: the value Prometheus gave (apps without series are absent)."""
        month_start, _ = month_bounds(at_ns)
        elapsed = max(1, int(at_ns // NS_PER_S) - month_start)
        names = list(self._queries.cost_templates)
        texts = [self._queries.cost_query(name, workspace_id, elapsed) for name in names]
        # At a whole second: overviews of one workspace asked within the same second share their queries
        # (the API client coalesces identical queries in flight).
        results = await self._prometheus.query_many(texts, at=at_ns // NS_PER_S)
        return {name: self._per_app(samples, app_ids) for name, samples in zip(names, results, strict=True)}

    def _per_app(self, samples: Sequence[Sample], app_ids: set[str]) -> dict[str, float]:
        values: dict[str, float] = {}
        for sample in samples:
            app_id = sample.labels.get(self._queries.app_label, "")
            value = finite(sample.value)
            if app_id in app_ids and value is not None:
                values[app_id] = values.get(app_id, 0.0) + value
        return values

    def _estimate(self, usage: Mapping[str, Mapping[str, float]], at_ns: int) -> float:
        _, month_end = month_bounds(at_ns)
        return estimate_cost(
            self._cost,
            up_samples=sum(usage["up_samples"].values()),
            memory_byte_samples=sum(usage["memory_samples"].values()),
            up_now=sum(usage["up_now"].values()),
            memory_bytes_now=sum(usage["memory_now"].values()),
            hours_left=(month_end - at_ns / NS_PER_S) / 3600,
        )

    async def _activity(self, workspace_id: str, apps: Sequence[App]) -> list[pb.ActivityItem]:
        names = {app.id: app.name for app in apps}
        deploys = await self._store.recent_operations(OperationKind.DEPLOY, workspace_id, ACTIVITY_LIMIT)
        builds = await self._store.recent_operations(OperationKind.BUILD, workspace_id, ACTIVITY_LIMIT)
        alerts = await self._store.list_alerts(workspace_id, limit=ACTIVITY_LIMIT)
        items: list[tuple[int, str, pb.ActivityItem]] = [
            *((op.started_ns, op.id, _operation_item(pb.ACTIVITY_TYPE_DEPLOY, op, names)) for op in deploys),
            *((op.started_ns, op.id, _operation_item(pb.ACTIVITY_TYPE_BUILD, op, names)) for op in builds),
            *((a.triggered_ns, a.id, _alert_item(a, names)) for a in alerts),
        ]
        # Newest first; ties broken by id so the order is stable between calls.
        items.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [item for _, _, item in items[:ACTIVITY_LIMIT]]


def _operation_item(kind: pb.ActivityType.ValueType, op: Operation, names: Mapping[str, str]) -> pb.ActivityItem:
    return pb.ActivityItem(
        type=kind,
        app_name=names.get(op.app_id, ""),
        status=enum_from_json(_OPERATION_STATUS, op.status),
        timestamp=timestamp(op.started_ns),
    )


def _alert_item(alert: Alert, names: Mapping[str, str]) -> pb.ActivityItem:
    return pb.ActivityItem(
        type=pb.ACTIVITY_TYPE_ALERT,
        app_name=names.get(alert.app_id, ""),
        message=alert.message,
        timestamp=timestamp(alert.triggered_ns),
    )
