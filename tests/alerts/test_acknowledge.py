"""AcknowledgeAlert, and ResolveAlert's record of the key, on a real server over alert rows written into its SQLite
file (as the engine writes them), over gRPC and through the real edge as JSON.

The test holds the evaluator's lease before the server starts, so the server's own rules engine never touches the
rows the tests write.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import platform_pb2 as ppb
from server.cluster.leader import EVALUATOR_LEASE
from server.store import open_store
from testing import alert_rows
from testing.edge import EdgeProcess, running_edge
from testing.platform import ADMIN, Tenant, new_tenant, ts
from testing.procs import ServerProcess, running_server

pytestmark = pytest.mark.timeout(60)

S = 10**9


@contextlib.asynccontextmanager
async def quiet_server(log_dir: pathlib.Path, folder: pathlib.Path, config: str = "") -> AsyncIterator[ServerProcess]:
    """A server over a new SQLite file whose evaluator lease the test holds (its rules engine never runs), with
    ``config`` as its TOML file."""
    db = folder / "monitoring.db"
    settings = folder / "monitoring.toml"
    settings.write_text(config)
    store = await open_store(str(db))
    try:
        assert await store.acquire_lease(EVALUATOR_LEASE, "the-test", 3600) is not None
    finally:
        await store.close()
    with running_server(log_dir, db, {"MONITORING_CONFIG_FILE": str(settings)}) as server:
        yield server


@pytest.fixture(scope="module")
async def served(log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with quiet_server(log_dir, tmp_path_factory.mktemp("acknowledge")) as server:
        yield server


@pytest.fixture(scope="module")
def edge(served: ServerProcess, log_dir: pathlib.Path) -> Iterator[EdgeProcess]:
    with running_edge(log_dir, served.addr) as process:
        yield process


@pytest.fixture
async def channel(served: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(served.addr) as ch:
        yield ch


@pytest.fixture
async def tenant(channel: grpc.aio.Channel) -> Tenant:
    return await new_tenant(channel)


@pytest.fixture
async def http(edge: EdgeProcess, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    """The tenant's REST client: its workspace's monitoring paths are relative to the base URL."""
    base = f"{edge.url}/api/v1/workspaces/{tenant.workspace_id}/monitoring/"
    headers = {"Authorization": f"Bearer {tenant.key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
        yield client


async def key_id(tenant: Tenant) -> str:
    keys = await tenant.platform.ListApiKeys(ppb.ListApiKeysRequest(workspace_id=tenant.workspace_id), metadata=ADMIN)
    (key,) = keys.api_keys
    return key.id


async def open_alert(served: ServerProcess, tenant: Tenant, **columns: str | int) -> str:
    app = await tenant.add_app(name="worker-service")
    alert_id = f"alr_{tenant.workspace_id}"
    alert_rows.insert_alert(served.db, alert_id=alert_id, workspace_id=tenant.workspace_id, app_id=app.id, **columns)  # type: ignore[arg-type]
    return alert_id


async def acknowledge(tenant: Tenant, alert_id: str, **fields: object) -> pb.Alert:
    request = pb.AcknowledgeAlertRequest(workspace_id=tenant.workspace_id, alert_id=alert_id, **fields)  # type: ignore[arg-type]
    return await tenant.monitoring.AcknowledgeAlert(request, metadata=tenant.auth)


async def listed(tenant: Tenant, alert_id: str) -> pb.Alert:
    reply = await tenant.monitoring.ListAlerts(
        pb.ListAlertsRequest(workspace_id=tenant.workspace_id), metadata=tenant.auth
    )
    (alert,) = [a for a in reply.alerts if a.id == alert_id]
    return alert


async def test_acknowledging_twice_returns_the_same_alert(served: ServerProcess, tenant: Tenant) -> None:
    alert_id = await open_alert(served, tenant)
    assert not (await listed(tenant, alert_id)).acknowledged

    first = await acknowledge(tenant, alert_id, note="on it")
    assert first.acknowledged and not first.resolved
    assert first.HasField("acknowledged_at") and not first.HasField("acknowledged_until")
    assert first.acknowledged_by_key_id == await key_id(tenant)
    assert first.acknowledgement_note == "on it"

    again = await acknowledge(tenant, alert_id, note="someone else")
    assert again == first  # acknowledgedAt, by and note unchanged
    assert await listed(tenant, alert_id) == first


async def test_an_acknowledgement_lapses_at_until_and_can_be_made_again(served: ServerProcess, tenant: Tenant) -> None:
    alert_id = await open_alert(served, tenant)
    until_ns = time.time_ns() + 2 * S
    first = await acknowledge(tenant, alert_id, until=ts(until_ns))
    assert first.acknowledged and first.acknowledged_until == ts(until_ns)
    assert not first.HasField("acknowledgement_note")  # no note: null

    deadline = time.monotonic() + 10
    while (await listed(tenant, alert_id)).acknowledged:
        assert time.monotonic() < deadline, "the acknowledgement did not lapse at its until"
        await _pause()
    assert time.time_ns() >= until_ns
    lapsed = await listed(tenant, alert_id)
    assert lapsed.acknowledged_at == first.acknowledged_at  # kept, no longer in effect

    renewed = await acknowledge(tenant, alert_id)
    assert renewed.acknowledged and not renewed.HasField("acknowledged_until")
    assert _ns(renewed.acknowledged_at) > _ns(first.acknowledged_at)


async def test_a_resolved_alert_is_returned_unchanged(served: ServerProcess, tenant: Tenant) -> None:
    alert_id = await open_alert(served, tenant, resolved_ns=time.time_ns() - S)
    before = await listed(tenant, alert_id)
    after = await acknowledge(tenant, alert_id, note="too late")
    assert after == before
    assert after.resolved and not after.acknowledged and not after.HasField("acknowledged_at")


async def test_until_in_the_past_and_a_long_note_are_refused_naming_the_field(
    served: ServerProcess, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    alert_id = await open_alert(served, tenant)
    for fields, field in (({"until": ts(time.time_ns() - S)}, "until"), ({"note": "x" * 1025}, "note")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await acknowledge(tenant, alert_id, **fields)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (caught.value.details() or "").startswith(f"{field}: ")

    response = await http.post(f"alerts/{alert_id}/acknowledge", json={"until": "2020-01-01T00:00:00Z"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    violations = next(d for d in error["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    assert violations["fieldViolations"][0]["field"] == "until"
    assert "must be in the future" in error["message"]
    assert not (await listed(tenant, alert_id)).HasField("acknowledged_at")


async def test_another_workspaces_alert_is_not_found_for_acknowledge_and_resolve(
    served: ServerProcess, tenant: Tenant, channel: grpc.aio.Channel
) -> None:
    alert_id = await open_alert(served, tenant)
    stranger = await new_tenant(channel)
    for call in (
        stranger.monitoring.AcknowledgeAlert(
            pb.AcknowledgeAlertRequest(workspace_id=stranger.workspace_id, alert_id=alert_id), metadata=stranger.auth
        ),
        stranger.monitoring.ResolveAlert(
            pb.ResolveAlertRequest(workspace_id=stranger.workspace_id, alert_id=alert_id), metadata=stranger.auth
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert alert_id in (caught.value.details() or "")
    # A key of another workspace naming this one: refused before any lookup.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stranger.monitoring.AcknowledgeAlert(
            pb.AcknowledgeAlertRequest(workspace_id=tenant.workspace_id, alert_id=alert_id), metadata=stranger.auth
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    untouched = await listed(tenant, alert_id)
    assert not untouched.acknowledged and not untouched.resolved


async def test_a_manual_resolution_records_the_key(served: ServerProcess, tenant: Tenant) -> None:
    alert_id = await open_alert(served, tenant)
    open_one = await listed(tenant, alert_id)
    assert not open_one.HasField("resolved_by") and not open_one.HasField("resolved_by_key_id")
    resolved = await tenant.monitoring.ResolveAlert(
        pb.ResolveAlertRequest(workspace_id=tenant.workspace_id, alert_id=alert_id), metadata=tenant.auth
    )
    assert resolved.resolved and resolved.resolved_by == pb.ALERT_RESOLUTION_MANUAL
    assert resolved.resolved_by_key_id == await key_id(tenant)
    assert await listed(tenant, alert_id) == resolved


async def test_the_lifecycle_as_json_through_the_edge(
    served: ServerProcess, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    now = time.time_ns()
    held_until, notified = now + 60 * S, now - 5 * S
    alert_id = await open_alert(
        served, tenant, silence_id="sil_x", held_until_ns=held_until, notified_ns=notified, triggered_ns=now - 10 * S
    )
    (body,) = (await http.get("alerts")).json()
    assert body["id"] == alert_id
    assert {key: body[key] for key in NULL_WHILE_OPEN} == dict.fromkeys(NULL_WHILE_OPEN)
    assert (body["acknowledged"], body["silenceId"], body["heldForDeploy"]) == (False, "sil_x", True)
    assert body["heldUntil"].endswith("Z") and body["notifiedAt"].endswith("Z")

    response = await http.post(f"alerts/{alert_id}/acknowledge", json={"note": "looking"})
    assert response.status_code == 200, response.text
    acked = response.json()
    assert (acked["acknowledged"], acked["acknowledgementNote"]) == (True, "looking")
    assert acked["acknowledgedByKeyId"] == await key_id(tenant)
    assert acked["acknowledgedAt"].endswith("Z") and acked["acknowledgedUntil"] is None
    assert set(acked) == set(body)

    resolved = (await http.patch(f"alerts/{alert_id}/resolve")).json()
    assert (resolved["resolved"], resolved["resolvedBy"]) == (True, "manual")
    assert resolved["resolvedByKeyId"] == acked["acknowledgedByKeyId"]


NULL_WHILE_OPEN = (
    "resolvedAt",
    "resolvedBy",
    "resolvedByKeyId",
    "acknowledgedAt",
    "acknowledgedByKeyId",
    "acknowledgementNote",
    "acknowledgedUntil",
)


def _ns(value: object) -> int:
    return value.seconds * S + value.nanos  # type: ignore[attr-defined]


async def _pause() -> None:
    await asyncio.sleep(0.2)
