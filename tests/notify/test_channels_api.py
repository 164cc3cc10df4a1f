"""Notification channels end to end: CreateNotificationChannel … ListDeliveries on a real server, over gRPC and
through the real edge as JSON; the secret shown once, the checks naming the field, private destinations refused
by default, another workspace's channels, the cap, and a test event to a real receiver on loopback."""

from __future__ import annotations

import dataclasses
import http.server
import pathlib
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.notify import signing
from testing.edge import EdgeProcess, running_edge
from testing.platform import Tenant, new_tenant
from testing.procs import ServerProcess, free_port
from tests.alerts.test_acknowledge import quiet_server

pytestmark = pytest.mark.timeout(60)

MAX_CHANNELS = 3  # the served server's [notify] max_channels_per_workspace
PUBLIC_URL = "https://hooks.example.com/dooor"


@dataclasses.dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook receiver on loopback: answers every POST with ``status`` and keeps what it got."""

    def __init__(self) -> None:
        self.status = 200
        self.received: queue.Queue[Received] = queue.Queue()
        super().__init__(("127.0.0.1", free_port()), _ReceiverHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hook"


class _ReceiverHandler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.received.put(Received(self.path, dict(self.headers.items()), body))
        self.send_response(self.server.status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
async def served(log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    # Loopback receivers are private destinations: allowed here, as `make run` does.
    config = f"[notify]\nallow_private_destinations = true\nmax_channels_per_workspace = {MAX_CHANNELS}\n"
    async with quiet_server(log_dir, tmp_path_factory.mktemp("channels"), config) as server:
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
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=20) as client:
        yield client


def webhook(**fields: object) -> pb.NotificationChannel:
    defaults: dict[str, object] = {"name": "ops", "kind": pb.CHANNEL_KIND_WEBHOOK, "url": PUBLIC_URL}
    return pb.NotificationChannel(**{**defaults, **fields})  # type: ignore[arg-type]


async def create(tenant: Tenant, channel: pb.NotificationChannel) -> pb.NotificationChannel:
    request = pb.CreateNotificationChannelRequest(workspace_id=tenant.workspace_id, channel=channel)
    return await tenant.monitoring.CreateNotificationChannel(request, metadata=tenant.auth)


async def get(tenant: Tenant, channel_id: str) -> pb.NotificationChannel:
    request = pb.GetNotificationChannelRequest(workspace_id=tenant.workspace_id, channel_id=channel_id)
    return await tenant.monitoring.GetNotificationChannel(request, metadata=tenant.auth)


async def update(tenant: Tenant, channel_id: str, channel: pb.NotificationChannel) -> pb.NotificationChannel:
    request = pb.UpdateNotificationChannelRequest(
        workspace_id=tenant.workspace_id, channel_id=channel_id, channel=channel
    )
    return await tenant.monitoring.UpdateNotificationChannel(request, metadata=tenant.auth)


async def delete(tenant: Tenant, channel_id: str) -> pb.DeleteNotificationChannelResponse:
    request = pb.DeleteNotificationChannelRequest(workspace_id=tenant.workspace_id, channel_id=channel_id)
    return await tenant.monitoring.DeleteNotificationChannel(request, metadata=tenant.auth)


async def listed(tenant: Tenant) -> list[pb.NotificationChannel]:
    request = pb.ListNotificationChannelsRequest(workspace_id=tenant.workspace_id)
    return list((await tenant.monitoring.ListNotificationChannels(request, metadata=tenant.auth)).channels)


ALL_EVENTS = [
    pb.NOTIFICATION_EVENT_FIRED,
    pb.NOTIFICATION_EVENT_ACKNOWLEDGED,
    pb.NOTIFICATION_EVENT_RESOLVED,
    pb.NOTIFICATION_EVENT_REMINDER,
]


async def test_create_shows_the_secret_once_then_get_list_update_delete(tenant: Tenant) -> None:
    created = await create(tenant, webhook())
    assert created.id.startswith("chn_") and created.signing_secret.startswith("whsec_")
    assert len(created.signing_secret) == len("whsec_") + 43  # 32 bytes, URL-safe base64 without padding
    assert (created.format, list(created.events), created.reminder_interval_seconds) == (
        pb.PAYLOAD_FORMAT_SERVICE,
        ALL_EVENTS,
        0,
    )
    fetched = await get(tenant, created.id)
    assert not fetched.HasField("signing_secret")
    expected = pb.NotificationChannel()
    expected.CopyFrom(created)
    expected.ClearField("signing_secret")
    assert fetched == expected

    second = await create(
        tenant,
        webhook(
            name="slack",
            format=pb.PAYLOAD_FORMAT_SLACK,
            events=[pb.NOTIFICATION_EVENT_FIRED],
            reminder_interval_seconds=3600,
        ),
    )
    assert [c.id for c in await listed(tenant)] == [created.id, second.id]  # oldest first
    assert not any(c.HasField("signing_secret") for c in await listed(tenant))

    changed = await update(
        tenant, created.id, webhook(name="renamed", url="https://other.example.com/x", reminder_interval_seconds=60)
    )
    assert (changed.name, changed.url, changed.reminder_interval_seconds) == (
        "renamed",
        "https://other.example.com/x",
        60,
    )
    assert (changed.kind, changed.created_at) == (created.kind, created.created_at)
    assert not changed.HasField("signing_secret")
    # kind unset keeps it
    kept = await update(tenant, created.id, pb.NotificationChannel(name="again", url=PUBLIC_URL))
    assert kept.kind == pb.CHANNEL_KIND_WEBHOOK

    assert await delete(tenant, created.id) == pb.DeleteNotificationChannelResponse()
    assert [c.id for c in await listed(tenant)] == [second.id]
    for call in (get(tenant, created.id), delete(tenant, created.id)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_alertmanager_channel_takes_fired_and_resolved_only(tenant: Tenant) -> None:
    created = await create(tenant, webhook(kind=pb.CHANNEL_KIND_ALERTMANAGER, url="https://am.example.com"))
    assert list(created.events) == [pb.NOTIFICATION_EVENT_FIRED, pb.NOTIFICATION_EVENT_RESOLVED]
    assert created.kind == pb.CHANNEL_KIND_ALERTMANAGER
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await update(tenant, created.id, webhook(url="https://am.example.com"))  # kind: webhook
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("channel.kind: cannot be changed")


async def test_bad_channels_are_refused_naming_the_field(tenant: Tenant) -> None:
    am = pb.CHANNEL_KIND_ALERTMANAGER
    cases = [
        (webhook(kind=0), "channel.kind", "unknown value 0"),
        (webhook(kind=9), "channel.kind", "unknown value 9"),
        (webhook(name=""), "channel.name", "is required"),
        (webhook(name="x" * 101), "channel.name", "at most 100 characters"),
        (webhook(url="ftp://example.com"), "channel.url", "http or https"),
        (webhook(url="https://user:pw@example.com"), "channel.url", "user name or password"),
        (webhook(format=7), "channel.format", "unknown value 7"),
        (webhook(kind=am, format=pb.PAYLOAD_FORMAT_SLACK), "channel.format", "webhook channels only"),
        (webhook(events=[9]), "channel.events", "unknown value 9"),
        (webhook(events=[1, 1]), "channel.events", "listed twice"),
        (webhook(events=[pb.NOTIFICATION_EVENT_TEST]), "channel.events", "TestNotificationChannel"),
        (webhook(kind=am, events=[pb.NOTIFICATION_EVENT_REMINDER]), "channel.events", "not sent to alertmanager"),
        (webhook(reminder_interval_seconds=59), "channel.reminder_interval_seconds", "between 60 and 604800"),
        (webhook(reminder_interval_seconds=604801), "channel.reminder_interval_seconds", "between 60 and 604800"),
        (webhook(reminder_interval_seconds=-1), "channel.reminder_interval_seconds", "between 60 and 604800"),
        (webhook(kind=am, reminder_interval_seconds=60), "channel.reminder_interval_seconds", "must be 0"),
    ]
    for message, field, says in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await create(tenant, message)
        details = caught.value.details() or ""
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert details.startswith(f"{field}: ") and says in details, details
    assert await listed(tenant) == []


async def test_private_destinations_are_refused_by_default(tenant: Tenant, server: ServerProcess) -> None:
    # `server`: the session's server, with the default settings.
    async with grpc.aio.insecure_channel(server.addr) as default_channel:
        outsider = await new_tenant(default_channel)
        for url in ("http://127.0.0.1:8080/hook", "http://10.0.0.5/hook", "http://[::1]/hook"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await create(outsider, webhook(url=url))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (caught.value.details() or "").startswith("channel.url: must point at a public address")
        assert (await create(outsider, webhook())).url == PUBLIC_URL


async def test_another_workspaces_channel_is_not_found(tenant: Tenant, channel: grpc.aio.Channel) -> None:
    created = await create(tenant, webhook())
    stranger = await new_tenant(channel)
    ws, cid = stranger.workspace_id, created.id
    m = stranger.monitoring
    calls = (
        (m.GetNotificationChannel, pb.GetNotificationChannelRequest(workspace_id=ws, channel_id=cid)),
        (
            m.UpdateNotificationChannel,
            pb.UpdateNotificationChannelRequest(workspace_id=ws, channel_id=cid, channel=webhook()),
        ),
        (m.DeleteNotificationChannel, pb.DeleteNotificationChannelRequest(workspace_id=ws, channel_id=cid)),
        (m.TestNotificationChannel, pb.TestNotificationChannelRequest(workspace_id=ws, channel_id=cid)),
        (m.ListDeliveries, pb.ListDeliveriesRequest(workspace_id=ws, channel_id=cid)),
    )
    for method, request in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await method(request, metadata=stranger.auth)  # type: ignore[operator]
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND, request
        assert cid in (caught.value.details() or "")
    assert [c.id for c in await listed(tenant)] == [created.id]


async def test_the_cap_on_channels(tenant: Tenant) -> None:
    made = [await create(tenant, webhook(name=f"c{i}")) for i in range(MAX_CHANNELS)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(tenant, webhook())
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"{MAX_CHANNELS} notification channels" in (caught.value.details() or "")
    await delete(tenant, made[0].id)
    await create(tenant, webhook())


async def test_a_test_event_reaches_a_real_receiver_and_is_logged(tenant: Tenant, receiver: Receiver) -> None:
    created = await create(tenant, webhook(url=receiver.url))
    request = pb.TestNotificationChannelRequest(workspace_id=tenant.workspace_id, channel_id=created.id)
    delivery = await tenant.monitoring.TestNotificationChannel(request, metadata=tenant.auth)
    assert delivery.id.startswith("evt_") and delivery.channel_id == created.id
    assert (delivery.event, delivery.status, delivery.attempts) == (
        pb.NOTIFICATION_EVENT_TEST,
        pb.DELIVERY_STATUS_DELIVERED,
        1,
    )
    assert not delivery.HasField("alert_id") and not delivery.HasField("next_attempt_at")
    assert delivery.last_status_code == 200 and not delivery.HasField("last_error")

    got = receiver.received.get(timeout=5)
    assert got.path == "/hook"
    headers = {name.lower(): value for name, value in got.headers.items()}
    assert headers[signing.ID_HEADER.lower()] == delivery.id
    assert signing.verify(created.signing_secret, headers, got.body, now=int(time.time()))

    log = pb.ListDeliveriesRequest(workspace_id=tenant.workspace_id, channel_id=created.id)
    assert list((await tenant.monitoring.ListDeliveries(log, metadata=tenant.auth)).deliveries) == [delivery]
    failed_only = pb.ListDeliveriesRequest(
        workspace_id=tenant.workspace_id, channel_id=created.id, status=pb.DELIVERY_STATUS_FAILED
    )
    assert not (await tenant.monitoring.ListDeliveries(failed_only, metadata=tenant.auth)).deliveries


async def test_channels_over_rest(http: httpx.AsyncClient, receiver: Receiver) -> None:
    created = await http.post("channels", json={"name": "ops", "kind": "webhook", "url": receiver.url})
    assert created.status_code == 200, created.text
    body = created.json()
    assert set(body) == {
        "id",
        "name",
        "kind",
        "url",
        "format",
        "events",
        "reminderIntervalSeconds",
        "signingSecret",
        "createdAt",
    }
    assert (body["format"], body["events"]) == ("service", ["fired", "acknowledged", "resolved", "reminder"])
    assert body["signingSecret"].startswith("whsec_")
    fetched = (await http.get(f"channels/{body['id']}")).json()
    assert fetched["signingSecret"] is None and fetched["id"] == body["id"]
    assert (await http.get("channels")).json()["channels"] == [fetched]

    patched = await http.put(f"channels/{body['id']}", json={"name": "ops-2", "url": receiver.url, "format": "slack"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["format"], patched.json()["signingSecret"]) == (
        "ops-2",
        "slack",
        None,
    )

    tested = await http.post(f"channels/{body['id']}/test", json={})
    assert tested.status_code == 200, tested.text
    assert (tested.json()["event"], tested.json()["status"], tested.json()["alertId"]) == ("test", "delivered", None)
    deliveries = (await http.get(f"channels/{body['id']}/deliveries", params={"status": "delivered"})).json()
    assert [d["id"] for d in deliveries["deliveries"]] == [tested.json()["id"]]

    bad = await http.post("channels", json={"name": "x", "kind": "webhook", "url": receiver.url, "format": "xml"})
    assert bad.status_code == 400  # an unknown enum string: refused by the edge, naming the field
    bad = await http.post("channels", json={"name": "x", "url": receiver.url})
    assert bad.status_code == 400
    violations = next(d for d in bad.json()["error"]["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    assert violations["fieldViolations"][0]["field"] == "channel.kind"

    assert (await http.delete(f"channels/{body['id']}")).json() == {}
    assert (await http.get(f"channels/{body['id']}")).status_code == 404
