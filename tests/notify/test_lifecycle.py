"""The whole alert lifecycle against real processes: Prometheus playing a crafted timeline, a server on SQLite
that is killed with SIGKILL halfway, a webhook receiver that verifies every signature itself, and a real
Alertmanager. Time runs for real: the apps breach ``BREACH`` seconds after the data is generated.

- ``plain`` breaches and stays: fired at once (notified), later acknowledged and resolved by hand.
- ``flap`` breaches for 15 s, then recovers: fired, then resolved on recovery.
- ``held_short`` breaches for 6 s right after a deploy, inside the deploy hold: held, resolved on recovery,
  and nobody is ever told.
- ``held_long`` breaches after the same deploy and stays: held, then released when the hold ends.
- ``silenced`` breaches and stays under a silence: recorded as silenced, released when the silence is expired.

The webhook's URL first points at a port nobody listens on: the first events are queued and retried, the server
is killed with SIGKILL, restarted on the same database, and the channel pointed at the receiver: every event
committed before the kill arrives, each exactly once by id, each signature valid.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import timestamp_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc, platform_pb2_grpc
from dooor.monitoring.v1 import platform_pb2 as ppb
from testing.alertmanager import AlertmanagerProcess, alerts, running_alertmanager
from testing.platform import ADMIN, Tenant, new_tenant
from testing.procs import ServerProcess, free_port
from testing.prometheus import Series, running_prometheus
from testing.webhook_receiver import running_receiver

T = TypeVar("T")
S = 1_000_000_000
WORKSPACE = "ws_lifecycle"
BREACH = 30  # seconds after t0: time for the server to start and the test to set up
HOLD_S = 25  # the deploy hold ([alerts] deploy_hold_s)
DEPLOY_AT = BREACH - 3
HISTORY, END = 300, 400
MIB = 1048576
LIMIT_MIB = 1000.0
APPS = ("plain", "flap", "held_short", "held_long", "silenced")
HIGH, LOW = 90.0, 30.0


def _percent(app: str, t: int) -> float:
    if t < BREACH:
        return LOW
    if app == "flap":
        return HIGH if t < BREACH + 15 else LOW
    if app == "held_short":
        return HIGH if t < BREACH + 6 else LOW
    return HIGH


def _series(t0: int) -> Iterator[Series]:
    times = range(t0 - HISTORY, t0 + END + 1)
    for app in APPS:
        labels = {"workspace_id": WORKSPACE, "app_id": app}
        yield Series("up", {**labels, "instance": f"{app}-0"}, [(t, 1.0) for t in times])
        yield Series(
            "container_memory_working_set_bytes",
            {**labels, "pod": f"{app}-0", "container": "app"},
            [(t, _percent(app, t - t0) / 100 * LIMIT_MIB * MIB) for t in times],
        )


CONFIG = f"""
[alerts]
resolution_s = 1
deploy_hold_s = {HOLD_S}

[notify]
poll_s = 0.2
retry_initial_s = 0.2
retry_max_s = 1.0
alertmanager_resend_s = 2.0
allow_private_destinations = true
"""


@dataclasses.dataclass
class Stage:
    t0: int
    work: pathlib.Path
    db: pathlib.Path
    env: dict[str, str]
    alertmanager: AlertmanagerProcess


def _ts(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * S))
    return stamp


async def _poll(what: str, probe: Callable[[], Awaitable[T | None]], *, within: float) -> T:
    deadline = time.time() + within
    while True:
        found = await probe()
        if found is not None:
            return found
        if time.time() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.25)


async def _alerts_by_app(tenant: Tenant) -> dict[str, pb.Alert]:
    reply = await tenant.monitoring.ListAlerts(
        pb.ListAlertsRequest(workspace_id=tenant.workspace_id, limit=100), metadata=tenant.auth
    )
    return {alert.app_id: alert for alert in reply.alerts}  # one alert per app in this timeline


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    work = tmp_path_factory.mktemp("lifecycle")
    t0 = int(time.time())
    config = work / "monitoring.toml"
    config.write_text(CONFIG)
    with running_prometheus(work, _series(t0)) as prometheus, running_alertmanager(work) as alertmanager:
        env = {
            "MONITORING_PROMETHEUS_URL": prometheus.url,
            "MONITORING_EVAL_INTERVAL": "0.5",
            "MONITORING_CONFIG_FILE": str(config),
        }
        yield Stage(t0, work, work / "monitoring.db", env, alertmanager)


async def test_every_event_is_delivered_once_signed_across_a_kill_and_held_alerts_only_when_due(stage: Stage) -> None:
    logs = stage.work / "server-1"
    logs.mkdir()
    first = ServerProcess(logs, stage.db, stage.env)
    try:
        async with grpc.aio.insecure_channel(first.addr) as channel:
            tenant, webhook, secret = await _set_up(stage, channel)
            # The breach fires plain and flap at once; their `fired` events wait, the URL refusing connections.
            opened = await _poll("plain and flap fired", lambda: _fired(tenant, {"plain", "flap"}), within=BREACH + 30)
            assert opened["plain"].HasField("notified_at")
            await _poll("a failed attempt", lambda: _failed_attempt(tenant, webhook), within=15)
    finally:
        first.kill()  # SIGKILL: nothing of the pending deliveries may be lost

    with running_receiver(stage.work, secret) as receiver:
        logs = stage.work / "server-2"
        logs.mkdir()
        second = ServerProcess(logs, stage.db, stage.env)
        try:
            async with grpc.aio.insecure_channel(second.addr) as channel:
                tenant = await _reconnect(tenant, channel)
                await tenant.monitoring.UpdateNotificationChannel(
                    pb.UpdateNotificationChannelRequest(
                        workspace_id=WORKSPACE,
                        channel_id=webhook,
                        channel=pb.NotificationChannel(name="receiver", url=f"{receiver.url}/hook/lifecycle"),
                    ),
                    metadata=tenant.auth,
                )
                await _play_the_rest(stage, tenant)
                expected = await _wait_for_every_delivery(tenant, webhook, receiver.requests)
        finally:
            second.stop()
        received = receiver.requests()

    assert received and all(entry["signature_ok"] for entry in received)
    by_id: dict[str, int] = {}
    for entry in received:
        by_id[entry["event_id"]] = by_id.get(entry["event_id"], 0) + 1
    assert by_id == {event_id: 1 for event_id in expected}, "each event exactly once, none missing, none extra"
    told = sorted((event, app) for event, app in expected.values())
    assert told == sorted(
        [
            ("fired", "plain"),
            ("fired", "flap"),
            ("resolved", "flap"),
            ("fired", "held_long"),
            ("fired", "silenced"),
            ("acknowledged", "plain"),
            ("resolved", "plain"),
        ]
    ), "held_short recovered within its deploy hold: never told"


async def _set_up(stage: Stage, channel: grpc.aio.Channel) -> tuple[Tenant, str, str]:
    tenant = await new_tenant(channel, WORKSPACE)
    for app in APPS:
        await tenant.add_app(app, name=f"{app}-svc", memory_limit_mib=LIMIT_MIB, cpu_limit_cores=1.0)
    rule = ppb.AlertRule(
        workspace_id=WORKSPACE,
        type=pb.ALERT_TYPE_HIGH_MEMORY,
        warning_threshold=80.0,
        critical_threshold=95.0,
        recovery_threshold=50.0,
        hold_seconds=2,
    )
    await tenant.platform.CreateAlertRule(ppb.CreateAlertRuleRequest(rule=rule), metadata=ADMIN)
    for app in ("held_short", "held_long"):
        await tenant.record("deploy", app, f"dep_{app}", pb.OPERATION_STATUS_SUCCEEDED, (stage.t0 + DEPLOY_AT) * S)
    await tenant.monitoring.CreateSilence(
        pb.CreateSilenceRequest(
            workspace_id=WORKSPACE,
            silence=pb.Silence(app_id="silenced", ends_at=_ts(time.time() + 3600), comment="maintenance"),
        ),
        metadata=tenant.auth,
    )
    nobody = f"http://127.0.0.1:{free_port()}/hook/lifecycle"
    created = await tenant.monitoring.CreateNotificationChannel(
        pb.CreateNotificationChannelRequest(
            workspace_id=WORKSPACE,
            channel=pb.NotificationChannel(name="receiver", kind=pb.CHANNEL_KIND_WEBHOOK, url=nobody),
        ),
        metadata=tenant.auth,
    )
    await tenant.monitoring.CreateNotificationChannel(
        pb.CreateNotificationChannelRequest(
            workspace_id=WORKSPACE,
            channel=pb.NotificationChannel(
                name="alertmanager", kind=pb.CHANNEL_KIND_ALERTMANAGER, url=stage.alertmanager.url
            ),
        ),
        metadata=tenant.auth,
    )
    assert time.time() < stage.t0 + BREACH, "setup took longer than the timeline allows"
    return tenant, created.id, created.signing_secret


async def _reconnect(tenant: Tenant, channel: grpc.aio.Channel) -> Tenant:
    return dataclasses.replace(
        tenant,
        monitoring=monitoring_pb2_grpc.MonitoringServiceStub(channel),
        platform=platform_pb2_grpc.PlatformServiceStub(channel),
    )


async def _fired(tenant: Tenant, apps: set[str]) -> dict[str, pb.Alert] | None:
    found = await _alerts_by_app(tenant)
    return found if apps <= found.keys() else None


async def _failed_attempt(tenant: Tenant, channel_id: str) -> bool | None:
    reply = await tenant.monitoring.ListDeliveries(
        pb.ListDeliveriesRequest(workspace_id=WORKSPACE, channel_id=channel_id), metadata=tenant.auth
    )
    pending = [d for d in reply.deliveries if d.status == pb.DELIVERY_STATUS_PENDING and d.attempts >= 1]
    if not pending:
        return None
    assert all(d.HasField("last_error") and "127.0.0.1" not in d.last_error for d in pending)
    return True


async def _play_the_rest(stage: Stage, tenant: Tenant) -> None:
    monitoring, auth = tenant.monitoring, tenant.auth

    async def settled() -> dict[str, pb.Alert] | None:
        found = await _alerts_by_app(tenant)
        done = (
            set(APPS) <= found.keys()
            and found["flap"].resolved
            and found["held_short"].resolved
            and found["held_long"].HasField("notified_at")
        )
        return found if done else None

    found = await _poll("flap and held_short resolved, held_long released", settled, within=BREACH + HOLD_S + 60)
    short, held = found["held_short"], found["held_long"]
    assert (
        short.held_for_deploy
        and not short.HasField("notified_at")
        and short.resolved_by == pb.ALERT_RESOLUTION_RECOVERY
    )
    assert held.held_for_deploy and held.notified_at.ToNanoseconds() >= held.held_until.ToNanoseconds()
    assert held.held_until.ToNanoseconds() == (stage.t0 + DEPLOY_AT + HOLD_S) * S
    silenced = found["silenced"]
    assert silenced.silence_id and not silenced.HasField("notified_at") and not silenced.resolved

    # While plain is open, Alertmanager has it, with the four labels.
    in_alertmanager = await _poll("plain in Alertmanager", lambda: _in_alertmanager(stage, "plain"), within=15)
    assert in_alertmanager["labels"]["workspace_id"] == WORKSPACE
    assert in_alertmanager["labels"]["alertname"] == "high_memory"
    assert in_alertmanager["labels"]["severity"] == "warning"

    await monitoring.ExpireSilence(
        pb.ExpireSilenceRequest(workspace_id=WORKSPACE, silence_id=silenced.silence_id), metadata=auth
    )
    await _poll("silenced released", lambda: _released(tenant, "silenced"), within=15)
    plain = found["plain"]
    acked = await monitoring.AcknowledgeAlert(
        pb.AcknowledgeAlertRequest(workspace_id=WORKSPACE, alert_id=plain.id, note="on it"), metadata=auth
    )
    assert acked.acknowledged and acked.acknowledgement_note == "on it" and not acked.resolved
    resolved = await monitoring.ResolveAlert(
        pb.ResolveAlertRequest(workspace_id=WORKSPACE, alert_id=plain.id), metadata=auth
    )
    assert resolved.resolved_by == pb.ALERT_RESOLUTION_MANUAL and resolved.resolved_by_key_id
    await _poll("plain gone from Alertmanager", lambda: _gone_from_alertmanager(stage, "plain"), within=15)


async def _in_alertmanager(stage: Stage, app_id: str) -> dict[str, Any] | None:
    found = [a for a in await asyncio.to_thread(alerts, stage.alertmanager.url) if a["labels"].get("app_id") == app_id]
    return found[0] if found else None


async def _gone_from_alertmanager(stage: Stage, app_id: str) -> bool | None:
    return None if await _in_alertmanager(stage, app_id) else True


async def _released(tenant: Tenant, app_id: str) -> pb.Alert | None:
    alert = (await _alerts_by_app(tenant))[app_id]
    return alert if alert.HasField("notified_at") else None


async def _wait_for_every_delivery(
    tenant: Tenant, channel_id: str, received: Callable[[], list[dict[str, Any]]]
) -> dict[str, tuple[str, str]]:
    """Until the channel's log has the seven events, all delivered; returns event id → (event, app id)."""
    apps = {alert.id: app for app, alert in (await _alerts_by_app(tenant)).items()}
    events = {value: name for name, value in pb.NotificationEvent.items()}

    async def all_delivered() -> dict[str, tuple[str, str]] | None:
        reply = await tenant.monitoring.ListDeliveries(
            pb.ListDeliveriesRequest(workspace_id=WORKSPACE, channel_id=channel_id, limit=100), metadata=tenant.auth
        )
        log = list(reply.deliveries)
        if len(log) < 7 or any(d.status != pb.DELIVERY_STATUS_DELIVERED for d in log):
            return None
        assert len(log) == 7, [(events[d.event], apps.get(d.alert_id)) for d in log]
        return {d.id: (events[d.event].removeprefix("NOTIFICATION_EVENT_").lower(), apps[d.alert_id]) for d in log}

    return await _poll("every delivery delivered", all_delivered, within=30)
