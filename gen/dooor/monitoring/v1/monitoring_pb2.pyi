import datetime

from dooor.monitoring.v1 import json_pb2 as _json_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Period(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERIOD_UNSPECIFIED: _ClassVar[Period]
    PERIOD_1H: _ClassVar[Period]
    PERIOD_6H: _ClassVar[Period]
    PERIOD_24H: _ClassVar[Period]
    PERIOD_7D: _ClassVar[Period]
    PERIOD_30D: _ClassVar[Period]

class HealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_STATUS_UNSPECIFIED: _ClassVar[HealthStatus]
    HEALTH_STATUS_HEALTHY: _ClassVar[HealthStatus]
    HEALTH_STATUS_DEGRADED: _ClassVar[HealthStatus]
    HEALTH_STATUS_UNHEALTHY: _ClassVar[HealthStatus]
    HEALTH_STATUS_UNKNOWN: _ClassVar[HealthStatus]

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_DEBUG: _ClassVar[Severity]
    SEVERITY_INFO: _ClassVar[Severity]
    SEVERITY_WARNING: _ClassVar[Severity]
    SEVERITY_ERROR: _ClassVar[Severity]
    SEVERITY_CRITICAL: _ClassVar[Severity]

class LogDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_DIRECTION_UNSPECIFIED: _ClassVar[LogDirection]
    LOG_DIRECTION_NEWEST_FIRST: _ClassVar[LogDirection]
    LOG_DIRECTION_OLDEST_FIRST: _ClassVar[LogDirection]

class ActivityType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTIVITY_TYPE_UNSPECIFIED: _ClassVar[ActivityType]
    ACTIVITY_TYPE_DEPLOY: _ClassVar[ActivityType]
    ACTIVITY_TYPE_BUILD: _ClassVar[ActivityType]
    ACTIVITY_TYPE_ALERT: _ClassVar[ActivityType]

class OperationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_STATUS_UNSPECIFIED: _ClassVar[OperationStatus]
    OPERATION_STATUS_QUEUED: _ClassVar[OperationStatus]
    OPERATION_STATUS_RUNNING: _ClassVar[OperationStatus]
    OPERATION_STATUS_SUCCEEDED: _ClassVar[OperationStatus]
    OPERATION_STATUS_FAILED: _ClassVar[OperationStatus]
    OPERATION_STATUS_CANCELED: _ClassVar[OperationStatus]

class AlertType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_TYPE_UNSPECIFIED: _ClassVar[AlertType]
    ALERT_TYPE_HIGH_CPU: _ClassVar[AlertType]
    ALERT_TYPE_HIGH_MEMORY: _ClassVar[AlertType]
    ALERT_TYPE_HIGH_ERROR_RATE: _ClassVar[AlertType]
    ALERT_TYPE_HIGH_LATENCY: _ClassVar[AlertType]

class AlertSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_SEVERITY_UNSPECIFIED: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_WARNING: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_CRITICAL: _ClassVar[AlertSeverity]

class AlertResolution(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_RESOLUTION_UNSPECIFIED: _ClassVar[AlertResolution]
    ALERT_RESOLUTION_RECOVERY: _ClassVar[AlertResolution]
    ALERT_RESOLUTION_MANUAL: _ClassVar[AlertResolution]

class SilenceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SILENCE_STATE_UNSPECIFIED: _ClassVar[SilenceState]
    SILENCE_STATE_PENDING: _ClassVar[SilenceState]
    SILENCE_STATE_ACTIVE: _ClassVar[SilenceState]
    SILENCE_STATE_EXPIRED: _ClassVar[SilenceState]

class ChannelKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_KIND_UNSPECIFIED: _ClassVar[ChannelKind]
    CHANNEL_KIND_WEBHOOK: _ClassVar[ChannelKind]
    CHANNEL_KIND_ALERTMANAGER: _ClassVar[ChannelKind]

class PayloadFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYLOAD_FORMAT_UNSPECIFIED: _ClassVar[PayloadFormat]
    PAYLOAD_FORMAT_SERVICE: _ClassVar[PayloadFormat]
    PAYLOAD_FORMAT_SLACK: _ClassVar[PayloadFormat]
    PAYLOAD_FORMAT_ALERTMANAGER: _ClassVar[PayloadFormat]

class NotificationEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTIFICATION_EVENT_UNSPECIFIED: _ClassVar[NotificationEvent]
    NOTIFICATION_EVENT_FIRED: _ClassVar[NotificationEvent]
    NOTIFICATION_EVENT_ACKNOWLEDGED: _ClassVar[NotificationEvent]
    NOTIFICATION_EVENT_RESOLVED: _ClassVar[NotificationEvent]
    NOTIFICATION_EVENT_REMINDER: _ClassVar[NotificationEvent]
    NOTIFICATION_EVENT_TEST: _ClassVar[NotificationEvent]

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_PENDING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_DELIVERED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_FAILED: _ClassVar[DeliveryStatus]
PERIOD_UNSPECIFIED: Period
PERIOD_1H: Period
PERIOD_6H: Period
PERIOD_24H: Period
PERIOD_7D: Period
PERIOD_30D: Period
HEALTH_STATUS_UNSPECIFIED: HealthStatus
HEALTH_STATUS_HEALTHY: HealthStatus
HEALTH_STATUS_DEGRADED: HealthStatus
HEALTH_STATUS_UNHEALTHY: HealthStatus
HEALTH_STATUS_UNKNOWN: HealthStatus
SEVERITY_UNSPECIFIED: Severity
SEVERITY_DEBUG: Severity
SEVERITY_INFO: Severity
SEVERITY_WARNING: Severity
SEVERITY_ERROR: Severity
SEVERITY_CRITICAL: Severity
LOG_DIRECTION_UNSPECIFIED: LogDirection
LOG_DIRECTION_NEWEST_FIRST: LogDirection
LOG_DIRECTION_OLDEST_FIRST: LogDirection
ACTIVITY_TYPE_UNSPECIFIED: ActivityType
ACTIVITY_TYPE_DEPLOY: ActivityType
ACTIVITY_TYPE_BUILD: ActivityType
ACTIVITY_TYPE_ALERT: ActivityType
OPERATION_STATUS_UNSPECIFIED: OperationStatus
OPERATION_STATUS_QUEUED: OperationStatus
OPERATION_STATUS_RUNNING: OperationStatus
OPERATION_STATUS_SUCCEEDED: OperationStatus
OPERATION_STATUS_FAILED: OperationStatus
OPERATION_STATUS_CANCELED: OperationStatus
ALERT_TYPE_UNSPECIFIED: AlertType
ALERT_TYPE_HIGH_CPU: AlertType
ALERT_TYPE_HIGH_MEMORY: AlertType
ALERT_TYPE_HIGH_ERROR_RATE: AlertType
ALERT_TYPE_HIGH_LATENCY: AlertType
ALERT_SEVERITY_UNSPECIFIED: AlertSeverity
ALERT_SEVERITY_WARNING: AlertSeverity
ALERT_SEVERITY_CRITICAL: AlertSeverity
ALERT_RESOLUTION_UNSPECIFIED: AlertResolution
ALERT_RESOLUTION_RECOVERY: AlertResolution
ALERT_RESOLUTION_MANUAL: AlertResolution
SILENCE_STATE_UNSPECIFIED: SilenceState
SILENCE_STATE_PENDING: SilenceState
SILENCE_STATE_ACTIVE: SilenceState
SILENCE_STATE_EXPIRED: SilenceState
CHANNEL_KIND_UNSPECIFIED: ChannelKind
CHANNEL_KIND_WEBHOOK: ChannelKind
CHANNEL_KIND_ALERTMANAGER: ChannelKind
PAYLOAD_FORMAT_UNSPECIFIED: PayloadFormat
PAYLOAD_FORMAT_SERVICE: PayloadFormat
PAYLOAD_FORMAT_SLACK: PayloadFormat
PAYLOAD_FORMAT_ALERTMANAGER: PayloadFormat
NOTIFICATION_EVENT_UNSPECIFIED: NotificationEvent
NOTIFICATION_EVENT_FIRED: NotificationEvent
NOTIFICATION_EVENT_ACKNOWLEDGED: NotificationEvent
NOTIFICATION_EVENT_RESOLVED: NotificationEvent
NOTIFICATION_EVENT_REMINDER: NotificationEvent
NOTIFICATION_EVENT_TEST: NotificationEvent
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
DELIVERY_STATUS_PENDING: DeliveryStatus
DELIVERY_STATUS_DELIVERED: DeliveryStatus
DELIVERY_STATUS_FAILED: DeliveryStatus

class GetAppMetricsRequest(_message.Message):
    __slots__ = ("workspace_id", "app_id", "period", "include", "start_time", "end_time", "step")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    app_id: str
    period: Period
    include: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    step: str
    def __init__(self, workspace_id: _Optional[str] = ..., app_id: _Optional[str] = ..., period: _Optional[_Union[Period, str]] = ..., include: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., step: _Optional[str] = ...) -> None: ...

class GetAppMetricsResponse(_message.Message):
    __slots__ = ("app_id", "service_name", "period", "cpu", "memory", "request_count", "request_latency", "error_rate", "instance_count", "start_time", "end_time", "step", "latency_p50", "latency_p95", "latency_p99", "requests_2xx", "requests_3xx", "requests_4xx", "requests_5xx", "deploys")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_COUNT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_LATENCY_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_2XX_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_3XX_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_4XX_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_5XX_FIELD_NUMBER: _ClassVar[int]
    DEPLOYS_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    service_name: str
    period: Period
    cpu: MetricSeries
    memory: MetricSeries
    request_count: MetricSeries
    request_latency: MetricSeries
    error_rate: MetricSeries
    instance_count: MetricSeries
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    step: str
    latency_p50: MetricSeries
    latency_p95: MetricSeries
    latency_p99: MetricSeries
    requests_2xx: MetricSeries
    requests_3xx: MetricSeries
    requests_4xx: MetricSeries
    requests_5xx: MetricSeries
    deploys: DeployMarkers
    def __init__(self, app_id: _Optional[str] = ..., service_name: _Optional[str] = ..., period: _Optional[_Union[Period, str]] = ..., cpu: _Optional[_Union[MetricSeries, _Mapping]] = ..., memory: _Optional[_Union[MetricSeries, _Mapping]] = ..., request_count: _Optional[_Union[MetricSeries, _Mapping]] = ..., request_latency: _Optional[_Union[MetricSeries, _Mapping]] = ..., error_rate: _Optional[_Union[MetricSeries, _Mapping]] = ..., instance_count: _Optional[_Union[MetricSeries, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., step: _Optional[str] = ..., latency_p50: _Optional[_Union[MetricSeries, _Mapping]] = ..., latency_p95: _Optional[_Union[MetricSeries, _Mapping]] = ..., latency_p99: _Optional[_Union[MetricSeries, _Mapping]] = ..., requests_2xx: _Optional[_Union[MetricSeries, _Mapping]] = ..., requests_3xx: _Optional[_Union[MetricSeries, _Mapping]] = ..., requests_4xx: _Optional[_Union[MetricSeries, _Mapping]] = ..., requests_5xx: _Optional[_Union[MetricSeries, _Mapping]] = ..., deploys: _Optional[_Union[DeployMarkers, _Mapping]] = ...) -> None: ...

class DeployMarkers(_message.Message):
    __slots__ = ("markers", "truncated")
    MARKERS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    markers: _containers.RepeatedCompositeFieldContainer[DeployMarker]
    truncated: bool
    def __init__(self, markers: _Optional[_Iterable[_Union[DeployMarker, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class DeployMarker(_message.Message):
    __slots__ = ("id", "started_at", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    started_at: _timestamp_pb2.Timestamp
    status: OperationStatus
    def __init__(self, id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[OperationStatus, str]] = ...) -> None: ...

class MetricSeries(_message.Message):
    __slots__ = ("labels", "values", "unit", "current", "avg", "max")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    AVG_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    values: _containers.RepeatedScalarFieldContainer[float]
    unit: str
    current: float
    avg: float
    max: float
    def __init__(self, labels: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., values: _Optional[_Iterable[float]] = ..., unit: _Optional[str] = ..., current: _Optional[float] = ..., avg: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class GetAppHealthRequest(_message.Message):
    __slots__ = ("workspace_id", "app_id")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    app_id: str
    def __init__(self, workspace_id: _Optional[str] = ..., app_id: _Optional[str] = ...) -> None: ...

class GetAppHealthResponse(_message.Message):
    __slots__ = ("app_id", "status", "uptime", "last_deployed_at", "instance_count", "error_rate", "avg_latency_ms", "last_checked_at", "reasons")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    LAST_DEPLOYED_AT_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    AVG_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECKED_AT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    status: HealthStatus
    uptime: int
    last_deployed_at: _timestamp_pb2.Timestamp
    instance_count: int
    error_rate: float
    avg_latency_ms: float
    last_checked_at: _timestamp_pb2.Timestamp
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, app_id: _Optional[str] = ..., status: _Optional[_Union[HealthStatus, str]] = ..., uptime: _Optional[int] = ..., last_deployed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., instance_count: _Optional[int] = ..., error_rate: _Optional[float] = ..., avg_latency_ms: _Optional[float] = ..., last_checked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class GetAppHealthHistoryRequest(_message.Message):
    __slots__ = ("workspace_id", "app_id", "start_time", "end_time", "limit")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    app_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    limit: int
    def __init__(self, workspace_id: _Optional[str] = ..., app_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class GetAppHealthHistoryResponse(_message.Message):
    __slots__ = ("app_id", "start_time", "end_time", "status_at_start", "transitions", "truncated", "uptime")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_AT_START_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    status_at_start: HealthStatus
    transitions: _containers.RepeatedCompositeFieldContainer[HealthTransition]
    truncated: bool
    uptime: _containers.RepeatedCompositeFieldContainer[UptimeWindow]
    def __init__(self, app_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_at_start: _Optional[_Union[HealthStatus, str]] = ..., transitions: _Optional[_Iterable[_Union[HealthTransition, _Mapping]]] = ..., truncated: _Optional[bool] = ..., uptime: _Optional[_Iterable[_Union[UptimeWindow, _Mapping]]] = ...) -> None: ...

class HealthTransition(_message.Message):
    __slots__ = ("at", "status", "previous_status", "reasons")
    AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    status: HealthStatus
    previous_status: HealthStatus
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[HealthStatus, str]] = ..., previous_status: _Optional[_Union[HealthStatus, str]] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class UptimeWindow(_message.Message):
    __slots__ = ("period", "uptime_percent", "evaluations", "healthy", "degraded", "unhealthy", "unknown")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    UPTIME_PERCENT_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    UNHEALTHY_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    period: Period
    uptime_percent: float
    evaluations: int
    healthy: int
    degraded: int
    unhealthy: int
    unknown: int
    def __init__(self, period: _Optional[_Union[Period, str]] = ..., uptime_percent: _Optional[float] = ..., evaluations: _Optional[int] = ..., healthy: _Optional[int] = ..., degraded: _Optional[int] = ..., unhealthy: _Optional[int] = ..., unknown: _Optional[int] = ...) -> None: ...

class ListAppLogsRequest(_message.Message):
    __slots__ = ("workspace_id", "app_id", "limit", "severity", "page_token", "start_time", "end_time", "q", "regex", "min_severity", "direction")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    Q_FIELD_NUMBER: _ClassVar[int]
    REGEX_FIELD_NUMBER: _ClassVar[int]
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    app_id: str
    limit: int
    severity: Severity
    page_token: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    q: str
    regex: str
    min_severity: Severity
    direction: LogDirection
    def __init__(self, workspace_id: _Optional[str] = ..., app_id: _Optional[str] = ..., limit: _Optional[int] = ..., severity: _Optional[_Union[Severity, str]] = ..., page_token: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., q: _Optional[str] = ..., regex: _Optional[str] = ..., min_severity: _Optional[_Union[Severity, str]] = ..., direction: _Optional[_Union[LogDirection, str]] = ...) -> None: ...

class ListAppLogsResponse(_message.Message):
    __slots__ = ("logs", "next_page_token")
    LOGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    logs: _containers.RepeatedCompositeFieldContainer[LogEntry]
    next_page_token: str
    def __init__(self, logs: _Optional[_Iterable[_Union[LogEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("timestamp", "severity", "message")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    severity: Severity
    message: str
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., severity: _Optional[_Union[Severity, str]] = ..., message: _Optional[str] = ...) -> None: ...

class StreamAppLogsRequest(_message.Message):
    __slots__ = ("workspace_id", "app_id", "severity", "cursor", "q", "regex", "min_severity", "backfill", "start_time")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    Q_FIELD_NUMBER: _ClassVar[int]
    REGEX_FIELD_NUMBER: _ClassVar[int]
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    app_id: str
    severity: Severity
    cursor: str
    q: str
    regex: str
    min_severity: Severity
    backfill: int
    start_time: _timestamp_pb2.Timestamp
    def __init__(self, workspace_id: _Optional[str] = ..., app_id: _Optional[str] = ..., severity: _Optional[_Union[Severity, str]] = ..., cursor: _Optional[str] = ..., q: _Optional[str] = ..., regex: _Optional[str] = ..., min_severity: _Optional[_Union[Severity, str]] = ..., backfill: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StreamAppLogsResponse(_message.Message):
    __slots__ = ("entry", "gap", "end", "cursor")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    entry: LogEntry
    gap: StreamGap
    end: StreamEnd
    cursor: str
    def __init__(self, entry: _Optional[_Union[LogEntry, _Mapping]] = ..., gap: _Optional[_Union[StreamGap, _Mapping]] = ..., end: _Optional[_Union[StreamEnd, _Mapping]] = ..., cursor: _Optional[str] = ...) -> None: ...

class StreamGap(_message.Message):
    __slots__ = ("dropped_entries", "reason")
    DROPPED_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    dropped_entries: int
    reason: str
    def __init__(self, dropped_entries: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class StreamEnd(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class GetWorkspaceOverviewRequest(_message.Message):
    __slots__ = ("workspace_id",)
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    def __init__(self, workspace_id: _Optional[str] = ...) -> None: ...

class GetWorkspaceOverviewResponse(_message.Message):
    __slots__ = ("total_apps", "active_apps", "total_deploys", "deploys_today", "failed_builds_today", "estimated_monthly_cost", "app_health_summary", "recent_activity")
    TOTAL_APPS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_APPS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DEPLOYS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYS_TODAY_FIELD_NUMBER: _ClassVar[int]
    FAILED_BUILDS_TODAY_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_MONTHLY_COST_FIELD_NUMBER: _ClassVar[int]
    APP_HEALTH_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RECENT_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    total_apps: int
    active_apps: int
    total_deploys: int
    deploys_today: int
    failed_builds_today: int
    estimated_monthly_cost: float
    app_health_summary: AppHealthSummary
    recent_activity: _containers.RepeatedCompositeFieldContainer[ActivityItem]
    def __init__(self, total_apps: _Optional[int] = ..., active_apps: _Optional[int] = ..., total_deploys: _Optional[int] = ..., deploys_today: _Optional[int] = ..., failed_builds_today: _Optional[int] = ..., estimated_monthly_cost: _Optional[float] = ..., app_health_summary: _Optional[_Union[AppHealthSummary, _Mapping]] = ..., recent_activity: _Optional[_Iterable[_Union[ActivityItem, _Mapping]]] = ...) -> None: ...

class AppHealthSummary(_message.Message):
    __slots__ = ("healthy", "degraded", "unhealthy", "unknown")
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    UNHEALTHY_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    healthy: int
    degraded: int
    unhealthy: int
    unknown: int
    def __init__(self, healthy: _Optional[int] = ..., degraded: _Optional[int] = ..., unhealthy: _Optional[int] = ..., unknown: _Optional[int] = ...) -> None: ...

class ActivityItem(_message.Message):
    __slots__ = ("type", "app_name", "status", "message", "timestamp")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    type: ActivityType
    app_name: str
    status: OperationStatus
    message: str
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[_Union[ActivityType, str]] = ..., app_name: _Optional[str] = ..., status: _Optional[_Union[OperationStatus, str]] = ..., message: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListWorkspaceAppsRequest(_message.Message):
    __slots__ = ("workspace_id",)
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    def __init__(self, workspace_id: _Optional[str] = ...) -> None: ...

class ListWorkspaceAppsResponse(_message.Message):
    __slots__ = ("apps",)
    APPS_FIELD_NUMBER: _ClassVar[int]
    apps: _containers.RepeatedCompositeFieldContainer[AppSummary]
    def __init__(self, apps: _Optional[_Iterable[_Union[AppSummary, _Mapping]]] = ...) -> None: ...

class AppSummary(_message.Message):
    __slots__ = ("id", "name", "service_name", "status", "last_checked_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECKED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    service_name: str
    status: HealthStatus
    last_checked_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., service_name: _Optional[str] = ..., status: _Optional[_Union[HealthStatus, str]] = ..., last_checked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAlertsRequest(_message.Message):
    __slots__ = ("workspace_id", "app_id", "resolved", "limit")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    app_id: str
    resolved: bool
    limit: int
    def __init__(self, workspace_id: _Optional[str] = ..., app_id: _Optional[str] = ..., resolved: _Optional[bool] = ..., limit: _Optional[int] = ...) -> None: ...

class ListAlertsResponse(_message.Message):
    __slots__ = ("alerts",)
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    def __init__(self, alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ...) -> None: ...

class ResolveAlertRequest(_message.Message):
    __slots__ = ("workspace_id", "alert_id")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    alert_id: str
    def __init__(self, workspace_id: _Optional[str] = ..., alert_id: _Optional[str] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("id", "app_id", "app_name", "type", "severity", "message", "triggered_at", "resolved_at", "resolved", "resolved_by", "resolved_by_key_id", "acknowledged", "acknowledged_at", "acknowledged_by_key_id", "acknowledgement_note", "acknowledged_until", "silence_id", "held_for_deploy", "held_until", "notified_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_BY_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGEMENT_NOTE_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    SILENCE_ID_FIELD_NUMBER: _ClassVar[int]
    HELD_FOR_DEPLOY_FIELD_NUMBER: _ClassVar[int]
    HELD_UNTIL_FIELD_NUMBER: _ClassVar[int]
    NOTIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    app_id: str
    app_name: str
    type: AlertType
    severity: AlertSeverity
    message: str
    triggered_at: _timestamp_pb2.Timestamp
    resolved_at: _timestamp_pb2.Timestamp
    resolved: bool
    resolved_by: AlertResolution
    resolved_by_key_id: str
    acknowledged: bool
    acknowledged_at: _timestamp_pb2.Timestamp
    acknowledged_by_key_id: str
    acknowledgement_note: str
    acknowledged_until: _timestamp_pb2.Timestamp
    silence_id: str
    held_for_deploy: bool
    held_until: _timestamp_pb2.Timestamp
    notified_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., app_id: _Optional[str] = ..., app_name: _Optional[str] = ..., type: _Optional[_Union[AlertType, str]] = ..., severity: _Optional[_Union[AlertSeverity, str]] = ..., message: _Optional[str] = ..., triggered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved: _Optional[bool] = ..., resolved_by: _Optional[_Union[AlertResolution, str]] = ..., resolved_by_key_id: _Optional[str] = ..., acknowledged: _Optional[bool] = ..., acknowledged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_by_key_id: _Optional[str] = ..., acknowledgement_note: _Optional[str] = ..., acknowledged_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., silence_id: _Optional[str] = ..., held_for_deploy: _Optional[bool] = ..., held_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., notified_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AcknowledgeAlertRequest(_message.Message):
    __slots__ = ("workspace_id", "alert_id", "note", "until")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    alert_id: str
    note: str
    until: _timestamp_pb2.Timestamp
    def __init__(self, workspace_id: _Optional[str] = ..., alert_id: _Optional[str] = ..., note: _Optional[str] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Silence(_message.Message):
    __slots__ = ("id", "app_id", "alert_types", "starts_at", "ends_at", "comment", "created_by_key_id", "created_at", "state")
    ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    ALERT_TYPES_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    id: str
    app_id: str
    alert_types: _containers.RepeatedScalarFieldContainer[AlertType]
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    comment: str
    created_by_key_id: str
    created_at: _timestamp_pb2.Timestamp
    state: SilenceState
    def __init__(self, id: _Optional[str] = ..., app_id: _Optional[str] = ..., alert_types: _Optional[_Iterable[_Union[AlertType, str]]] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., comment: _Optional[str] = ..., created_by_key_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[SilenceState, str]] = ...) -> None: ...

class CreateSilenceRequest(_message.Message):
    __slots__ = ("workspace_id", "silence")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    SILENCE_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    silence: Silence
    def __init__(self, workspace_id: _Optional[str] = ..., silence: _Optional[_Union[Silence, _Mapping]] = ...) -> None: ...

class ListSilencesRequest(_message.Message):
    __slots__ = ("workspace_id", "state", "limit")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    state: SilenceState
    limit: int
    def __init__(self, workspace_id: _Optional[str] = ..., state: _Optional[_Union[SilenceState, str]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListSilencesResponse(_message.Message):
    __slots__ = ("silences",)
    SILENCES_FIELD_NUMBER: _ClassVar[int]
    silences: _containers.RepeatedCompositeFieldContainer[Silence]
    def __init__(self, silences: _Optional[_Iterable[_Union[Silence, _Mapping]]] = ...) -> None: ...

class GetSilenceRequest(_message.Message):
    __slots__ = ("workspace_id", "silence_id")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    SILENCE_ID_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    silence_id: str
    def __init__(self, workspace_id: _Optional[str] = ..., silence_id: _Optional[str] = ...) -> None: ...

class UpdateSilenceRequest(_message.Message):
    __slots__ = ("workspace_id", "silence_id", "silence")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    SILENCE_ID_FIELD_NUMBER: _ClassVar[int]
    SILENCE_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    silence_id: str
    silence: Silence
    def __init__(self, workspace_id: _Optional[str] = ..., silence_id: _Optional[str] = ..., silence: _Optional[_Union[Silence, _Mapping]] = ...) -> None: ...

class ExpireSilenceRequest(_message.Message):
    __slots__ = ("workspace_id", "silence_id")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    SILENCE_ID_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    silence_id: str
    def __init__(self, workspace_id: _Optional[str] = ..., silence_id: _Optional[str] = ...) -> None: ...

class NotificationChannel(_message.Message):
    __slots__ = ("id", "name", "kind", "url", "format", "events", "reminder_interval_seconds", "signing_secret", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    REMINDER_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    kind: ChannelKind
    url: str
    format: PayloadFormat
    events: _containers.RepeatedScalarFieldContainer[NotificationEvent]
    reminder_interval_seconds: int
    signing_secret: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[ChannelKind, str]] = ..., url: _Optional[str] = ..., format: _Optional[_Union[PayloadFormat, str]] = ..., events: _Optional[_Iterable[_Union[NotificationEvent, str]]] = ..., reminder_interval_seconds: _Optional[int] = ..., signing_secret: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateNotificationChannelRequest(_message.Message):
    __slots__ = ("workspace_id", "channel")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    channel: NotificationChannel
    def __init__(self, workspace_id: _Optional[str] = ..., channel: _Optional[_Union[NotificationChannel, _Mapping]] = ...) -> None: ...

class ListNotificationChannelsRequest(_message.Message):
    __slots__ = ("workspace_id",)
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    def __init__(self, workspace_id: _Optional[str] = ...) -> None: ...

class ListNotificationChannelsResponse(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[NotificationChannel]
    def __init__(self, channels: _Optional[_Iterable[_Union[NotificationChannel, _Mapping]]] = ...) -> None: ...

class GetNotificationChannelRequest(_message.Message):
    __slots__ = ("workspace_id", "channel_id")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    channel_id: str
    def __init__(self, workspace_id: _Optional[str] = ..., channel_id: _Optional[str] = ...) -> None: ...

class UpdateNotificationChannelRequest(_message.Message):
    __slots__ = ("workspace_id", "channel_id", "channel")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    channel_id: str
    channel: NotificationChannel
    def __init__(self, workspace_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., channel: _Optional[_Union[NotificationChannel, _Mapping]] = ...) -> None: ...

class DeleteNotificationChannelRequest(_message.Message):
    __slots__ = ("workspace_id", "channel_id")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    channel_id: str
    def __init__(self, workspace_id: _Optional[str] = ..., channel_id: _Optional[str] = ...) -> None: ...

class DeleteNotificationChannelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TestNotificationChannelRequest(_message.Message):
    __slots__ = ("workspace_id", "channel_id")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    channel_id: str
    def __init__(self, workspace_id: _Optional[str] = ..., channel_id: _Optional[str] = ...) -> None: ...

class ListDeliveriesRequest(_message.Message):
    __slots__ = ("workspace_id", "channel_id", "status", "limit")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    channel_id: str
    status: DeliveryStatus
    limit: int
    def __init__(self, workspace_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListDeliveriesResponse(_message.Message):
    __slots__ = ("deliveries",)
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("id", "channel_id", "event", "alert_id", "created_at", "status", "attempts", "last_attempt_at", "next_attempt_at", "last_status_code", "last_error")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    channel_id: str
    event: NotificationEvent
    alert_id: str
    created_at: _timestamp_pb2.Timestamp
    status: DeliveryStatus
    attempts: int
    last_attempt_at: _timestamp_pb2.Timestamp
    next_attempt_at: _timestamp_pb2.Timestamp
    last_status_code: int
    last_error: str
    def __init__(self, id: _Optional[str] = ..., channel_id: _Optional[str] = ..., event: _Optional[_Union[NotificationEvent, str]] = ..., alert_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., attempts: _Optional[int] = ..., last_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_status_code: _Optional[int] = ..., last_error: _Optional[str] = ...) -> None: ...

class Notification(_message.Message):
    __slots__ = ("id", "event", "occurred_at", "workspace_id", "channel_id", "alert")
    ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    id: str
    event: NotificationEvent
    occurred_at: _timestamp_pb2.Timestamp
    workspace_id: str
    channel_id: str
    alert: Alert
    def __init__(self, id: _Optional[str] = ..., event: _Optional[_Union[NotificationEvent, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., workspace_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., alert: _Optional[_Union[Alert, _Mapping]] = ...) -> None: ...
