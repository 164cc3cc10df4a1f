"""Alert thresholds: the built-in defaults, their validation, and which thresholds apply to an app.

Which thresholds apply to an app, for one alert type: the app's own rule, else its workspace's rule, else
the default (built in, or set in the ``[alerts.defaults.<type>]`` tables of the config file).

A rule fires when its metric stays at or above ``warning`` (``critical``) for ``hold_seconds`` and resolves
when it stays below ``recovery`` for ``hold_seconds``; ``critical ≥ warning > recovery ≥ 0`` so that a value
between recovery and warning changes nothing (no flapping).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

from server.errors import InvalidArgument
from server.states import AlertType
from server.store.records import AlertRule, App

MAX_HOLD_S = 86400


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """In the metric's unit: percent of the limit (CPU, memory), percent of requests (errors), ms (latency)."""

    warning: float
    critical: float
    recovery: float
    hold_seconds: int


BUILT_IN: Mapping[AlertType, Thresholds] = {
    AlertType.HIGH_CPU: Thresholds(warning=80.0, critical=95.0, recovery=70.0, hold_seconds=300),
    AlertType.HIGH_MEMORY: Thresholds(warning=80.0, critical=95.0, recovery=70.0, hold_seconds=300),
    AlertType.HIGH_ERROR_RATE: Thresholds(warning=5.0, critical=10.0, recovery=2.0, hold_seconds=300),
    AlertType.HIGH_LATENCY: Thresholds(warning=1000.0, critical=2000.0, recovery=700.0, hold_seconds=300),
}


def check_thresholds(thresholds: Thresholds, prefix: str = "") -> Thresholds:
    """Raises InvalidArgument naming the first bad field (``rule.warning_threshold``, ...)."""
    values = {
        "warning_threshold": thresholds.warning,
        "critical_threshold": thresholds.critical,
        "recovery_threshold": thresholds.recovery,
    }
    for name, value in values.items():
        if not math.isfinite(value):
            raise InvalidArgument(prefix + name, f"must be a finite number, got {value}")
    if thresholds.recovery < 0:
        raise InvalidArgument(prefix + "recovery_threshold", f"must be at least 0, got {thresholds.recovery:g}")
    if not thresholds.warning > thresholds.recovery:
        raise InvalidArgument(
            prefix + "warning_threshold",
            f"must be greater than recovery_threshold ({thresholds.recovery:g}), got {thresholds.warning:g}",
        )
    if thresholds.critical < thresholds.warning:
        raise InvalidArgument(
            prefix + "critical_threshold",
            f"must be at least warning_threshold ({thresholds.warning:g}), got {thresholds.critical:g}",
        )
    if not 0 <= thresholds.hold_seconds <= MAX_HOLD_S:
        raise InvalidArgument(
            prefix + "hold_seconds", f"must be between 0 and {MAX_HOLD_S}, got {thresholds.hold_seconds}"
        )
    return thresholds


def thresholds_of(rule: AlertRule) -> Thresholds:
    return Thresholds(rule.warning_threshold, rule.critical_threshold, rule.recovery_threshold, rule.hold_seconds)


class RuleBook:
    """The thresholds in effect at one moment, for every app: app rule > workspace rule > default."""

    def __init__(self, defaults: Mapping[AlertType, Thresholds], rules: Iterable[AlertRule]):
        self._defaults = defaults
        self._rules = {(r.workspace_id, r.app_id, r.type): thresholds_of(r) for r in rules}

    def for_app(self, app: App, alert_type: AlertType) -> Thresholds:
        return (
            self._rules.get((app.workspace_id, app.id, alert_type))
            or self._rules.get((app.workspace_id, None, alert_type))
            or self._defaults[alert_type]
        )
