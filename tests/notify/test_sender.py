"""The sender against a real webhook receiver process and a real SQLite store: retries to delivery, final
failures, refused destinations, test sends, reminders."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pathlib
from collections.abc import AsyncIterator, Iterator

import pytest

from server.convert import now_ns
from server.notify import sender, signing
from server.notify.sender import USER_AGENT, Notifier
from server.states import DeliveryStatus, NotificationEvent
from server.store.base import LeaseLost
from server.store.records import Attempt, Delivery, Fence, Silence
from server.store.sqlite import SqliteStore, open_sqlite
from testing.procs import free_port
from testing.webhook_receiver import ReceiverProcess, running_receiver
from tests.notify import records, stage
from tests.notify.stage import APP_NAME, FAST, WORKSPACE, add_channel, fire, open_store, running, until

S = 10**9


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverProcess]:
    """One receiver for the module: /hook answers 503 twice per event, then 200; /status/<code> that code."""
    with running_receiver(tmp_path_factory.mktemp("receiver"), records.SECRET, fail_first=2) as process:
        yield process


@pytest.fixture
async def store(tmp_path: pathlib.Path) -> AsyncIterator[SqliteStore]:
    opened = await open_store(tmp_path)
    yield opened
    await opened.close()


async def _settled(store: SqliteStore, channel_id: str, count: int = 1) -> list[Delivery]:
    """The channel's deliveries once ``count`` of them are no longer pending."""

    async def check() -> list[Delivery] | None:
        found = await store.list_deliveries(WORKSPACE, channel_id, limit=100)
        done = [d for d in found if d.status != DeliveryStatus.PENDING]
        return found if len(done) >= count else None

    return await until(check, f"{count} settled deliveries of {channel_id}")


async def test_a_delivery_answered_503_twice_is_delivered_on_the_third_attempt(
    store: SqliteStore, receiver: ReceiverProcess
) -> None:
    channel = await add_channel(store, receiver.url + "/hook/retries")
    alert = await fire(store)
    async with running(store):
        [delivery] = await _settled(store, channel.id)
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 3
    assert delivery.event == NotificationEvent.FIRED and delivery.alert_id == alert.id
    assert delivery.last_status_code == 200 and delivery.last_error is None and delivery.next_attempt_ns is None
    seen = receiver.requests_for(delivery.id)
    assert [entry["status"] for entry in seen] == [503, 503, 200]
    assert all(entry["signature_ok"] for entry in seen)
    assert len({entry["body"] for entry in seen}) == 1  # every retry carries the first attempt's bytes
    headers = seen[0]["headers"]
    assert headers["content-type"] == "application/json" and headers["user-agent"] == USER_AGENT
    body = json.loads(seen[0]["body"])
    assert body["id"] == delivery.id and body["event"] == "fired" and body["alert"]["appName"] == APP_NAME


async def test_a_400_fails_at_once(store: SqliteStore, receiver: ReceiverProcess) -> None:
    channel = await add_channel(store, receiver.url + "/status/400/bad")
    await fire(store)
    async with running(store):
        [delivery] = await _settled(store, channel.id)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert delivery.last_status_code == 400 and delivery.last_error == "HTTP 400"
    assert len(receiver.requests_for(delivery.id)) == 1


async def test_a_redirect_is_not_followed(store: SqliteStore, receiver: ReceiverProcess) -> None:
    channel = await add_channel(store, receiver.url + "/status/307/elsewhere")
    await fire(store)
    async with running(store):
        [delivery] = await _settled(store, channel.id)
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_status_code == 307


async def test_a_private_destination_is_refused_without_a_request(
    store: SqliteStore, receiver: ReceiverProcess
) -> None:
    # Written straight to the store: the API would refuse this URL already (check_url).
    channel = await add_channel(store, receiver.url + "/ok/refused")
    await fire(store)
    async with running(store, dataclasses.replace(FAST, allow_private_destinations=False)):
        [delivery] = await _settled(store, channel.id)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert delivery.last_status_code is None and delivery.last_error == "the destination is not a public address"
    assert receiver.requests_for(delivery.id) == []


async def test_a_url_the_client_cannot_send_to_fails_the_delivery_instead_of_blocking_the_queue(
    store: SqliteStore, receiver: ReceiverProcess
) -> None:
    # Written straight to the store (check_url refuses it now): an invalid A-label raised out of the attempt, left
    # the row pending at the head of the queue and starved every other delivery.
    broken = await add_channel(store, "http://xn--zz.com/hook", channel_id="chn_broken")
    fine = await add_channel(store, receiver.url + "/ok/after-broken", channel_id="chn_fine")
    await fire(store)
    async with running(store):
        [failed] = await _settled(store, broken.id)
        [delivered] = await _settled(store, fine.id)
    assert failed.status == DeliveryStatus.FAILED and failed.last_error == "invalid URL" and failed.attempts == 1
    assert delivered.status == DeliveryStatus.DELIVERED


async def test_a_network_error_is_retried_and_told_in_plain_words(store: SqliteStore) -> None:
    channel = await add_channel(store, f"http://127.0.0.1:{free_port()}/nobody")
    await fire(store)
    async with running(store):

        async def retried() -> Delivery | None:
            [found] = await store.list_deliveries(WORKSPACE, channel.id, limit=10)
            return found if found.attempts >= 2 else None

        delivery = await until(retried, "two attempts")
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_ns is not None
    assert delivery.last_error == "connection refused" and delivery.last_status_code is None


async def test_a_slow_receiver_times_out_and_is_retried(store: SqliteStore, receiver: ReceiverProcess) -> None:
    channel = await add_channel(store, receiver.url + "/sleep/3/slow")
    await fire(store)
    async with running(store, dataclasses.replace(FAST, timeout_s=0.3)):

        async def attempted() -> Delivery | None:
            [found] = await store.list_deliveries(WORKSPACE, channel.id, limit=10)
            return found if found.attempts >= 1 else None

        delivery = await until(attempted, "one attempt")
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_error == "timed out after 0.3 s"


async def test_a_lost_lease_ends_the_sender_and_records_nothing(store: SqliteStore, receiver: ReceiverProcess) -> None:
    channel = await add_channel(store, receiver.url + "/ok/lease")
    await fire(store)
    lease = await store.acquire_lease("evaluator", "replica-b", 60.0)
    assert lease is not None
    stale = Fence("evaluator", "replica-a", lease.epoch)  # not the holder: its term is over
    notifier = Notifier(store, FAST, stale)
    try:
        with pytest.raises(LeaseLost):
            await asyncio.wait_for(notifier.run(), timeout=15)
    finally:
        await notifier.close()
    [delivery] = await store.list_deliveries(WORKSPACE, channel.id, limit=10)
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0


async def test_send_test_attempts_once_and_records_the_outcome(store: SqliteStore, receiver: ReceiverProcess) -> None:
    notifier = Notifier(store, FAST)
    try:
        good = await notifier.send_test(await add_channel(store, receiver.url + "/ok/test"), now_ns())
        failing = await add_channel(store, receiver.url + "/status/503/test", channel_id="chn_2")
        bad = await notifier.send_test(failing, now_ns())
        # Not retried: no round finds it due, however late.
        assert await notifier.send_due(now_ns() + 3600 * S) == 0
    finally:
        await notifier.close()
    assert good.event == NotificationEvent.TEST and good.alert_id is None
    assert good.status == DeliveryStatus.DELIVERED and good.attempts == 1 and good.last_status_code == 200
    assert bad.status == DeliveryStatus.FAILED and bad.attempts == 1 and bad.last_error == "HTTP 503"
    assert bad.next_attempt_ns is None
    [seen] = receiver.requests_for(good.id)
    assert seen["signature_ok"] and json.loads(seen["body"])["event"] == "test"
    assert len(receiver.requests_for(bad.id)) == 1


async def test_signatures_verify_with_the_service_recipe_too(store: SqliteStore, receiver: ReceiverProcess) -> None:
    notifier = Notifier(store, FAST)
    try:
        sent = await notifier.send_test(await add_channel(store, receiver.url + "/ok/both"), now_ns())
    finally:
        await notifier.close()
    [seen] = receiver.requests_for(sent.id)
    now = int(seen["received_at"])
    assert signing.verify(records.SECRET, seen["headers"], seen["body"], now=now)


async def test_reminders_follow_the_interval_and_stop_while_acknowledged_or_silenced(store: SqliteStore) -> None:
    t0 = now_ns()
    reminded = await add_channel(store, "http://127.0.0.1:9/unused", reminder_s=60)
    await add_channel(store, "http://127.0.0.1:9/unused", channel_id="chn_quiet")  # no reminders asked
    alert = await fire(store, at_ns=t0)
    notifier = Notifier(store, FAST)

    async def delivered() -> None:
        # A reminder still pending is never joined by another (the store checks): mark them sent, as a round would.
        for d in await store.list_deliveries(WORKSPACE, reminded.id, status=DeliveryStatus.PENDING, limit=100):
            await store.record_attempt(d.id, Attempt(d.created_ns, DeliveryStatus.DELIVERED, None, 200, None, b"{}"))

    try:
        assert await notifier.queue_reminders(t0 + 59 * S) == 0
        assert await notifier.queue_reminders(t0 + 60 * S) == 1
        await delivered()
        assert await notifier.queue_reminders(t0 + 61 * S) == 0  # counted from that reminder now
        assert await notifier.queue_reminders(t0 + 120 * S) == 1
        await delivered()
        # Acknowledged until t0 + 300 s: nothing meanwhile; reminders resume once it lapses.
        acked = await store.acknowledge_alert(WORKSPACE, alert.id, t0 + 130 * S, "key_1", "", t0 + 300 * S)
        assert acked is not None and acked.acknowledged_at(t0 + 200 * S)
        assert await notifier.queue_reminders(t0 + 250 * S) == 0
        assert await notifier.queue_reminders(t0 + 301 * S) == 1
        await delivered()
        # A silence of its app, active now, stops them too.
        silence = Silence("sil_1", WORKSPACE, stage.APP, (), t0 + 310 * S, t0 + 900 * S, "", "key_1", t0)
        await store.create_silence(silence)
        assert await notifier.queue_reminders(t0 + 400 * S) == 0
        assert await notifier.queue_reminders(t0 + 901 * S) == 1
    finally:
        await notifier.close()
    events = [d.event for d in await store.list_deliveries(WORKSPACE, reminded.id, limit=100)]
    assert events.count(NotificationEvent.REMINDER) == 4


async def test_a_pending_reminder_is_not_joined_by_another(store: SqliteStore) -> None:
    t0 = now_ns()
    reminded = await add_channel(store, "http://127.0.0.1:9/unused", reminder_s=60)
    await fire(store, at_ns=t0)
    notifier = Notifier(store, FAST)
    try:
        for minutes in range(1, 6):  # a receiver down for five reminder intervals
            await notifier.queue_reminders(t0 + minutes * 60 * S)
    finally:
        await notifier.close()
    events = [d.event for d in await store.list_deliveries(WORKSPACE, reminded.id, limit=100)]
    assert events.count(NotificationEvent.REMINDER) == 1
    quiet = [d.event for d in await store.list_deliveries(WORKSPACE, "chn_quiet", limit=100)]
    assert NotificationEvent.REMINDER not in quiet


async def test_a_delivery_queued_before_a_restart_is_sent_after_it(
    tmp_path: pathlib.Path, receiver: ReceiverProcess
) -> None:
    first = await open_store(tmp_path)
    channel = await add_channel(first, receiver.url + "/ok/restart")
    await fire(first)
    await first.close()  # the process "dies" after the alert change, before any send
    second = await open_sqlite(str(tmp_path / "monitoring.db"))
    try:
        async with running(second):
            [delivery] = await _settled(second, channel.id)
    finally:
        await second.close()
    assert delivery.status == DeliveryStatus.DELIVERED and len(receiver.requests_for(delivery.id)) == 1


@pytest.mark.parametrize(
    ("base", "pushed_to"),
    [
        ("http://am:9093", "http://am:9093/api/v2/alerts"),
        ("http://am:9093/", "http://am:9093/api/v2/alerts"),
        ("https://proxy/alertmanager/?tenant=a", "https://proxy/alertmanager/api/v2/alerts?tenant=a"),
    ],
)
def test_an_alertmanager_url_keeps_its_prefix_and_query(base: str, pushed_to: str) -> None:
    assert sender._alertmanager_url(base) == pushed_to


async def test_one_channels_backlog_does_not_take_every_slot_of_a_round(
    store: SqliteStore, receiver: ReceiverProcess
) -> None:
    # A tenant's channel with a long backlog (40 events due first) and another's single event due last: the
    # round that reads them sends the other tenant's event too, not only the backlog.
    backlog = await add_channel(store, receiver.url + "/sleep/0.2/backlog", channel_id="chn_backlog")
    other = await add_channel(store, receiver.url + "/ok/other", channel_id="chn_other")
    t0 = now_ns()
    for i in range(40):
        event = Delivery(f"evt_b{i:02}", backlog.id, WORKSPACE, NotificationEvent.TEST, None, t0 - 10 * S + i,
                         DeliveryStatus.PENDING, 0, t0 - 10 * S + i, None, None, None, None)  # fmt: skip
        await store.enqueue_delivery(event)
    last = Delivery("evt_other", other.id, WORKSPACE, NotificationEvent.TEST, None, t0, DeliveryStatus.PENDING, 0,
                    t0, None, None, None, None)  # fmt: skip
    await store.enqueue_delivery(last)
    notifier = Notifier(store, FAST)
    try:
        await notifier.send_due(now_ns())
    finally:
        await notifier.close()
    [sent] = await store.list_deliveries(WORKSPACE, other.id, limit=10)
    assert sent.status == DeliveryStatus.DELIVERED
    attempted = [d for d in await store.list_deliveries(WORKSPACE, backlog.id, limit=100) if d.attempts]
    assert len(attempted) == 2  # the backlog's share of the round
