"""The threshold alert engine: a listener of the evaluator's tick that fires, escalates and resolves alerts.

Per tick it sends one PromQL query per (alert type, distinct hold duration) in effect, whatever the number
of apps (:meth:`~server.metrics.promql.Queries.alert_window_query`): grouped ``by (workspace_id, app_id)``,
it returns for every app at once the minimum of the metric over the hold window, whether the series existed
at the window's start, and, only when some app of that (type, hold) has an open or latched alert to judge,
the maximum. Every point of the window at or above a threshold means the breach has held for at least
``hold`` (the earliest point lies at least ``hold`` before the tick); every point below ``recovery`` means
the recovery has. The thresholds are compared here, per app, so per-app rules cost no extra query. A series
that did not exist at the window's start (younger than the hold) decides nothing. Prometheus's cost is about
``hold / resolution`` evaluations of the metric per subquery, so the maximum is asked for only when needed.

Per (app, type), with the app's thresholds (:func:`decide`, pure and tested as a table):

- open alert and recovery held                      → resolved (``resolved_by = recovery``) at the tick
- open ``warning`` alert and the critical level held → escalated to ``critical`` (same alert)
- no open alert, not latched, breach held           → fired; the partial unique index ``alerts_one_open``
  makes a second open alert for (app, type) a no-op, so two evaluators on one database fire once
- latched (resolved by hand, not re-armed) and recovery held → re-armed; a manually resolved alert whose
  breach continues therefore does not fire again until the metric has recovered and breached again

Who is told (docs/notifications.md): a fired alert is released to the workspace's notification channels at once
(``notified_ns``), unless it fires within the deploy hold of its app (a deploy recorded less than ``deploy_hold_s``
ago: ``held_until_ns``) or while a silence of its workspace matches it (``silence_id``). Such an alert is kept
and listed; a later successful tick releases it once it is still open, past its hold, and matched by no active
silence, and whose condition still holds (its hold window at or above the warning level at that tick). An alert
that recovers first is resolved without anyone being told. The store queues the channels'
events in the transaction that applies the changes.

A tick's decisions are applied in one write transaction (one fsync, however many apps breach at once).
A tick on which Prometheus failed (the evaluator's or one of these queries) is skipped: nothing fires
and nothing resolves on missing data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from collections.abc import Iterable, Mapping, Sequence

from server.alerts.silences import ActiveSilences
from server.alerts.thresholds import RuleBook, Thresholds
from server.config import AlertSettings
from server.convert import NS_PER_S
from server.errors import ServiceError
from server.ids import new_id
from server.metrics.evaluator import Tick
from server.metrics.prometheus import PrometheusClient, Sample, finite
from server.metrics.promql import Queries
from server.states import AlertSeverity, AlertType
from server.store import Store
from server.store.records import Alert, AlertChanges, App, Silence

log = logging.getLogger("server.alerts.engine")

_MIB = 1048576

_SUBJECT: Mapping[AlertType, tuple[str, str]] = {
    AlertType.HIGH_CPU: ("CPU usage", "%"),
    AlertType.HIGH_MEMORY: ("Memory usage", "%"),
    AlertType.HIGH_ERROR_RATE: ("Error rate", "%"),
    AlertType.HIGH_LATENCY: ("Average latency", "ms"),
}


def alert_text(alert_type: AlertType, threshold: float) -> str:
    """``Memory usage exceeded 80% threshold``, as in the contract."""
    subject, unit = _SUBJECT[alert_type]
    return f"{subject} exceeded {threshold:g}{unit} threshold"


@dataclasses.dataclass(frozen=True)
class Window:
    """What the hold window of one app showed, in the rule's unit. ``high`` is None when not asked for."""

    low: float
    high: float | None


class Verdict(enum.Enum):
    """What one (app, alert type) comes to at one tick; see the module docstring for when each applies."""

    NOTHING = "nothing"
    FIRE_WARNING = "fire_warning"
    FIRE_CRITICAL = "fire_critical"
    ESCALATE = "escalate"
    RESOLVE = "resolve"
    REARM = "rearm"


def decide(thresholds: Thresholds, window: Window, open_severity: AlertSeverity | None, latched: bool) -> Verdict:
    """The decision table of one (app, type): its thresholds, its hold window, its open alert's severity
    (None when none is open) and whether a manual resolution latched it. Pure, so it is tested as a table."""
    recovered = window.high is not None and window.high < thresholds.recovery
    if open_severity is not None:
        if recovered:
            return Verdict.RESOLVE
        if open_severity == AlertSeverity.WARNING and window.low >= thresholds.critical:
            return Verdict.ESCALATE
        return Verdict.NOTHING
    if latched:
        return Verdict.REARM if recovered else Verdict.NOTHING
    if window.low >= thresholds.critical:
        return Verdict.FIRE_CRITICAL
    if window.low >= thresholds.warning:
        return Verdict.FIRE_WARNING
    return Verdict.NOTHING


class RulesEngine:
    """The evaluator listener. Stateless between ticks: everything it knows is in the store."""

    def __init__(self, store: Store, prometheus: PrometheusClient, queries: Queries, settings: AlertSettings):
        self._store = store
        self._prometheus = prometheus
        self._queries = queries
        self._settings = settings

    async def on_tick(self, tick: Tick) -> None:
        if tick.error is not None:
            log.info("alert rules skipped the tick at %d: %s", tick.now_ns, tick.error)
            return
        started = time.perf_counter()
        book = RuleBook(self._settings.defaults, await self._store.list_alert_rules())
        plan = [(app, t, book.for_app(app, t)) for app in tick.apps for t in AlertType]
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
        gate = await self._gate(tick.now_ns)
        decisions = _Decisions(tick.now_ns, gate)
        for app, alert_type, thresholds in plan:
            window = by_hold[(alert_type, thresholds.hold_seconds)].get((app.workspace_id, app.id))
            if window is not None:  # no window (no data, or younger than the hold): no decision
                key = (app.id, alert_type)
                window = _in_rule_unit(alert_type, app, window)
                decisions.add(app, alert_type, thresholds, window, open_alerts.get(key), key in latched)
        decisions.release(open_alerts.values())
        changes = decisions.changes()
        fired = await self._store.apply_alert_changes(changes, fence=tick.fence) if changes else []
        for alert in fired:
            log.info("alert %s fired: %s %s for %s", alert.id, alert.severity, alert.type, alert.app_id)
        for alert_id in changes.resolve:
            log.info("alert %s resolved on recovery", alert_id)
        for alert_id in changes.release:
            log.info("alert %s released to the notification channels", alert_id)
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

    async def _gate(self, now_ns: int) -> _Gate:
        hold_ns = self._settings.deploy_hold_s * NS_PER_S
        deploys = await self._store.deploys_started_since(now_ns - hold_ns) if hold_ns else {}
        return _Gate(now_ns, await self._store.active_silences(now_ns), deploys, hold_ns)

    async def _windows(
        self, alert_type: AlertType, hold_s: int, with_max: bool, at_ns: int
    ) -> dict[tuple[str, str], Window]:
        promql = self._queries.alert_window_query(alert_type, hold_s, self._settings.resolution_s, with_max=with_max)
        samples = await self._prometheus.query(promql, at=at_ns / NS_PER_S)
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


class _Gate:
    """What holds an alert back from the channels at one tick: the active silences, and the apps' deploy holds."""

    def __init__(self, now_ns: int, silences: Sequence[Silence], deploys: Mapping[str, int], hold_ns: int):
        self._now_ns = now_ns
        self._silences = ActiveSilences(silences)
        self._deploys = deploys
        self._hold_ns = hold_ns

    def silence(self, workspace_id: str, app_id: str, alert_type: AlertType) -> str | None:
        """The id of an active silence matching (app, type), the first found; None when none does."""
        return self._silences.matching(workspace_id, app_id, alert_type)

    def held_until(self, app_id: str) -> int | None:
        """The end of the app's deploy hold when one is in effect now, else None."""
        started = self._deploys.get(app_id)
        if started is None or started + self._hold_ns <= self._now_ns:
            return None
        return started + self._hold_ns

    def releases(self, alert: Alert) -> bool:
        """Whether an open alert not yet notified may be now: past its hold, and matched by no active silence."""
        held = alert.held_until_ns is not None and self._now_ns < alert.held_until_ns
        return not held and self.silence(alert.workspace_id, alert.app_id, alert.type) is None


class _Decisions:
    """Collects one tick's verdicts as the store's changes, applied in one transaction."""

    def __init__(self, now_ns: int, gate: _Gate):
        self._now_ns = now_ns
        self._gate = gate
        self._fire: list[Alert] = []
        self._resolve: list[str] = []
        self._escalate: list[tuple[str, AlertSeverity, str]] = []
        self._rearm: list[tuple[str, AlertType]] = []
        self._release: list[str] = []
        # (app id, type) whose window at this tick is still at or above the warning level.
        self._breaching: set[tuple[str, AlertType]] = set()

    def add(
        self,
        app: App,
        alert_type: AlertType,
        thresholds: Thresholds,
        window: Window,
        open_alert: Alert | None,
        latched: bool,
    ) -> None:
        verdict = decide(thresholds, window, open_alert.severity if open_alert else None, latched)
        if window.low >= thresholds.warning:
            self._breaching.add((app.id, alert_type))
        if verdict is Verdict.RESOLVE:
            assert open_alert is not None
            self._resolve.append(open_alert.id)
        elif verdict is Verdict.ESCALATE:
            assert open_alert is not None
            self._escalate.append((open_alert.id, AlertSeverity.CRITICAL, alert_text(alert_type, thresholds.critical)))
        elif verdict is Verdict.REARM:
            self._rearm.append((app.id, alert_type))
        elif verdict in (Verdict.FIRE_WARNING, Verdict.FIRE_CRITICAL):
            critical = verdict is Verdict.FIRE_CRITICAL
            silence_id = self._gate.silence(app.workspace_id, app.id, alert_type)
            held_until_ns = self._gate.held_until(app.id)
            self._fire.append(
                Alert(
                    id=new_id("alr", self._now_ns),
                    workspace_id=app.workspace_id,
                    app_id=app.id,
                    type=alert_type,
                    severity=AlertSeverity.CRITICAL if critical else AlertSeverity.WARNING,
                    message=alert_text(alert_type, thresholds.critical if critical else thresholds.warning),
                    triggered_ns=self._now_ns,
                    resolved_ns=None,
                    resolved_by=None,
                    silence_id=silence_id,
                    held_until_ns=held_until_ns,
                    notified_ns=self._now_ns if silence_id is None and held_until_ns is None else None,
                )
            )

    def release(self, open_alerts: Iterable[Alert]) -> None:
        """Releases the open alerts held back so far that nothing holds any more, and whose condition still holds
        at this tick: their whole hold window at or above the warning level. An alert that dipped below it (but
        not yet below recovery for the hold, so still open) waits; one that recovers is resolved untold."""
        for alert in open_alerts:
            unannounced = alert.notified_ns is None and (alert.app_id, alert.type) in self._breaching
            if unannounced and self._gate.releases(alert):
                self._release.append(alert.id)

    def changes(self) -> AlertChanges:
        return AlertChanges(self._now_ns, self._fire, self._resolve, self._escalate, self._rearm, self._release)


def _in_rule_unit(alert_type: AlertType, app: App, window: Window) -> Window:
    """CPU cores and memory bytes become percent of the app's per-instance limit; the rest are as queried."""
    if alert_type is AlertType.HIGH_CPU:
        scale = 100.0 / app.cpu_limit_cores
    elif alert_type is AlertType.HIGH_MEMORY:
        scale = 100.0 / (app.memory_limit_mib * _MIB)
    else:
        return window
    return Window(window.low * scale, None if window.high is None else window.high * scale)
