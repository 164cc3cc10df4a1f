"""The threshold alert engine: a listener of the evaluator's tick that fires, escalates and resolves alerts.

Per tick it sends one PromQL query per (alert type, distinct hold duration) in effect, whatever the number
of apps: each query is grouped ``by (workspace_id, app_id)`` and returns, for every app at once, the
minimum of the metric over the hold window, whether the series existed at the window's start, and, only
when some app of that (type, hold) has an open or latched alert to judge, the maximum::

    label_replace(min_over_time((E >= 0)[W:R]), "stat", "min", "", "")
    or label_replace(last_over_time((E >= 0)[R:R] offset W), "stat", "start", "", "")
    or label_replace(max_over_time((E >= 0)[W:R]), "stat", "max", "", "")

with ``W = hold + R`` and ``R`` the resolution. Every point of the window at or above a threshold means the
breach has held for at least ``hold`` (the earliest point lies at least ``hold`` before the tick); every
point below ``recovery`` means the recovery has. The thresholds are compared here, per app, so per-app
rules cost no extra query. A series that did not exist at the window's start (younger than the hold)
decides nothing. ``E >= 0`` drops NaN points (a ratio over zero traffic). Prometheus's cost is about
``W / R`` evaluations of ``E`` per subquery, so the maximum is asked for only when it is needed.

Per (app, type), with the app's thresholds:

- open alert and recovery held                      → resolved (``resolved_by = recovery``) at the tick
- open ``warning`` alert and the critical level held → escalated to ``critical`` (same alert)
- no open alert, not latched, breach held           → fired; the partial unique index ``alerts_one_open``
  makes a second open alert for (app, type) a no-op, so two evaluators on one database fire once
- latched (resolved by hand, not re-armed) and recovery held → re-armed; a manually resolved alert whose
  breach continues therefore does not fire again until the metric has recovered and breached again

A tick's decisions are applied in one write transaction (one fsync, however many apps breach at once).
A tick on which Prometheus failed (the evaluator's or one of these queries) is skipped: nothing fires
and nothing resolves on missing data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import secrets
import string
import time
from collections.abc import Mapping, Sequence
from typing import Any

from server import alert_rules
from server.alert_rules import HIGH_CPU, HIGH_ERROR_RATE, HIGH_LATENCY, HIGH_MEMORY, RuleBook, Thresholds
from server.convert import NS_PER_S
from server.errors import ServiceError
from server.evaluator import Tick
from server.prometheus import PrometheusClient, Sample, finite
from server.queries import Queries, duration
from server.store import Store
from server.store.records import Alert, AlertChanges, App

log = logging.getLogger("server.rules")

WARNING, CRITICAL = "warning", "critical"
_MIB = 1048576

# CPU and memory of the busiest instance (``$instance``: the per-instance label, ``pod`` by default), in
# cores and bytes: a limit is per instance, and the instance nearest to its limit is the one throttled or
# OOM-killed. Without that label every series of the app counts as one instance.
DEFAULT_EXPRESSIONS: Mapping[str, str] = {
    HIGH_CPU: (
        "max by ($by) (sum by ($by, $instance) ("
        'rate(container_cpu_usage_seconds_total{$all, container!="", container!="POD"}[5m])))'
    ),
    HIGH_MEMORY: (
        "max by ($by) (sum by ($by, $instance) ("
        'container_memory_working_set_bytes{$all, container!="", container!="POD"}))'
    ),
}
# Error rate (percent) and latency (ms) are the evaluator's grouped queries, so an override in
# [prometheus.grouped] applies to health and alerts alike.
_GROUPED_QUERY = {HIGH_ERROR_RATE: "error_rate", HIGH_LATENCY: "latency"}

_SUBJECT = {
    HIGH_CPU: ("CPU usage", "%"),
    HIGH_MEMORY: ("Memory usage", "%"),
    HIGH_ERROR_RATE: ("Error rate", "%"),
    HIGH_LATENCY: ("Average latency", "ms"),
}


def alert_text(alert_type: str, threshold: float) -> str:
    """``Memory usage exceeded 80% threshold``, as in the contract."""
    subject, unit = _SUBJECT[alert_type]
    return f"{subject} exceeded {threshold:g}{unit} threshold"


_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def new_alert_id(now_ns: int) -> str:
    """``alr_`` + a ULID (48-bit milliseconds, 80 random bits, Crockford base32): ids sort by time."""
    value = (now_ns // 1_000_000) << 80 | secrets.randbits(80)
    return "alr_" + "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


@dataclasses.dataclass(frozen=True)
class AlertSettings:
    """The ``[alerts]`` table of the config file."""

    defaults: Mapping[str, Thresholds] = dataclasses.field(default_factory=lambda: dict(alert_rules.BUILT_IN))
    # Step of the hold-window subqueries, in seconds; holds are judged at this resolution.
    resolution_s: int = 15
    # The label that tells an app's instances apart in the CPU and memory series.
    instance_label: str = "pod"
    expressions: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> AlertSettings:
        allowed = {"defaults", "resolution_s", "instance_label", "expressions"}
        unknown = sorted(set(section) - allowed)
        if unknown:
            raise SystemExit(f"config [alerts]: unknown keys {unknown}; allowed: {sorted(allowed)}")
        resolution = section.get("resolution_s", cls.resolution_s)
        if isinstance(resolution, bool) or not isinstance(resolution, int) or not 1 <= resolution <= 3600:
            raise SystemExit(f"config [alerts] resolution_s: must be an integer from 1 to 3600, got {resolution!r}")
        instance = section.get("instance_label", cls.instance_label)
        if not isinstance(instance, str) or not _LABEL_NAME.fullmatch(instance):
            raise SystemExit(f"config [alerts] instance_label: {instance!r} is not a Prometheus label name")
        expressions = section.get("expressions", {})
        if not isinstance(expressions, Mapping) or not set(expressions) <= set(alert_rules.TYPES):
            raise SystemExit(f"config [alerts.expressions]: a table with keys among {list(alert_rules.TYPES)}")
        for key, value in expressions.items():
            if not isinstance(value, str) or not value.strip():
                raise SystemExit(f"config [alerts.expressions] {key}: must be a non-empty PromQL string")
        return cls(
            defaults=alert_rules.defaults_from_section(section.get("defaults", {})),
            resolution_s=resolution,
            instance_label=instance,
            expressions=dict(expressions),
        )


@dataclasses.dataclass(frozen=True)
class Window:
    """What the hold window of one app showed, in the rule's unit. ``high`` is None when not asked for."""

    low: float
    high: float | None


class RulesEngine:
    """The evaluator listener. Stateless between ticks: everything it knows is in the store."""

    def __init__(self, store: Store, prometheus: PrometheusClient, queries: Queries, settings: AlertSettings):
        self._store = store
        self._prometheus = prometheus
        self._queries = queries
        self._settings = settings
        self._expressions = {t: self._expression(t) for t in alert_rules.TYPES}

    def _expression(self, alert_type: str) -> str:
        template = self._settings.expressions.get(alert_type)
        if template is None and alert_type in _GROUPED_QUERY:
            return self._queries.grouped_query(_GROUPED_QUERY[alert_type])
        template = template or DEFAULT_EXPRESSIONS[alert_type]
        try:
            return string.Template(template).substitute(
                all=self._queries.all_matchers(), by=self._queries.grouping(), instance=self._settings.instance_label
            )
        except (KeyError, ValueError) as error:
            raise SystemExit(f"config [alerts.expressions] {alert_type}: bad placeholder: {error}") from None

    async def on_tick(self, tick: Tick) -> None:
        if tick.error is not None:
            log.info("alert rules skipped the tick at %d: %s", tick.now_ns, tick.error)
            return
        started = time.perf_counter()
        book = RuleBook(self._settings.defaults, await self._store.list_alert_rules())
        plan = [(app, t, book.for_app(app, t)) for app in tick.apps for t in alert_rules.TYPES]
        holds = sorted({(t, th.hold_seconds) for _, t, th in plan})
        open_alerts = {(a.app_id, a.type): a for a in await self._store.open_alerts()}
        latched = {(a.app_id, a.type) for a in await self._store.latched_alerts()}
        # The (type, hold) pairs for which some app has an alert whose recovery must be judged.
        pending = open_alerts.keys() | latched
        judged = {(t, th.hold_seconds) for app, t, th in plan if (app.id, t) in pending}
        try:
            windows = await asyncio.gather(
                *(self._windows(t, hold, (t, hold) in judged, tick.now_ns) for t, hold in holds)
            )
        except ServiceError as error:
            log.warning("alert rules skipped the tick at %d: %s", tick.now_ns, error.message)
            return
        by_hold = dict(zip(holds, windows, strict=True))
        decisions = _Decisions(tick.now_ns)
        for app, alert_type, thresholds in plan:
            window = by_hold[(alert_type, thresholds.hold_seconds)].get((app.workspace_id, app.id))
            if window is not None:  # no window (no data, or younger than the hold): no decision
                key = (app.id, alert_type)
                window = _in_rule_unit(alert_type, app, window)
                decisions.decide(app, alert_type, thresholds, window, open_alerts.get(key), key in latched)
        changes = decisions.changes()
        fired = await self._store.apply_alert_changes(changes) if changes else []
        for alert in fired:
            log.info("alert %s fired: %s %s for %s", alert.id, alert.severity, alert.type, alert.app_id)
        for alert_id in changes.resolve:
            log.info("alert %s resolved on recovery", alert_id)
        log.debug(
            "alert rules: %d apps, %d queries, %d fired, %d resolved, %d escalated, %d re-armed in %.3f s",
            len(tick.apps),
            len(holds),
            len(fired),
            len(changes.resolve),
            len(changes.escalate),
            len(changes.rearm),
            time.perf_counter() - started,
        )

    def _window_query(self, alert_type: str, hold_s: int, with_max: bool) -> str:
        """The PromQL for one (type, hold): see the module docstring."""
        expression = f"({self._expressions[alert_type]}) >= 0"
        if hold_s == 0:
            return expression
        step = duration(self._settings.resolution_s)
        width = duration(hold_s + self._settings.resolution_s)
        parts = [
            ("min", f"min_over_time(({expression})[{width}:{step}])"),
            ("start", f"last_over_time(({expression})[{step}:{step}] offset {width})"),
        ]
        if with_max:
            parts.append(("max", f"max_over_time(({expression})[{width}:{step}])"))
        return " or ".join(f'label_replace({query}, "stat", "{stat}", "", "")' for stat, query in parts)

    async def _windows(self, alert_type: str, hold_s: int, with_max: bool, at_ns: int) -> dict[tuple[str, str], Window]:
        samples = await self._prometheus.query(self._window_query(alert_type, hold_s, with_max), at=at_ns / NS_PER_S)
        if hold_s == 0:  # the value now is the whole window
            return {key: Window(value, value) for key, value in self._by_app(samples).items()}
        stats: dict[str, dict[tuple[str, str], float]] = {"min": {}, "start": {}, "max": {}}
        for sample in samples:  # one pass: tens of thousands of elements for large fleets
            key, value = self._queries.app_key(sample.labels), finite(sample.value)
            stat = stats.get(sample.labels.get("stat", ""))
            if key is not None and value is not None and stat is not None:
                stat[key] = value
        return {
            key: Window(low, stats["max"].get(key) if with_max else None)
            for key, low in stats["min"].items()
            if key in stats["start"]
        }

    def _by_app(self, samples: Sequence[Sample]) -> dict[tuple[str, str], float]:
        values = {}
        for sample in samples:
            key = self._queries.app_key(sample.labels)
            value = finite(sample.value)
            if key is not None and value is not None:
                values[key] = value
        return values


class _Decisions:
    """Collects one tick's decisions, per (app, type), as the module docstring lists them."""

    def __init__(self, now_ns: int):
        self._now_ns = now_ns
        self._fire: list[Alert] = []
        self._resolve: list[str] = []
        self._escalate: list[tuple[str, str, str]] = []
        self._rearm: list[tuple[str, str]] = []

    def decide(
        self,
        app: App,
        alert_type: str,
        thresholds: Thresholds,
        window: Window,
        open_alert: Alert | None,
        latched: bool,
    ) -> None:
        recovered = window.high is not None and window.high < thresholds.recovery
        level = CRITICAL if window.low >= thresholds.critical else WARNING if window.low >= thresholds.warning else None
        if open_alert is not None:
            if recovered:
                self._resolve.append(open_alert.id)
            elif level == CRITICAL and open_alert.severity == WARNING:
                self._escalate.append((open_alert.id, CRITICAL, alert_text(alert_type, thresholds.critical)))
        elif latched:
            if recovered:
                self._rearm.append((app.id, alert_type))
        elif level is not None:
            threshold = thresholds.critical if level == CRITICAL else thresholds.warning
            self._fire.append(
                Alert(
                    id=new_alert_id(self._now_ns),
                    workspace_id=app.workspace_id,
                    app_id=app.id,
                    type=alert_type,
                    severity=level,
                    message=alert_text(alert_type, threshold),
                    triggered_ns=self._now_ns,
                    resolved_ns=None,
                    resolved_by=None,
                )
            )

    def changes(self) -> AlertChanges:
        return AlertChanges(self._now_ns, self._fire, self._resolve, self._escalate, self._rearm)


def _in_rule_unit(alert_type: str, app: App, window: Window) -> Window:
    """CPU cores and memory bytes become percent of the app's per-instance limit; the rest are as queried."""
    if alert_type == HIGH_CPU:
        scale = 100.0 / app.cpu_limit_cores
    elif alert_type == HIGH_MEMORY:
        scale = 100.0 / (app.memory_limit_mib * _MIB)
    else:
        return window
    return Window(window.low * scale, None if window.high is None else window.high * scale)
