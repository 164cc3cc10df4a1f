"""The rows the store reads and writes, as plain frozen dataclasses (no protobuf, no SQL).

States are the types of :mod:`server.states`. A row read back from a database column arrives as a plain
string; ``__post_init__`` turns it into the member, so every backend hands the logic the same types.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
from collections.abc import Sequence
from typing import Any

from server.ids import new_id
from server.states import (
    AlertSeverity,
    AlertType,
    ChannelKind,
    DeliveryStatus,
    HealthStatus,
    NotificationEvent,
    OperationStatus,
    PayloadFormat,
    ResolvedBy,
)

# Each state's members by value: a dict lookup costs a tenth of calling the enum, and listings turn a few
# columns of every row into members.
_MEMBERS: dict[type[enum.StrEnum], dict[str, enum.StrEnum]] = {
    kind: {member.value: member for member in kind}
    for kind in (
        AlertSeverity,
        AlertType,
        ChannelKind,
        DeliveryStatus,
        HealthStatus,
        NotificationEvent,
        OperationStatus,
        PayloadFormat,
        ResolvedBy,
    )
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
    # The API key that resolved it by hand (None on recovery).
    resolved_by_key: str | None = None
    # The latest acknowledgement: when, by which key, its note ("" without one), until when (None: until resolved).
    acknowledged_ns: int | None = None
    acknowledged_by: str | None = None
    ack_note: str | None = None
    ack_until_ns: int | None = None
    # The silence that matched when it fired.
    silence_id: str | None = None
    # The end of the deploy hold it fired in (None: not held).
    held_until_ns: int | None = None
    # When its `fired` event was queued for the channels (None: held, silenced, or resolved before release).
    notified_ns: int | None = None

    def acknowledged_at(self, now_ns: int) -> bool:
        """Whether an acknowledgement is in effect at ``now_ns`` (set and not lapsed)."""
        return self.acknowledged_ns is not None and (self.ack_until_ns is None or now_ns < self.ack_until_ns)

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
class Silence:
    """A silence of a workspace: it matches alerts of ``app_id`` (None: every app) and of ``alert_types`` (empty:
    every type) that fire in [starts_ns, ends_ns)."""

    id: str
    workspace_id: str
    app_id: str | None
    alert_types: tuple[AlertType, ...]
    starts_ns: int
    ends_ns: int
    comment: str
    created_by: str
    created_ns: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "alert_types", tuple(AlertType(t) for t in self.alert_types))

    def matches(self, app_id: str, alert_type: AlertType) -> bool:
        return (self.app_id is None or self.app_id == app_id) and (
            not self.alert_types or alert_type in self.alert_types
        )


@dataclasses.dataclass(frozen=True)
class Channel:
    """A notification channel of a workspace. ``events`` is never empty (the API turns "all" into every event)."""

    id: str
    workspace_id: str
    name: str
    kind: ChannelKind
    url: str
    format: PayloadFormat
    secret: str
    events: tuple[NotificationEvent, ...]
    reminder_s: int
    created_ns: int

    def __post_init__(self) -> None:
        _coerce(self, kind=ChannelKind, format=PayloadFormat)
        object.__setattr__(self, "events", tuple(NotificationEvent(e) for e in self.events))


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One event on its way to one channel (a row of the outbox). ``id`` is the event's id, the idempotency key
    sent on every attempt; ``body`` is the payload as first sent (None before the first attempt), so that every
    retry carries the same bytes."""

    id: str
    channel_id: str
    workspace_id: str
    event: NotificationEvent
    alert_id: str | None
    created_ns: int
    status: DeliveryStatus
    attempts: int
    next_attempt_ns: int | None
    last_attempt_ns: int | None
    last_status_code: int | None
    last_error: str | None
    body: bytes | None

    def __post_init__(self) -> None:
        _coerce(self, event=NotificationEvent, status=DeliveryStatus)


def pending_delivery(
    channel_id: str,
    workspace_id: str,
    event: NotificationEvent,
    alert_id: str | None,
    now_ns: int,
    *,
    next_attempt_ns: int | None = None,
) -> Delivery:
    """A new event for one channel, due at ``next_attempt_ns`` (at once when None); its id, made now, is the
    idempotency key of every attempt."""
    due_ns = now_ns if next_attempt_ns is None else next_attempt_ns
    return Delivery(
        new_id("evt", now_ns),
        channel_id,
        workspace_id,
        event,
        alert_id,
        now_ns,
        DeliveryStatus.PENDING,
        0,
        due_ns,
        None,
        None,
        None,
        None,
    )


@dataclasses.dataclass(frozen=True)
class DueDelivery:
    """A pending delivery whose next attempt is due, with what sending it needs: its channel, and its alert (None
    for a test event, or when the alert was deleted with its app) with the alert's app name."""

    delivery: Delivery
    channel: Channel
    alert: Alert | None
    app_name: str


@dataclasses.dataclass(frozen=True)
class Attempt:
    """The outcome of one delivery attempt, recorded in the outbox: ``status`` PENDING with ``next_attempt_ns``
    (a retry), DELIVERED or FAILED (no next attempt). ``body`` is kept only by the first attempt."""

    at_ns: int
    status: DeliveryStatus
    next_attempt_ns: int | None
    status_code: int | None
    error: str | None
    body: bytes


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
    # Ids of open alerts no longer held for a deploy nor silenced: ``notified_ns`` set to ``now_ns`` (once).
    release: Sequence[str] = ()

    def __bool__(self) -> bool:
        return bool(self.fire or self.resolve or self.escalate or self.rearm or self.release)


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


# Records made from rows, kept per process by row (a row, its columns all plain values, fixes its record, and
# records are frozen): a listing read again costs a lookup per row rather than a record, and its records are the
# same objects as the last time, which keeps the caches of the messages built from them cheap to ask.
MEMO_ROWS = 4096


@functools.lru_cache(maxsize=MEMO_ROWS)
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


@functools.lru_cache(maxsize=MEMO_ROWS)
def health_reads_from_row(row: tuple[Any, ...]) -> AppHealthReads:
    """The row of a store's app_health_reads query: App's 7 columns, HealthSnapshot's 9 (all NULL without one, the
    reasons a JSON array), then when the last successful deploy started."""
    snapshot = None
    if row[7] is not None:
        snapshot = HealthSnapshot(*row[7:15], reasons=tuple(json.loads(row[15])))
    return AppHealthReads(App(*row[:7]), snapshot, row[16])
