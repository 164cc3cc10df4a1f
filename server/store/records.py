"""The rows the store reads and writes, as plain frozen dataclasses (no protobuf, no SQL)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class Workspace:
    id: str
    name: str
    created_ns: int


@dataclasses.dataclass(frozen=True)
class App:
    id: str
    workspace_id: str
    name: str
    service_name: str
    memory_limit_mib: float
    cpu_limit_cores: float
    created_ns: int


@dataclasses.dataclass(frozen=True)
class Operation:
    """A deploy or a build. ``status`` is the documented string: queued, running, succeeded, failed, canceled."""

    id: str
    app_id: str
    workspace_id: str
    status: str
    started_ns: int
    finished_ns: int | None


@dataclasses.dataclass(frozen=True)
class ApiKey:
    id: str
    workspace_id: str
    name: str
    prefix: str
    created_ns: int
    revoked_ns: int | None


@dataclasses.dataclass(frozen=True)
class HealthSnapshot:
    """``status`` is the documented string: healthy, degraded, unhealthy, unknown."""

    app_id: str
    workspace_id: str
    checked_ns: int
    status: str
    up_since_ns: int | None
    instance_count: int | None
    error_rate: float | None
    avg_latency_ms: float | None
    reasons: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Alert:
    """``type`` and ``severity`` are the documented strings (high_memory, warning, ...)."""

    id: str
    workspace_id: str
    app_id: str
    type: str
    severity: str
    message: str
    triggered_ns: int
    resolved_ns: int | None
    resolved_by: str | None
    # Set once the metric was seen recovered after a manual resolution (see docs/alerts-and-overview.md).
    rearmed_ns: int | None = None


@dataclasses.dataclass(frozen=True)
class AlertRule:
    """A threshold override. ``app_id`` is None for a workspace-wide rule; ``type`` is high_cpu, ..."""

    id: str
    workspace_id: str
    app_id: str | None
    type: str
    warning_threshold: float
    critical_threshold: float
    recovery_threshold: float
    hold_seconds: int
    created_ns: int
    updated_ns: int


@dataclasses.dataclass(frozen=True)
class AlertChanges:
    """What one tick of the rules engine decided, applied in one transaction (see server/rules.py)."""

    now_ns: int
    fire: Sequence[Alert] = ()
    # Ids of open alerts whose metric recovered: resolved at ``now_ns`` by "recovery".
    resolve: Sequence[str] = ()
    # (alert id, severity, message) of open alerts whose breach reached a higher level.
    escalate: Sequence[tuple[str, str, str]] = ()
    # (app id, alert type) whose metric recovered after a manual resolution.
    rearm: Sequence[tuple[str, str]] = ()

    def __bool__(self) -> bool:
        return bool(self.fire or self.resolve or self.escalate or self.rearm)
