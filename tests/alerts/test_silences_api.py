"""Silences end to end: CreateSilence … ExpireSilence on a real server, over gRPC and through the real edge as JSON;
their states on the clock, the checks naming the field, another workspace's silences, the live-silence cap."""

from __future__ import annotations

import pathlib
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing.edge import EdgeProcess, running_edge
from testing.platform import Tenant, new_tenant, ts
from testing.procs import ServerProcess
from tests.alerts.test_acknowledge import key_id, quiet_server

pytestmark = pytest.mark.timeout(60)

S = 10**9
HOUR = 3600 * S
MAX_LIVE = 4  # the served server's [notify] max_live_silences_per_workspace


@pytest.fixture(scope="module")
async def served(log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    config = f"[notify]\nmax_live_silences_per_workspace = {MAX_LIVE}\n"
    async with quiet_server(log_dir, tmp_path_factory.mktemp("silences"), config) as server:
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
    base = f"{edge.url}/api/v1/workspaces/{tenant.workspace_id}/monitoring/"
    headers = {"Authorization": f"Bearer {tenant.key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
        yield client


async def create(tenant: Tenant, **fields: object) -> pb.Silence:
    request = pb.CreateSilenceRequest(workspace_id=tenant.workspace_id, silence=pb.Silence(**fields))  # type: ignore[arg-type]
    return await tenant.monitoring.CreateSilence(request, metadata=tenant.auth)


async def listed(tenant: Tenant, **fields: object) -> list[pb.Silence]:
    request = pb.ListSilencesRequest(workspace_id=tenant.workspace_id, **fields)  # type: ignore[arg-type]
    return list((await tenant.monitoring.ListSilences(request, metadata=tenant.auth)).silences)


async def expire(tenant: Tenant, silence_id: str) -> pb.Silence:
    request = pb.ExpireSilenceRequest(workspace_id=tenant.workspace_id, silence_id=silence_id)
    return await tenant.monitoring.ExpireSilence(request, metadata=tenant.auth)


async def update(tenant: Tenant, silence_id: str, **fields: object) -> pb.Silence:
    silence = pb.Silence(**fields)  # type: ignore[arg-type]
    request = pb.UpdateSilenceRequest(workspace_id=tenant.workspace_id, silence_id=silence_id, silence=silence)
    return await tenant.monitoring.UpdateSilence(request, metadata=tenant.auth)


def ids(silences: list[pb.Silence]) -> list[str]:
    return [s.id for s in silences]


async def test_create_get_list_update_and_expire(tenant: Tenant) -> None:
    app = await tenant.add_app()
    before = time.time_ns()
    active = await create(tenant, app_id=app.id, alert_types=[pb.ALERT_TYPE_HIGH_CPU], ends_at=ts(before + HOUR))
    assert active.id.startswith("sil_") and active.state == pb.SILENCE_STATE_ACTIVE
    assert before <= _ns(active.starts_at) <= time.time_ns()  # starts_at unset: now
    assert active.created_by_key_id == await key_id(tenant) and active.HasField("created_at")
    assert (active.app_id, list(active.alert_types), active.comment) == (app.id, [pb.ALERT_TYPE_HIGH_CPU], "")

    pending = await create(tenant, starts_at=ts(before + HOUR), ends_at=ts(before + 2 * HOUR), comment="upgrade")
    assert pending.state == pb.SILENCE_STATE_PENDING and pending.app_id == "" and not pending.alert_types
    get = pb.GetSilenceRequest(workspace_id=tenant.workspace_id, silence_id=pending.id)
    assert await tenant.monitoring.GetSilence(get, metadata=tenant.auth) == pending
    assert ids(await listed(tenant)) == [pending.id, active.id]  # newest start first

    # Replaces matchers, end and comment; starts_at unset keeps the start.
    changed = await update(tenant, active.id, ends_at=ts(before + 3 * HOUR), comment="longer")
    assert (changed.starts_at, changed.ends_at, changed.comment) == (active.starts_at, ts(before + 3 * HOUR), "longer")
    assert (changed.app_id, list(changed.alert_types)) == ("", [])  # every app, every type now
    assert changed.state == pb.SILENCE_STATE_ACTIVE and changed.created_by_key_id == active.created_by_key_id

    expired = await expire(tenant, active.id)
    assert expired.state == pb.SILENCE_STATE_EXPIRED and _ns(expired.ends_at) <= time.time_ns()
    assert await expire(tenant, active.id) == expired  # again: unchanged
    ended_pending = await expire(tenant, pending.id)  # a pending one ends before it started
    assert ended_pending.state == pb.SILENCE_STATE_EXPIRED
    assert _ns(ended_pending.starts_at) <= _ns(ended_pending.ends_at)

    # Kept, listed, and fixed.
    assert set(ids(await listed(tenant))) == {active.id, pending.id}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await update(tenant, active.id, ends_at=ts(time.time_ns() + HOUR))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expired" in (caught.value.details() or "")


async def test_the_state_filter_and_the_limit(tenant: Tenant) -> None:
    now = time.time_ns()
    active = [await create(tenant, ends_at=ts(now + HOUR)) for _ in range(2)]
    pending = await create(tenant, starts_at=ts(now + HOUR), ends_at=ts(now + 2 * HOUR))
    done = await create(tenant, starts_at=ts(now + 10 * HOUR), ends_at=ts(now + 11 * HOUR))
    await expire(tenant, done.id)

    assert ids(await listed(tenant, state=pb.SILENCE_STATE_PENDING)) == [pending.id]
    assert set(ids(await listed(tenant, state=pb.SILENCE_STATE_ACTIVE))) == {s.id for s in active}
    assert ids(await listed(tenant, state=pb.SILENCE_STATE_EXPIRED)) == [done.id]
    assert len(await listed(tenant, state=pb.SILENCE_STATE_ACTIVE, limit=1)) == 1
    assert len(await listed(tenant, limit=2)) == 2 and len(await listed(tenant)) == 4
    for fields, field in (({"limit": 501}, "limit"), ({"state": 9}, "state")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await listed(tenant, **fields)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (caught.value.details() or "").startswith(f"{field}: ")


async def test_bad_silences_are_refused_naming_the_field(tenant: Tenant, channel: grpc.aio.Channel) -> None:
    now = time.time_ns()
    stranger = await new_tenant(channel)
    foreign_app = await stranger.add_app()
    later = ts(now + HOUR)
    cases = [
        ({}, "silence.ends_at", "is required"),
        ({"ends_at": ts(now - S)}, "silence.ends_at", "must be in the future"),
        ({"starts_at": later, "ends_at": ts(now + 30 * 60 * S)}, "silence.ends_at", "must be after starts_at"),
        ({"ends_at": ts(now + 367 * 24 * HOUR)}, "silence.ends_at", "at most 366 days"),
        ({"ends_at": later, "alert_types": [7]}, "silence.alert_types", "unknown value 7"),
        ({"ends_at": later, "alert_types": [1, 1]}, "silence.alert_types", "listed twice"),
        ({"ends_at": later, "comment": "x" * 1025}, "silence.comment", "at most 1024 characters"),
        ({"ends_at": later, "app_id": "bad id"}, "silence.app_id", "not a valid id"),
        ({"ends_at": later, "app_id": "app_nowhere"}, "silence.app_id", "not an app of this workspace"),
        ({"ends_at": later, "app_id": foreign_app.id}, "silence.app_id", "not an app of this workspace"),
    ]
    for fields, field, says in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await create(tenant, **fields)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert (caught.value.details() or "").startswith(f"{field}: ") and says in (caught.value.details() or "")
    assert await listed(tenant) == []


async def test_another_workspaces_silence_is_not_found(tenant: Tenant, channel: grpc.aio.Channel) -> None:
    silence = await create(tenant, ends_at=ts(time.time_ns() + HOUR))
    stranger = await new_tenant(channel)
    ws = stranger.workspace_id
    for method, request in (
        (stranger.monitoring.GetSilence, pb.GetSilenceRequest(workspace_id=ws, silence_id=silence.id)),
        (stranger.monitoring.ExpireSilence, pb.ExpireSilenceRequest(workspace_id=ws, silence_id=silence.id)),
        (
            stranger.monitoring.UpdateSilence,
            pb.UpdateSilenceRequest(
                workspace_id=ws, silence_id=silence.id, silence=pb.Silence(ends_at=ts(time.time_ns() + HOUR))
            ),
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await method(request, metadata=stranger.auth)  # type: ignore[operator]
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert silence.id in (caught.value.details() or "")
    assert await listed(stranger) == []
    assert (await listed(tenant))[0].state == pb.SILENCE_STATE_ACTIVE


async def test_the_cap_counts_live_silences_only(tenant: Tenant) -> None:
    now = time.time_ns()
    live = [await create(tenant, ends_at=ts(now + HOUR)) for _ in range(MAX_LIVE)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(tenant, ends_at=ts(now + HOUR))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"{MAX_LIVE} pending or active silences" in (caught.value.details() or "")
    await expire(tenant, live[0].id)
    assert (await create(tenant, ends_at=ts(now + HOUR))).state == pb.SILENCE_STATE_ACTIVE


async def test_silences_over_rest(http: httpx.AsyncClient, tenant: Tenant) -> None:
    ends, later = _rfc3339(time.time_ns() + 24 * HOUR), _rfc3339(time.time_ns() + 48 * HOUR)
    created = await http.post("silences", json={"endsAt": ends, "alertTypes": ["high_memory"]})
    assert created.status_code == 200, created.text
    body = created.json()
    assert set(body) == {
        "id",
        "appId",
        "alertTypes",
        "startsAt",
        "endsAt",
        "comment",
        "createdByKeyId",
        "createdAt",
        "state",
    }
    assert (body["alertTypes"], body["endsAt"], body["state"]) == (["high_memory"], ends, "active")

    listed_body = (await http.get("silences", params={"state": "active"})).json()
    assert [s["id"] for s in listed_body["silences"]] == [body["id"]]
    patched = await http.put(
        f"silences/{body['id']}",
        json={"appId": body["appId"], "alertTypes": body["alertTypes"], "endsAt": later, "comment": "why"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["appId"] == body["appId"] and patched.json()["alertTypes"] == body["alertTypes"]
    assert (patched.json()["comment"], patched.json()["startsAt"], patched.json()["endsAt"]) == (
        "why",
        body["startsAt"],
        later,
    )
    deleted = await http.delete(f"silences/{body['id']}")
    assert deleted.status_code == 200 and deleted.json()["state"] == "expired"
    assert (await http.get(f"silences/{body['id']}")).json()["state"] == "expired"

    bad = await http.post("silences", json={"endsAt": "2020-01-01T00:00:00Z"})
    assert bad.status_code == 400
    violations = next(d for d in bad.json()["error"]["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    assert violations["fieldViolations"][0]["field"] == "silence.ends_at"
    assert (await http.get("silences/sil_nope")).status_code == 404


def _ns(value: object) -> int:
    return value.seconds * S + value.nanos  # type: ignore[attr-defined]


def _rfc3339(ns: int) -> str:
    """Whole seconds, as the edge renders a time without a fraction."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // S))
