"""The rows the store reads and writes, as plain frozen dataclasses (no protobuf, no SQL).

States are the types of :mod:`server.states`. A row read back from a database column arrives as a plain
string; ``__post_init__`` turns it into the member, so every backend hands the logic the same types.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

from server.states import AlertSeverity, AlertType, HealthStatus, OperationStatus, ResolvedBy

# Each state's members by value: a dict lookup costs a tenth of calling the enum, and listings turn a few
# columns of every row into members.
_MEMBERS: dict[type[enum.StrEnum], dict[str, enum.StrEnum]] = {
    kind: {member.value: member for member in kind}
    for kind in (AlertSeverity, AlertType, HealthStatus, OperationStatus, ResolvedBy)
}


def _coerce(record: Any, **types: type[enum.StrEnum]) -> None:
    for name, kind in types.items():
        value = getattr(record, name)
        if value is not None and type(value) is not kind:
            member = _MEMBERS[kind].get(value)
            object.__setattr__(record, name, kind(value) if member is None else member)  # kind(): its ValueError


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
    """A deploy or a build."""

    id: str
    app_id: str
    workspace_id: str
    status: OperationStatus
    started_ns: int
    finished_ns: int | None

    def __post_init__(self) -> None:
        _coerce(self, status=OperationStatus)


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
    """One app's judgement at one evaluator tick."""

    app_id: str
    workspace_id: str
    checked_ns: int
    status: HealthStatus
    up_since_ns: int | None
    instance_count: int | None
    error_rate: float | None
    avg_latency_ms: float | None
    reasons: tuple[str, ...]

    def __post_init__(self) -> None:
        _coerce(self, status=HealthStatus)


@dataclasses.dataclass(frozen=True)
class Alert:
    """A fired alert, open until ``resolved_ns`` is set."""

    id: str
    workspace_id: str
    app_id: str
    type: AlertType
    severity: AlertSeverity
    message: str
    triggered_ns: int
    resolved_ns: int | None
    resolved_by: ResolvedBy | None
    # Set once the metric was seen recovered after a manual resolution (see docs/alerts-and-overview.md).
    rearmed_ns: int | None = None

    def __post_init__(self) -> None:
        _coerce(self, type=AlertType, severity=AlertSeverity, resolved_by=ResolvedBy)


@dataclasses.dataclass(frozen=True)
class AlertRule:
    """A threshold override. ``app_id`` is None for a workspace-wide rule."""

    id: str
    workspace_id: str
    app_id: str | None
    type: AlertType
    warning_threshold: float
    critical_threshold: float
    recovery_threshold: float
    hold_seconds: int
    created_ns: int
    updated_ns: int

    def __post_init__(self) -> None:
        _coerce(self, type=AlertType)


@dataclasses.dataclass(frozen=True)
class AlertChanges:
    """What one tick of the rules engine decided, applied in one transaction (see server/alerts/engine.py)."""

    now_ns: int
    fire: Sequence[Alert] = ()
    # Ids of open alerts whose metric recovered: resolved at ``now_ns`` by "recovery".
    resolve: Sequence[str] = ()
    # (alert id, severity, message) of open alerts whose breach reached a higher level.
    escalate: Sequence[tuple[str, AlertSeverity, str]] = ()
    # (app id, alert type) whose metric recovered after a manual resolution.
    rearm: Sequence[tuple[str, AlertType]] = ()

    def __bool__(self) -> bool:
        return bool(self.fire or self.resolve or self.escalate or self.rearm)


@dataclasses.dataclass(frozen=True)
class Lease:
    """Who holds the lease ``name`` until ``expires_ns``, read on the store's clock (so that replicas on
    different machines agree). ``epoch`` grows by one whenever another holder takes the lease; a renewal
    keeps it."""

    name: str
    holder: str
    epoch: int
    expires_ns: int


@dataclasses.dataclass(frozen=True)
class Fence:
    """The lease a write is made under: the store refuses the write unless ``holder`` and ``epoch`` are
    still the lease's (see :class:`server.store.base.LeaseLost`)."""

    name: str
    holder: str
    epoch: int


@dataclasses.dataclass(frozen=True)
class AppHealthReads:
    """What GetAppHealth reads of one app, in one query: the app, its newest snapshot (None before the first
    tick) and when its last successful deploy started (None: none yet)."""

    app: App
    snapshot: HealthSnapshot | None
    last_deploy_started_ns: int | None


# The columns of an alert row in the order alert_from_row takes them (the stores select them in this order).
ALERT_COLUMNS = tuple(field.name for field in dataclasses.fields(Alert))
_ALERT_TYPES = _MEMBERS[AlertType]
_ALERT_SEVERITIES = _MEMBERS[AlertSeverity]
_RESOLVED_BY: dict[str | None, enum.StrEnum | None] = {None: None, **_MEMBERS[ResolvedBy]}


def alert_from_row(row: Sequence[Any]) -> Alert:
    """The Alert of a store row whose first columns are ``ALERT_COLUMNS``, in that order (any after them, an app's
    name say, are the caller's).

    Without ``__init__``: a frozen dataclass sets each of ten fields through ``object.__setattr__``, which costs
    about four times this, and ListAlerts builds up to 500 records a call. The store wrote the row from an Alert,
    so its states are members' values; one that is not (written by hand) raises KeyError.
    """
    alert = object.__new__(Alert)
    fields = alert.__dict__
    fields.update(zip(ALERT_COLUMNS, row, strict=False))
    fields["type"] = _ALERT_TYPES[fields["type"]]
    fields["severity"] = _ALERT_SEVERITIES[fields["severity"]]
    fields["resolved_by"] = _RESOLVED_BY[fields["resolved_by"]]
    return alert


@dataclasses.dataclass(frozen=True)
class HealthTransition:
    """An evaluation whose status differs from the app's evaluation before it (``previous`` None: there is none)."""

    at_ns: int
    status: HealthStatus
    previous: HealthStatus | None
    reasons: tuple[str, ...]

    def __post_init__(self) -> None:
        _coerce(self, status=HealthStatus, previous=HealthStatus)


@dataclasses.dataclass(frozen=True)
class HealthTransitions:
    """An app's transitions in a window, newest first (at most the limit asked for), and the status of its last
    evaluation before the window (None: none is kept)."""

    status_at_start: HealthStatus | None
    transitions: Sequence[HealthTransition]

    def __post_init__(self) -> None:
        _coerce(self, status_at_start=HealthStatus)
