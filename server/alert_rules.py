"""Alert threshold rules: the built-in defaults, overrides per workspace and per app, and their validation.

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
from typing import Any

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import platform_pb2 as ppb
from server.convert import enum_from_json, enum_to_json
from server.errors import InvalidArgument
from server.store.records import AlertRule, App

HIGH_CPU, HIGH_MEMORY, HIGH_ERROR_RATE, HIGH_LATENCY = "high_cpu", "high_memory", "high_error_rate", "high_latency"
TYPES = (HIGH_CPU, HIGH_MEMORY, HIGH_ERROR_RATE, HIGH_LATENCY)
DEFAULT_PREFIX = "default:"
MAX_HOLD_S = 86400

_ALERT_TYPE = pb.AlertType.DESCRIPTOR


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """In the metric's unit: percent of the limit (CPU, memory), percent of requests (errors), ms (latency)."""

    warning: float
    critical: float
    recovery: float
    hold_seconds: int


BUILT_IN: Mapping[str, Thresholds] = {
    HIGH_CPU: Thresholds(warning=80.0, critical=95.0, recovery=70.0, hold_seconds=300),
    HIGH_MEMORY: Thresholds(warning=80.0, critical=95.0, recovery=70.0, hold_seconds=300),
    HIGH_ERROR_RATE: Thresholds(warning=5.0, critical=10.0, recovery=2.0, hold_seconds=300),
    HIGH_LATENCY: Thresholds(warning=1000.0, critical=2000.0, recovery=700.0, hold_seconds=300),
}


def check(thresholds: Thresholds, prefix: str = "") -> Thresholds:
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


def require_type(field: str, value: int) -> str:
    """The documented string of an AlertType number; INVALID_ARGUMENT listing the known types otherwise."""
    if value == 0 or _ALERT_TYPE.values_by_number.get(value) is None:
        raise InvalidArgument(field, f"unknown alert type {value}", allowed=TYPES)
    return enum_to_json(_ALERT_TYPE, value)


def thresholds_of(rule: AlertRule | ppb.AlertRule) -> Thresholds:
    return Thresholds(rule.warning_threshold, rule.critical_threshold, rule.recovery_threshold, rule.hold_seconds)


def defaults_from_section(section: Mapping[str, Any]) -> dict[str, Thresholds]:
    """The defaults with the ``[alerts.defaults.<type>]`` overrides of the config file applied."""
    if not isinstance(section, Mapping):
        raise SystemExit("config [alerts.defaults] must be a table")
    unknown = sorted(set(section) - set(TYPES))
    if unknown:
        raise SystemExit(f"config [alerts.defaults]: unknown alert types {unknown}; allowed: {list(TYPES)}")
    defaults = dict(BUILT_IN)
    for alert_type, table in section.items():
        defaults[alert_type] = _default_from_table(alert_type, table, BUILT_IN[alert_type])
    return defaults


def _default_from_table(alert_type: str, table: Any, base: Thresholds) -> Thresholds:
    where = f"config [alerts.defaults.{alert_type}]"
    if not isinstance(table, Mapping):
        raise SystemExit(f"{where} must be a table")
    keys = {"warning": float, "critical": float, "recovery": float, "hold_seconds": int}
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise SystemExit(f"{where}: unknown keys {unknown}; allowed: {sorted(keys)}")
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, keys[key] | int):
            kind = "an integer" if keys[key] is int else "a number"
            raise SystemExit(f"{where} {key}: must be {kind}, got {value!r}")
    merged = dataclasses.replace(base, **{k: keys[k](v) for k, v in table.items()})
    try:
        return check(merged)
    except InvalidArgument as error:
        raise SystemExit(f"{where}: {error.message}") from None


class RuleBook:
    """The thresholds in effect at one moment, for every app: app rule > workspace rule > default."""

    def __init__(self, defaults: Mapping[str, Thresholds], rules: Iterable[AlertRule]):
        self._defaults = defaults
        self._rules = {(r.workspace_id, r.app_id, r.type): thresholds_of(r) for r in rules}

    def for_app(self, app: App, alert_type: str) -> Thresholds:
        return (
            self._rules.get((app.workspace_id, app.id, alert_type))
            or self._rules.get((app.workspace_id, None, alert_type))
            or self._defaults[alert_type]
        )


def rule_message(rule: AlertRule) -> ppb.AlertRule:
    return ppb.AlertRule(
        id=rule.id,
        workspace_id=rule.workspace_id,
        app_id=rule.app_id or "",
        type=enum_from_json(_ALERT_TYPE, rule.type),
        warning_threshold=rule.warning_threshold,
        critical_threshold=rule.critical_threshold,
        recovery_threshold=rule.recovery_threshold,
        hold_seconds=rule.hold_seconds,
    )


def default_messages(defaults: Mapping[str, Thresholds]) -> list[ppb.AlertRule]:
    """The built-in rules as ListAlertRules shows them: id ``default:<type>``, no workspace, no app."""
    return [
        ppb.AlertRule(
            id=DEFAULT_PREFIX + alert_type,
            type=enum_from_json(_ALERT_TYPE, alert_type),
            warning_threshold=t.warning,
            critical_threshold=t.critical,
            recovery_threshold=t.recovery,
            hold_seconds=t.hold_seconds,
        )
        for alert_type, t in ((a, defaults[a]) for a in TYPES)
    ]
