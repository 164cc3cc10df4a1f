"""The rules engine against the real Prometheus playing data.py's timeline, with two servers evaluating.

Deadlines are timeline offsets: each wait ends at the latest moment the condition may become true plus a
margin; the assertions then check the moment it did become true against the data.
"""

from __future__ import annotations

import re
import time

import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing.platform import Tenant
from tests.alerts import data
from tests.alerts.conftest import Stage, list_alerts, poll, seconds, ticked_after

pytestmark = pytest.mark.timeout(90)

MESSAGES = {
    "high_cpu": "CPU usage exceeded {:g}% threshold",
    "high_memory": "Memory usage exceeded {:g}% threshold",
    "high_error_rate": "Error rate exceeded {:g}% threshold",
    "high_latency": "Average latency exceeded {:g}ms threshold",
}
# Fired within this many seconds after the hold elapsed: the 5 s rate window, a 1 s resolution step,
# two evaluator intervals and scheduling slack.
PROMPT_S = 10


def alert_type(name: str) -> pb.AlertType.ValueType:
    return pb.AlertType.Value("ALERT_TYPE_" + name.upper())


async def test_a_manually_resolved_alert_fires_again_only_after_recovery_and_a_new_breach(
    stage: Stage, watched: Tenant
) -> None:
    # First in the file: the manual resolution must happen during mem_latch's first breach.
    async def first_alert() -> pb.Alert | None:
        alerts = await list_alerts(watched, data.LATCH)
        return alerts[0] if alerts else None

    # In breach since long before the server started: fires on the first ticks.
    first = await poll("mem_latch to fire", first_alert, until=stage.at(data.LATCH_FIRST_END - 5))
    request = pb.ResolveAlertRequest(workspace_id=watched.workspace_id, alert_id=first.id)
    resolved = await watched.monitoring.ResolveAlert(request, metadata=watched.auth)
    assert resolved.resolved and resolved.HasField("resolved_at")
    assert time.time() < stage.at(data.LATCH_FIRST_END), "too late to observe the latch during the breach"

    # The breach goes on for more ticks: still no new alert.
    await ticked_after(watched, data.LATCH, seconds(resolved.resolved_at) + 2)
    assert time.time() < stage.at(data.LATCH_FIRST_END)
    assert [a.id for a in await list_alerts(watched, data.LATCH)] == [first.id]

    # Recovery (re-arms), then a new breach: a new alert, after its hold.
    async def second_alert() -> pb.Alert | None:
        alerts = await list_alerts(watched, data.LATCH, resolved=False)
        return alerts[0] if alerts else None

    second = await poll(
        "mem_latch to fire again", second_alert, until=stage.at(data.LATCH_SECOND_START + data.HOLD + PROMPT_S)
    )
    assert second.id != first.id
    assert seconds(second.triggered_at) >= stage.at(data.LATCH_SECOND_START + data.HOLD)
    history = await list_alerts(watched, data.LATCH)
    assert [a.id for a in history] == [second.id, first.id]  # newest first
    assert history[1].resolved_at == resolved.resolved_at  # the manual resolution is kept as it was


@pytest.mark.parametrize("name", list(data.CYCLE_APPS))
async def test_each_rule_fires_after_its_hold_and_not_before(stage: Stage, watched: Tenant, name: str) -> None:
    app_id = data.CYCLE_APPS[name]

    async def fired() -> list[pb.Alert] | None:
        return await list_alerts(watched, app_id) or None

    alerts = await poll(f"{name} to fire", fired, until=stage.at(data.BREACH + data.HOLD + PROMPT_S))
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.app_id, alert.app_name, alert.type) == (app_id, f"{app_id}-svc", alert_type(name))
    assert alert.id.startswith("alr_")
    # Not before the breach has held for the hold duration; promptly after.
    assert (
        stage.at(data.BREACH + data.HOLD) <= seconds(alert.triggered_at) <= stage.at(data.BREACH + data.HOLD + PROMPT_S)
    )
    warning, critical, _ = data.THRESHOLDS[name]
    if name == "high_memory" and alert.severity == pb.ALERT_SEVERITY_CRITICAL:  # escalated meanwhile
        assert alert.message == MESSAGES[name].format(critical)
    else:
        assert (alert.severity, alert.message) == (pb.ALERT_SEVERITY_WARNING, MESSAGES[name].format(warning))


async def test_a_warning_alert_escalates_to_critical_in_place(stage: Stage, watched: Tenant) -> None:
    app_id = data.CYCLE_APPS["high_memory"]

    async def critical() -> list[pb.Alert] | None:
        alerts = await list_alerts(watched, app_id)
        return alerts if alerts and alerts[0].severity == pb.ALERT_SEVERITY_CRITICAL else None

    alerts = await poll("mem_cycle to turn critical", critical, until=stage.at(data.BREACH + data.LENGTH))
    assert len(alerts) == 1  # the same alert, not a second one
    assert alerts[0].message == "Memory usage exceeded 95% threshold"


async def test_a_single_noisy_sample_never_fires(stage: Stage, watched: Tenant) -> None:
    # The spike is one sample at 99 % at BREACH; once ticks well past it have run, nothing fired.
    await ticked_after(watched, data.SPIKE, stage.at(data.BREACH + data.HOLD + 2))
    assert await list_alerts(watched, data.SPIKE) == []


@pytest.mark.parametrize("name", list(data.CYCLE_APPS))
async def test_each_rule_resolves_itself_on_recovery(stage: Stage, watched: Tenant, name: str) -> None:
    app_id = data.CYCLE_APPS[name]
    recovered_at = data.BREACH + data.LENGTH

    async def resolved() -> list[pb.Alert] | None:
        alerts = await list_alerts(watched, app_id)
        return alerts if alerts and all(a.resolved for a in alerts) else None

    alerts = await poll(f"{name} to resolve", resolved, until=stage.at(recovered_at + data.HOLD + PROMPT_S))
    assert len(alerts) == 1  # one breach, one alert: never twice, though two servers evaluate
    alert = alerts[0]
    assert alert.HasField("resolved_at")
    # Not before the recovery has held for the hold duration.
    assert (
        stage.at(recovered_at + data.HOLD)
        <= seconds(alert.resolved_at)
        <= stage.at(recovered_at + data.HOLD + PROMPT_S)
    )
    assert seconds(alert.resolved_at) > seconds(alert.triggered_at)


async def test_two_servers_on_one_database_fire_each_breach_once(stage: Stage, watched: Tenant) -> None:
    """Both servers answer; the evaluator lease lets one evaluate at a time (a takeover may happen under load,
    so the ticks are counted over both), and the one-open-alert index backs it up."""

    async def settled() -> dict[str, list[pb.Alert]] | None:
        everything = await list_alerts(watched, limit=500)
        by_app: dict[str, list[pb.Alert]] = {}
        for alert in everything:
            by_app.setdefault(alert.app_id, []).append(alert)
        cycles_done = all(by_app.get(app) and all(a.resolved for a in by_app[app]) for app in data.CYCLE_APPS.values())
        return by_app if cycles_done and len(by_app.get(data.LATCH, [])) == 2 else None

    by_app = await poll(
        "every breach of the timeline", settled, until=stage.at(data.LATCH_SECOND_START + data.HOLD + PROMPT_S)
    )
    for app in data.CYCLE_APPS.values():
        assert len(by_app[app]) == 1, app
    assert data.SPIKE not in by_app
    logs = [server.log() for server in stage.servers]
    assert sum(len(re.findall(r"alert rules: \d+ apps, \d+ queries", log)) for log in logs) > 20
    assert any(re.search(r"replica \S+ leads \(lease evaluator, epoch \d+", log) for log in logs)
