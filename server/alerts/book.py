"""Alerts: listing, resolving and acknowledging (ListAlerts, ResolveAlert, AcknowledgeAlert)."""

from __future__ import annotations

import functools

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.convert import json_numbers, now_ns, set_timestamp
from server.errors import NotFound
from server.states import ResolvedBy
from server.store import Store
from server.store.records import MEMO_ROWS, Alert

# The proto's numbers of the states: ListAlerts converts a few per alert.
_TYPES = json_numbers(pb.AlertType.DESCRIPTOR)
_SEVERITIES = json_numbers(pb.AlertSeverity.DESCRIPTOR)
_RESOLVERS = json_numbers(pb.AlertResolution.DESCRIPTOR)


def alert_message(alert: Alert, app_name: str, now: int | None = None) -> pb.Alert:
    """The Alert message of ``alert``; ``acknowledged`` tells whether its acknowledgement is in effect at ``now``
    (the current time when None)."""
    message = pb.Alert()
    _fill(message, alert, app_name, alert.acknowledged_at(now_ns() if now is None else now))
    return message


@functools.lru_cache(maxsize=MEMO_ROWS)  # as many as the store keeps records
def _listed(alert: Alert, app_name: str, acknowledged: bool) -> pb.Alert:
    """A listing's message of ``alert``, kept: the three arguments fix it (records are frozen), and the store hands
    back the same record for the same row, so a listing read again builds no message. Never changed once made:
    a listing copies it into its reply."""
    message = pb.Alert()
    _fill(message, alert, app_name, acknowledged)
    return message


def _fill(message: pb.Alert, alert: Alert, app_name: str, acknowledged: bool) -> None:
    """Writes ``alert`` into an empty message; ``acknowledged``: its acknowledgement is in effect now. Fields left
    unset render as null."""
    message.id = alert.id
    message.app_id = alert.app_id
    message.app_name = app_name
    message.type = _TYPES[alert.type]  # type: ignore[assignment]
    message.severity = _SEVERITIES[alert.severity]  # type: ignore[assignment]
    message.message = alert.message
    set_timestamp(message.triggered_at, alert.triggered_ns)
    if alert.resolved_ns is not None:
        set_timestamp(message.resolved_at, alert.resolved_ns)
        message.resolved = True
    if alert.resolved_by is not None:
        message.resolved_by = _RESOLVERS[alert.resolved_by]  # type: ignore[assignment]
    if alert.resolved_by_key is not None:
        message.resolved_by_key_id = alert.resolved_by_key
    if alert.acknowledged_ns is not None:
        _fill_acknowledgement(message, alert, alert.acknowledged_ns, acknowledged)
    if alert.silence_id is not None:
        message.silence_id = alert.silence_id
    if alert.held_until_ns is not None:
        message.held_for_deploy = True
        set_timestamp(message.held_until, alert.held_until_ns)
    if alert.notified_ns is not None:
        set_timestamp(message.notified_at, alert.notified_ns)


def _fill_acknowledgement(message: pb.Alert, alert: Alert, acknowledged_ns: int, acknowledged: bool) -> None:
    set_timestamp(message.acknowledged_at, acknowledged_ns)
    message.acknowledged = acknowledged
    if alert.acknowledged_by is not None:
        message.acknowledged_by_key_id = alert.acknowledged_by
    if alert.ack_note:  # "" is no note: null
        message.acknowledgement_note = alert.ack_note
    if alert.ack_until_ns is not None:
        set_timestamp(message.acknowledged_until, alert.ack_until_ns)


class AlertBook:
    """The workspace-facing side of alerts: read the history, resolve and acknowledge by hand."""

    def __init__(self, store: Store):
        self._store = store

    async def list(self, workspace_id: str, *, app_id: str, resolved: bool | None, limit: int) -> pb.ListAlertsResponse:
        # An app that is not in the workspace simply has no alerts here: the same answer whether it
        # exists in another workspace or nowhere.
        named = await self._store.list_alerts_with_app_names(
            workspace_id, app_id=app_id, resolved=resolved, limit=limit
        )
        reply = pb.ListAlertsResponse()
        now = now_ns()
        reply.alerts.extend([_listed(alert, app_name, alert.acknowledged_at(now)) for alert, app_name in named])
        return reply

    async def resolve(self, workspace_id: str, alert_id: str, by_key: str) -> pb.Alert:
        """Resolves the alert by hand, recording the API key ``by_key``; a resolved alert is returned unchanged."""
        alert = await self._existing(workspace_id, alert_id)
        now = now_ns()
        if alert.resolved_ns is None:
            alert = (
                await self._store.resolve_alert(workspace_id, alert_id, now, by=ResolvedBy.MANUAL, by_key=by_key)
                or alert
            )
        return await self._message(workspace_id, alert, now)

    async def acknowledge(
        self, workspace_id: str, alert_id: str, key_id: str, note: str, until_ns: int | None
    ) -> pb.Alert:
        """Acknowledges an open alert whose acknowledgement is not in effect; otherwise returns it unchanged."""
        alert = await self._existing(workspace_id, alert_id)
        now = now_ns()
        if alert.resolved_ns is None and not alert.acknowledged_at(now):
            alert = await self._store.acknowledge_alert(workspace_id, alert_id, now, key_id, note, until_ns) or alert
        return await self._message(workspace_id, alert, now)

    async def _existing(self, workspace_id: str, alert_id: str) -> Alert:
        alert = await self._store.get_alert(workspace_id, alert_id)
        if alert is None:
            raise NotFound("alert", alert_id)
        return alert

    async def _message(self, workspace_id: str, alert: Alert, now: int) -> pb.Alert:
        app = await self._store.get_app(workspace_id, alert.app_id)
        return alert_message(alert, app.name if app else "", now)
