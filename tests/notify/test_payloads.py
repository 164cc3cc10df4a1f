"""The three webhook formats and the Alertmanager push body, by their structure."""

from __future__ import annotations

import json

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.notify import payloads
from server.states import NotificationEvent, PayloadFormat, ResolvedBy
from tests.notify.records import T0, alert, channel, delivery

S = 10**9


def _json_names(descriptor: object) -> set[str]:
    return {field.json_name for field in descriptor.fields}  # type: ignore[attr-defined]


def test_service_format_is_the_notification_message_under_the_json_rule() -> None:
    body = json.loads(payloads.render(delivery(NotificationEvent.FIRED), channel(), alert(), "checkout"))
    assert set(body) == _json_names(pb.Notification.DESCRIPTOR)
    assert body["id"] == "evt_1" and body["event"] == "fired" and body["channelId"] == "chn_1"
    assert body["workspaceId"] == "ws_1" and body["occurredAt"] == "2026-01-01T00:00:05Z"
    assert set(body["alert"]) <= _json_names(pb.Alert.DESCRIPTOR)
    assert body["alert"]["id"] == "alr_1" and body["alert"]["appName"] == "checkout"
    assert body["alert"]["type"] == "high_cpu" and body["alert"]["severity"] == "critical"
    assert body["alert"]["resolvedAt"] is None and body["alert"]["resolved"] is False


def test_service_format_of_a_test_event_has_a_null_alert() -> None:
    body = json.loads(payloads.render(delivery(NotificationEvent.TEST, alert_id=None), channel(), None, ""))
    assert body["event"] == "test" and body["alert"] is None


def test_slack_format_has_one_plain_line_and_a_section_of_details() -> None:
    acked = alert(acknowledged_ns=T0 + 60 * S, acknowledged_by="key_1", ack_note="looking <now> & then")
    render = payloads.render(
        delivery(NotificationEvent.ACKNOWLEDGED), channel(format=PayloadFormat.SLACK), acked, "api"
    )
    body = json.loads(render)
    assert set(body) == {"text", "blocks"}
    assert body["text"] == "[ACKNOWLEDGED] critical high_cpu on api: CPU usage exceeded 90% threshold"
    [block] = body["blocks"]
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    details = block["text"]["text"]
    assert "*App:* api (app_1)" in details and "*Severity:* critical" in details
    assert "*Triggered at:* 2026-01-01T00:00:00Z" in details and "*Acknowledged by:* key key_1" in details
    assert "looking &lt;now&gt; &amp; then" in details  # mrkdwn markup escaped


def test_slack_format_says_who_resolved() -> None:
    resolved = alert(resolved_ns=T0 + 120 * S, resolved_by=ResolvedBy.MANUAL, resolved_by_key="key_9")
    slack = channel(format=PayloadFormat.SLACK)
    body = json.loads(payloads.render(delivery(NotificationEvent.RESOLVED), slack, resolved, "api"))
    assert body["text"].startswith("[RESOLVED] critical high_cpu on api:")
    assert "*Resolved by:* hand (key key_9) at 2026-01-01T00:02:00Z" in body["blocks"][0]["text"]["text"]
    test = json.loads(payloads.render(delivery(NotificationEvent.TEST, alert_id=None), slack, None, ""))
    assert test["text"].startswith("[TEST]") and test["blocks"]


def test_alertmanager_format_is_the_version_4_webhook_body() -> None:
    am = channel(format=PayloadFormat.ALERTMANAGER)
    body = json.loads(payloads.render(delivery(NotificationEvent.FIRED), am, alert(), "api"))
    assert set(body) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "on-call"
    assert body["truncatedAlerts"] == 0 and body["groupLabels"] == {"alertname": "high_cpu"}
    [item] = body["alerts"]
    assert item["labels"] == {
        "alertname": "high_cpu",
        "severity": "critical",
        "workspace_id": "ws_1",
        "app_id": "app_1",
        "app_name": "api",
    }
    assert item["annotations"]["summary"] == "CPU usage exceeded 90% threshold" and item["annotations"]["description"]
    assert item["startsAt"] == "2026-01-01T00:00:00Z" and item["endsAt"] == "0001-01-01T00:00:00Z"
    assert item["generatorURL"] == "" and len(item["fingerprint"]) == 16
    assert item["fingerprint"] == payloads.fingerprint("alr_1")  # stable across events of one alert
    assert body["commonLabels"] == item["labels"]


def test_alertmanager_format_of_a_resolution_ends_the_alert() -> None:
    am = channel(format=PayloadFormat.ALERTMANAGER)
    resolved = alert(resolved_ns=T0 + 90 * S, resolved_by=ResolvedBy.RECOVERY)
    body = json.loads(payloads.render(delivery(NotificationEvent.RESOLVED), am, resolved, "api"))
    assert body["status"] == "resolved" and body["alerts"][0]["status"] == "resolved"
    assert body["alerts"][0]["endsAt"] == "2026-01-01T00:01:30Z"
    test = json.loads(payloads.render(delivery(NotificationEvent.TEST, alert_id=None), am, None, ""))
    assert test["version"] == "4" and test["alerts"][0]["labels"]["alertname"] == payloads.TEST_ALERTNAME


def test_the_v2_push_ends_open_alerts_three_intervals_ahead_and_resolved_ones_when_resolved() -> None:
    resolved = alert("alr_2", resolved_ns=T0 + 30 * S, resolved_by=ResolvedBy.RECOVERY)
    body = json.loads(payloads.alertmanager_alerts([(alert(), "api"), (resolved, "api")], T0 + 60 * S, 60.0))
    assert [set(item) for item in body] == [{"labels", "annotations", "startsAt", "endsAt", "generatorURL"}] * 2
    assert body[0]["labels"] == {
        "alertname": "high_cpu",
        "severity": "critical",
        "workspace_id": "ws_1",
        "app_id": "app_1",
    }
    assert body[0]["startsAt"] == "2026-01-01T00:00:00Z" and body[0]["endsAt"] == "2026-01-01T00:04:00Z"
    assert body[1]["endsAt"] == "2026-01-01T00:00:30Z"
    assert body[0]["annotations"]["summary"] == "CPU usage exceeded 90% threshold"
    assert body[0]["annotations"]["app_name"] == "api" and body[0]["annotations"]["description"]
    assert payloads.alertmanager_alerts([], T0, 60.0) == b"[]"
