"""The bodies a channel is sent: one event in the channel's format, and the alerts pushed to an Alertmanager.

Formats (``Channel.format``, docs/notifications.md):

* ``service``: the ``Notification`` message under the service's JSON rule (jsonmap), like every API response.
* ``slack``: an incoming webhook's message: ``text`` (one plain line, what notifications and search show) and
  ``blocks`` (a section with the details in mrkdwn).
* ``alertmanager``: Alertmanager's webhook body (version 4), for receivers written against Alertmanager.

The bytes are rendered once, before the first attempt; the outbox keeps them, so every retry sends the same
body under the same event id (receivers may compare bodies as well as ids).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from google.protobuf import timestamp_pb2

import jsonmap
from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.alerts.book import alert_message
from server.convert import NS_PER_S, enum_from_json, set_timestamp
from server.states import NotificationEvent, PayloadFormat, ResolvedBy
from server.store.records import Alert, Channel, Delivery

JSON = dict[str, object]

# Alertmanager's zero time: what its webhook sends as endsAt while an alert fires.
ZERO_TIME = "0001-01-01T00:00:00Z"
# The alertname of the synthetic alert a `test` event carries in the Alertmanager format.
TEST_ALERTNAME = "DooorTestNotification"
_HEADLINES = {
    NotificationEvent.FIRED: "FIRING",
    NotificationEvent.ACKNOWLEDGED: "ACKNOWLEDGED",
    NotificationEvent.RESOLVED: "RESOLVED",
    NotificationEvent.REMINDER: "REMINDER",
    NotificationEvent.TEST: "TEST",
}


def render(delivery: Delivery, channel: Channel, alert: Alert | None, app_name: str) -> bytes:
    """The body of ``delivery`` in ``channel``'s format; ``alert`` None for a test event (or a deleted alert)."""
    return _RENDERERS[channel.format](delivery, channel, alert, app_name)


def alertmanager_alerts(alerts_with_app_names: Sequence[tuple[Alert, str]], now_ns: int, resend_s: float) -> bytes:
    """The body of a POST to an Alertmanager's ``/api/v2/alerts``: one postable alert per alert.

    An open alert's endsAt is three resend intervals ahead: pushed again every interval, it stays active; if
    this service stops pushing, the Alertmanager resolves it by itself instead of keeping it forever.
    """
    open_ends = rfc3339(now_ns + int(3 * resend_s * NS_PER_S))
    return jsonmap.dumps(
        [
            {
                "labels": _identity_labels(alert),
                "annotations": _push_annotations(alert, app_name),
                "startsAt": rfc3339(alert.triggered_ns),
                "endsAt": open_ends if alert.resolved_ns is None else rfc3339(alert.resolved_ns),
                "generatorURL": "",
            }
            for alert, app_name in alerts_with_app_names
        ]
    )


def _push_annotations(alert: Alert, app_name: str) -> dict[str, str]:
    # app_name is an annotation, not a label: labels are the alert's identity in Alertmanager, and renaming
    # the app must not turn an open alert into a second one.
    app = app_name or alert.app_id
    description = f"{alert.severity} {alert.type} on {app} since {rfc3339(alert.triggered_ns)}"
    return {"summary": alert.message, "description": description, "app_name": app_name, "alert_id": alert.id}


def rfc3339(ns: int) -> str:
    """RFC 3339 in UTC with ``Z``, as the API renders times."""
    seconds, nanos = divmod(ns, NS_PER_S)
    return jsonmap.format_timestamp(timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos))


def fingerprint(alert_id: str) -> str:
    """A stable 16-digit hex identity of an alert (Alertmanager's fingerprints have this shape)."""
    return hashlib.sha256(alert_id.encode()).hexdigest()[:16]


# -- service -----------------------------------------------------------------------------------------------


def _service(delivery: Delivery, channel: Channel, alert: Alert | None, app_name: str) -> bytes:
    message = pb.Notification(
        id=delivery.id,
        event=enum_from_json(pb.NotificationEvent.DESCRIPTOR, delivery.event),  # type: ignore[arg-type]
        workspace_id=delivery.workspace_id,
        channel_id=channel.id,
    )
    set_timestamp(message.occurred_at, delivery.created_ns)
    if alert is not None:
        message.alert.CopyFrom(alert_message(alert, app_name))
    return jsonmap.dumps(jsonmap.to_json(message))


# -- slack -------------------------------------------------------------------------------------------------


def _slack(delivery: Delivery, channel: Channel, alert: Alert | None, app_name: str) -> bytes:
    headline = _HEADLINES[delivery.event]
    if alert is None:
        text = f"[{headline}] notification channel {channel.name}: {_missing_alert(delivery)}"
        details = [("Event", str(delivery.event)), ("Channel", channel.name), ("Event id", delivery.id)]
    else:
        text = f"[{headline}] {alert.severity} {alert.type} on {app_name or alert.app_id}: {alert.message}"
        details = _alert_details(delivery, alert, app_name)
    mrkdwn = "\n".join(f"*{name}:* {_slack_escape(value)}" for name, value in details)
    return jsonmap.dumps({"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}]})


def _alert_details(delivery: Delivery, alert: Alert, app_name: str) -> list[tuple[str, str]]:
    details = [
        ("Event", str(delivery.event)),
        ("App", f"{app_name} ({alert.app_id})" if app_name else alert.app_id),
        ("Severity", str(alert.severity)),
        ("Alert", f"{alert.type}: {alert.message}"),
        ("Triggered at", rfc3339(alert.triggered_ns)),
    ]
    if alert.acknowledged_ns is not None:
        by = f"key {alert.acknowledged_by}" if alert.acknowledged_by else "an unknown key"
        details.append(("Acknowledged by", f"{by} at {rfc3339(alert.acknowledged_ns)}"))
        if alert.ack_note:
            details.append(("Note", alert.ack_note))
    if alert.resolved_ns is not None:
        details.append(("Resolved by", f"{_resolver(alert)} at {rfc3339(alert.resolved_ns)}"))
    details.append(("Alert id", alert.id))
    return details


def _resolver(alert: Alert) -> str:
    if alert.resolved_by == ResolvedBy.MANUAL:
        return f"hand (key {alert.resolved_by_key})" if alert.resolved_by_key else "hand"
    return "recovery"


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn reads &, < and > as markup (links, mentions); a message quoting them must escape them.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _missing_alert(delivery: Delivery) -> str:
    if delivery.event == NotificationEvent.TEST:
        return "a test notification from Dooor monitoring"
    return f"alert {delivery.alert_id} is no longer on record"


# -- alertmanager ------------------------------------------------------------------------------------------


def _alertmanager(delivery: Delivery, channel: Channel, alert: Alert | None, app_name: str) -> bytes:
    if alert is None:
        labels = {"alertname": TEST_ALERTNAME, "severity": "none", "workspace_id": delivery.workspace_id}
        item = _test_alert(delivery, channel, labels)
    else:
        labels = {**_identity_labels(alert), "app_name": app_name}
        item = _webhook_alert(delivery, alert, app_name, labels)
    alertname = labels["alertname"]
    return jsonmap.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{alertname}"}}',
            "truncatedAlerts": 0,
            "status": item["status"],
            "receiver": channel.name,
            "groupLabels": {"alertname": alertname},
            "commonLabels": labels,
            "commonAnnotations": item["annotations"],
            "externalURL": "",
            "alerts": [item],
        }
    )


def _webhook_alert(delivery: Delivery, alert: Alert, app_name: str, labels: dict[str, str]) -> JSON:
    resolved = alert.resolved_ns is not None and delivery.event == NotificationEvent.RESOLVED
    details = "; ".join(f"{name}: {value}" for name, value in _alert_details(delivery, alert, app_name))
    return {
        "status": "resolved" if resolved else "firing",
        "labels": labels,
        "annotations": {"summary": alert.message, "description": details},
        "startsAt": rfc3339(alert.triggered_ns),
        "endsAt": rfc3339(alert.resolved_ns) if resolved and alert.resolved_ns is not None else ZERO_TIME,
        "generatorURL": "",
        "fingerprint": fingerprint(alert.id),
    }


def _test_alert(delivery: Delivery, channel: Channel, labels: dict[str, str]) -> JSON:
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": _missing_alert(delivery), "description": f"channel {channel.name} ({channel.id})"},
        "startsAt": rfc3339(delivery.created_ns),
        "endsAt": ZERO_TIME,
        "generatorURL": "",
        "fingerprint": fingerprint(delivery.id),
    }


def _identity_labels(alert: Alert) -> dict[str, str]:
    """The labels that name an alert in an Alertmanager: one series per (workspace, app, type); severity too,
    since Alertmanager routes on it."""
    return {
        "alertname": str(alert.type),
        "severity": str(alert.severity),
        "workspace_id": alert.workspace_id,
        "app_id": alert.app_id,
    }


_RENDERERS: dict[PayloadFormat, Callable[[Delivery, Channel, Alert | None, str], bytes]] = {
    PayloadFormat.SERVICE: _service,
    PayloadFormat.SLACK: _slack,
    PayloadFormat.ALERTMANAGER: _alertmanager,
}
