"""Alerts: listing and resolving (ListAlerts, ResolveAlert)."""

from __future__ import annotations

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.convert import NS_PER_S, enum_from_json, now_ns
from server.errors import NotFound
from server.states import AlertSeverity, AlertType, ResolvedBy
from server.store import Store
from server.store.records import Alert

# The proto's numbers of the states, looked up once: ListAlerts converts two per alert.
_TYPES = {kind: enum_from_json(pb.AlertType.DESCRIPTOR, kind) for kind in AlertType}
_SEVERITIES = {severity: enum_from_json(pb.AlertSeverity.DESCRIPTOR, severity) for severity in AlertSeverity}


def alert_message(alert: Alert, app_name: str) -> pb.Alert:
    message = pb.Alert()
    _fill(message, alert, app_name)
    return message


def _fill(message: pb.Alert, alert: Alert, app_name: str) -> None:
    """Writes ``alert`` into an empty message: in place, so that a listing's messages are built inside the reply
    (a message handed to a constructor is copied)."""
    message.id = alert.id
    message.app_id = alert.app_id
    message.app_name = app_name
    message.type = _TYPES[alert.type]  # type: ignore[assignment]
    message.severity = _SEVERITIES[alert.severity]  # type: ignore[assignment]
    message.message = alert.message
    triggered = message.triggered_at  # set in place: a Timestamp handed over would be copied
    triggered.seconds, triggered.nanos = divmod(alert.triggered_ns, NS_PER_S)
    if alert.resolved_ns is not None:  # unset otherwise: renders as null
        resolved = message.resolved_at
        resolved.seconds, resolved.nanos = divmod(alert.resolved_ns, NS_PER_S)
        message.resolved = True


class AlertBook:
    """The workspace-facing side of alerts: read the history, resolve by hand."""

    def __init__(self, store: Store):
        self._store = store

    async def list(self, workspace_id: str, *, app_id: str, resolved: bool | None, limit: int) -> pb.ListAlertsResponse:
        # An app that is not in the workspace simply has no alerts here: the same answer whether it
        # exists in another workspace or nowhere.
        named = await self._store.list_alerts_with_app_names(
            workspace_id, app_id=app_id, resolved=resolved, limit=limit
        )
        reply = pb.ListAlertsResponse()
        add = reply.alerts.add
        for alert, app_name in named:
            _fill(add(), alert, app_name)
        return reply

    async def resolve(self, workspace_id: str, alert_id: str) -> pb.Alert:
        alert = await self._store.get_alert(workspace_id, alert_id)
        if alert is None:
            raise NotFound("alert", alert_id)
        if alert.resolved_ns is None:
            alert = await self._store.resolve_alert(workspace_id, alert_id, now_ns(), by=ResolvedBy.MANUAL) or alert
        app = await self._store.get_app(workspace_id, alert.app_id)
        return alert_message(alert, app.name if app else "")
