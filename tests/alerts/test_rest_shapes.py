"""The documented JSON of the overview and the alerts, through the real REST edge in front of the stage."""

from __future__ import annotations

import pathlib
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing.edge import EdgeProcess, running_edge
from testing.platform import Tenant
from tests.alerts import data
from tests.alerts.conftest import Stage, list_alerts, poll
from tests.edge.test_jsonmap import ALERT_ADDITIONS

pytestmark = pytest.mark.timeout(60)

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture(scope="module")
def edge(stage: Stage, log_dir: pathlib.Path) -> Iterator[EdgeProcess]:
    with running_edge(log_dir, stage.servers[0].addr) as process:
        yield process


def get(edge: EdgeProcess, tenant: Tenant, path: str, **params: str) -> httpx.Response:
    url = f"{edge.url}/api/v1/workspaces/{tenant.workspace_id}/monitoring/{path}"
    return httpx.get(url, params=params, headers={"Authorization": f"Bearer {tenant.key}"}, timeout=10)


async def test_overview_json_is_shaped_as_the_contract(stage: Stage, watched: Tenant, edge: EdgeProcess) -> None:
    async def some_alert() -> bool | None:
        return True if await list_alerts(watched) else None

    await poll("an alert in the workspace", some_alert, until=time.time() + 15)
    await watched.record("deploy", data.LATCH, "dep_rest", pb.OPERATION_STATUS_SUCCEEDED, time.time_ns())
    response = get(edge, watched, "overview")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "totalApps",
        "activeApps",
        "totalDeploys",
        "deploysToday",
        "failedBuildsToday",
        "estimatedMonthlyCost",
        "appHealthSummary",
        "recentActivity",
    }
    assert body["totalApps"] == 8 and body["activeApps"] == 8
    assert isinstance(body["estimatedMonthlyCost"], int | float)
    assert set(body["appHealthSummary"]) == {"healthy", "degraded", "unhealthy", "unknown"}
    assert sum(body["appHealthSummary"].values()) == 8
    kinds = {item["type"] for item in body["recentActivity"]}
    assert {"deploy", "alert"} <= kinds
    for item in body["recentActivity"]:
        assert RFC3339.fullmatch(item["timestamp"])
        if item["type"] == "alert":
            assert set(item) == {"type", "appName", "message", "timestamp"}
            assert item["message"].endswith("threshold")
        else:
            assert set(item) == {"type", "appName", "status", "timestamp"}
            assert item["status"] in {"queued", "running", "succeeded", "failed", "canceled"}


async def test_alerts_json_is_shaped_as_the_contract(stage: Stage, watched: Tenant, edge: EdgeProcess) -> None:
    async def open_and_resolved() -> list[dict[str, object]] | None:
        body = get(edge, watched, "alerts", limit="500").json()
        states = {alert["resolved"] for alert in body}
        return body if states == {True, False} else None

    # mem_steady's alert stays open; the cycles' resolve by themselves.
    alerts = await poll("open and resolved alerts", open_and_resolved, until=stage.at(data.BREACH + data.LENGTH + 30))
    documented = {"id", "appId", "appName", "type", "severity", "message", "triggeredAt", "resolvedAt", "resolved"}
    keys = documented | set(ALERT_ADDITIONS)  # the lifecycle's fields (docs/notifications.md), additive
    for alert in alerts:
        assert set(alert) == keys
        assert alert["type"] in {"high_cpu", "high_memory", "high_error_rate", "high_latency"}
        assert alert["severity"] in {"warning", "critical"}
        assert RFC3339.fullmatch(str(alert["triggeredAt"]))
        if alert["resolved"]:
            assert RFC3339.fullmatch(str(alert["resolvedAt"]))
        else:
            assert alert["resolvedAt"] is None  # null while open, as in the contract
    assert all(a["resolved"] is False for a in get(edge, watched, "alerts", resolved="false").json())
