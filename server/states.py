"""The domain's states as types. Each value is the documented JSON string of the proto enum of the same name.

The store keeps these strings in its columns and the logic compares members, never bare strings, so a typo
is an ``AttributeError`` at import, not a state nobody handles. ``tests/server/test_states.py`` checks that
every member matches the proto's ``(json_value)`` and that no proto value is missing here.
"""

from __future__ import annotations

import enum


class HealthStatus(enum.StrEnum):
    """An app's health (``HealthStatus`` in monitoring.proto)."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class AlertType(enum.StrEnum):
    """What an alert watches (``AlertType``)."""

    HIGH_CPU = "high_cpu"
    HIGH_MEMORY = "high_memory"
    HIGH_ERROR_RATE = "high_error_rate"
    HIGH_LATENCY = "high_latency"


class AlertSeverity(enum.StrEnum):
    """How bad a firing alert is (``AlertSeverity``)."""

    WARNING = "warning"
    CRITICAL = "critical"


class OperationStatus(enum.StrEnum):
    """The status of a deploy or a build (``OperationStatus``)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class OperationKind(enum.StrEnum):
    """Which table an operation lives in (``ActivityType`` deploy/build in the overview)."""

    DEPLOY = "deploy"
    BUILD = "build"


class ResolvedBy(enum.StrEnum):
    """Who resolved an alert: the rules engine on recovery, or a person (``AlertResolution``)."""

    RECOVERY = "recovery"
    MANUAL = "manual"


class SilenceState(enum.StrEnum):
    """Where a silence stands in time (``SilenceState``): derived from its window and the clock, never stored."""

    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


class ChannelKind(enum.StrEnum):
    """What a notification channel is (``ChannelKind``)."""

    WEBHOOK = "webhook"
    ALERTMANAGER = "alertmanager"


class PayloadFormat(enum.StrEnum):
    """The body of a webhook's POSTs (``PayloadFormat``)."""

    SERVICE = "service"
    SLACK = "slack"
    ALERTMANAGER = "alertmanager"


class NotificationEvent(enum.StrEnum):
    """What a notification tells (``NotificationEvent``)."""

    FIRED = "fired"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REMINDER = "reminder"
    TEST = "test"


class DeliveryStatus(enum.StrEnum):
    """What became of one event's delivery to one channel (``DeliveryStatus``)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
