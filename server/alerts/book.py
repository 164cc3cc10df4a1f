"""Alerts: listing and resolving (ListAlerts, ResolveAlert)."""

from __future__ import annotations

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.convert import enum_from_json, now_ns, timestamp
from server.errors import NotFound
from server.states import ResolvedBy
from server.store import Store
from server.store.records import Alert


def alert_message(alert: Alert, app_name: str) -> pb.Alert:
    return pb.Alert(
        id=alert.id,
        app_id=alert.app_id,
        app_name=app_name,
        type=enum_from_json(pb.AlertType.DESCRIPTOR, alert.type),
        severity=enum_from_json(pb.AlertSeverity.DESCRIPTOR, alert.severity),
        message=alert.message,
        triggered_at=timestamp(alert.triggered_ns),
        resolved_at=timestamp(alert.resolved_ns),
        resolved=alert.resolved_ns is not None,
    )


class AlertBook:
    """The workspace-facing side of alerts: read the history, resolve by hand."""

    def __init__(self, store: Store):
        self._store = store

    async def _app_names(self, workspace_id: str) -> dict[str, str]:
        return {app.id: app.name for app in await self._store.list_apps(workspace_id)}

    async def list(self, workspace_id: str, *, app_id: str, resolved: bool | None, limit: int) -> list[pb.Alert]:
        # An app that is not in the workspace simply has no alerts here: the same answer whether it
        # exists in another workspace or nowhere.
        alerts = await self._store.list_alerts(workspace_id, app_id=app_id, resolved=resolved, limit=limit)
        names = await self._app_names(workspace_id) if alerts else {}
        return [alert_message(a, names.get(a.app_id, "")) for a in alerts]

    async def resolve(self, workspace_id: str, alert_id: str) -> pb.Alert:
        alert = await self._store.get_alert(workspace_id, alert_id)
        if alert is None:
            raise NotFound("alert", alert_id)
        if alert.resolved_ns is None:
            alert = await self._store.resolve_alert(workspace_id, alert_id, now_ns(), by=ResolvedBy.MANUAL) or alert
        app = await self._store.get_app(workspace_id, alert.app_id)
        return alert_message(alert, app.name if app else "")
