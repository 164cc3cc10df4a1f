"""Rows the notification tests build: a channel, an alert, a delivery, with readable defaults."""

from __future__ import annotations

import dataclasses

from server.states import (
    AlertSeverity,
    AlertType,
    ChannelKind,
    DeliveryStatus,
    NotificationEvent,
    PayloadFormat,
)
from server.store.records import Alert, Channel, Delivery

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
SECRET = "whsec_notify_tests_0123456789abcdef"


def channel(
    url: str = "https://hooks.example.com/x",
    *,
    channel_id: str = "chn_1",
    workspace_id: str = "ws_1",
    kind: ChannelKind = ChannelKind.WEBHOOK,
    format: PayloadFormat = PayloadFormat.SERVICE,
    events: tuple[NotificationEvent, ...] = tuple(e for e in NotificationEvent if e != NotificationEvent.TEST),
    reminder_s: int = 0,
) -> Channel:
    return Channel(
        id=channel_id,
        workspace_id=workspace_id,
        name="on-call",
        kind=kind,
        url=url,
        format=format,
        secret=SECRET,
        events=events,
        reminder_s=reminder_s,
        created_ns=T0,
    )


def alert(alert_id: str = "alr_1", *, workspace_id: str = "ws_1", app_id: str = "app_1", **changes: object) -> Alert:
    base = Alert(
        id=alert_id,
        workspace_id=workspace_id,
        app_id=app_id,
        type=AlertType.HIGH_CPU,
        severity=AlertSeverity.CRITICAL,
        message="CPU usage exceeded 90% threshold",
        triggered_ns=T0,
        resolved_ns=None,
        resolved_by=None,
        notified_ns=T0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def delivery(event: NotificationEvent, *, alert_id: str | None = "alr_1", created_ns: int = T0 + 5 * 10**9) -> Delivery:
    return Delivery(
        id="evt_1",
        channel_id="chn_1",
        workspace_id="ws_1",
        event=event,
        alert_id=alert_id,
        created_ns=created_ns,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_ns=created_ns,
        last_attempt_ns=None,
        last_status_code=None,
        last_error=None,
        body=None,
    )
