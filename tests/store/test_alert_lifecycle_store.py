"""The store's side of alerts people can live with (issue 16), on both backends: acknowledgements, silences,
deploy holds and releases, notification channels, and the outbox written in the transaction of the alert
change it tells.

Each test gets a fresh database of its backend (a SQLite file, or a database of the session's throwaway
PostgreSQL), with workspaces ws_a (app app_a) and ws_b (app app_b).
"""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest

from server.states import (
    AlertSeverity,
    AlertType,
    ChannelKind,
    DeliveryStatus,
    NotificationEvent,
    OperationKind,
    OperationStatus,
    PayloadFormat,
    ResolvedBy,
)
from server.store import LeaseLost, Store, open_store
from server.store.records import (
    Alert,
    AlertChanges,
    App,
    Attempt,
    Channel,
    Delivery,
    DueDelivery,
    Fence,
    Lease,
    Operation,
    Silence,
)
from tests.store.backends import BACKENDS, fresh_database, raw_sql

pytestmark = pytest.mark.timeout(30)

EVERY_EVENT = tuple(NotificationEvent)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    return fresh_database(request, tmp_path)


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    """A store with workspace ws_a and its app app_a, and workspace ws_b and its app app_b."""
    store = await open_store(database)
    try:
        for workspace, app in (("ws_a", "app_a"), ("ws_b", "app_b")):
            await store.create_workspace(workspace, workspace.upper(), 1)
            await store.upsert_app(App(app, workspace, f"{app}-name", app, 512, 1, 1))
        yield store
    finally:
        await store.close()


def alert(
    alert_id: str,
    *,
    app_id: str = "app_a",
    workspace_id: str = "ws_a",
    alert_type: AlertType = AlertType.HIGH_CPU,
    notified_ns: int | None = 5,
    silence_id: str | None = None,
    held_until_ns: int | None = None,
) -> Alert:
    """An alert firing at 5, told at once unless ``notified_ns`` is None (held or silenced)."""
    return Alert(
        alert_id,
        workspace_id,
        app_id,
        alert_type,
        AlertSeverity.WARNING,
        "CPU usage exceeded 80% threshold",
        5,
        None,
        None,
        silence_id=silence_id,
        held_until_ns=held_until_ns,
        notified_ns=notified_ns,
    )


def channel(
    channel_id: str,
    *,
    workspace_id: str = "ws_a",
    events: tuple[NotificationEvent, ...] = EVERY_EVENT,
    created_ns: int = 1,
    kind: ChannelKind = ChannelKind.WEBHOOK,
) -> Channel:
    return Channel(
        channel_id,
        workspace_id,
        f"{channel_id} name",
        kind,
        f"https://hooks.test/{channel_id}",
        PayloadFormat.SERVICE,
        f"whsec_{channel_id}",
        events,
        0,
        created_ns,
    )


def delivery(
    delivery_id: str,
    *,
    channel_id: str = "chn_a",
    workspace_id: str = "ws_a",
    event: NotificationEvent = NotificationEvent.TEST,
    alert_id: str | None = None,
    created_ns: int = 10,
    status: DeliveryStatus = DeliveryStatus.PENDING,
    next_attempt_ns: int | None = 10,
) -> Delivery:
    return Delivery(
        delivery_id,
        channel_id,
        workspace_id,
        event,
        alert_id,
        created_ns,
        status,
        0,
        next_attempt_ns if status is DeliveryStatus.PENDING else None,
        None,
        None,
        None,
        None,
    )


async def events_of(store: Store, channel_id: str, workspace_id: str = "ws_a") -> list[tuple[str, str | None, int]]:
    """(event, alert id, created_ns) of a channel's deliveries, oldest first."""
    deliveries = await store.list_deliveries(workspace_id, channel_id, limit=100)
    return [(d.event, d.alert_id, d.created_ns) for d in reversed(deliveries)]


async def outbox_size(database: str) -> int:
    async with raw_sql(database) as sql:
        return (await sql("SELECT count(*) FROM outbox"))[0][0]


# Firing, releasing and resolving queue the events of the change, in its transaction


async def test_a_notified_fire_queues_fired_for_each_channel_of_its_workspace_that_takes_it(
    store: Store, database: str
) -> None:
    await store.create_channel(channel("chn_all"))
    await store.create_channel(channel("chn_resolved", events=(NotificationEvent.RESOLVED,)))
    await store.create_channel(
        channel("chn_am", kind=ChannelKind.ALERTMANAGER, events=(NotificationEvent.FIRED, NotificationEvent.RESOLVED))
    )
    await store.create_channel(channel("chn_b", workspace_id="ws_b"))

    fired = alert("alr_1", notified_ns=10)
    assert await store.apply_alert_changes(AlertChanges(10, fire=[fired])) == [fired]

    for channel_id in ("chn_all", "chn_am"):
        (queued,) = await store.list_deliveries("ws_a", channel_id, limit=10)
        assert queued.id.startswith("evt_")
        assert queued == Delivery(
            queued.id, channel_id, "ws_a", NotificationEvent.FIRED, "alr_1", 10, DeliveryStatus.PENDING, 0, 10,
            None, None, None, None,
        )  # fmt: skip
    assert await events_of(store, "chn_resolved") == []
    assert await events_of(store, "chn_b", "ws_b") == []
    assert await store.get_alert("ws_a", "alr_1") == fired

    # A second fire of the open (app, type) is not inserted: nothing more is queued.
    assert await store.apply_alert_changes(AlertChanges(11, fire=[alert("alr_2", notified_ns=11)])) == []
    assert await outbox_size(database) == 2


async def test_each_event_gets_an_id_of_its_own(store: Store) -> None:
    for channel_id in ("chn_1", "chn_2", "chn_3"):
        await store.create_channel(channel(channel_id))
    kinds = (AlertType.HIGH_CPU, AlertType.HIGH_MEMORY)
    await store.apply_alert_changes(
        AlertChanges(10, fire=[alert(f"alr_{kind}", alert_type=kind, notified_ns=10) for kind in kinds])
    )
    ids = [d.id for c in ("chn_1", "chn_2", "chn_3") for d in await store.list_deliveries("ws_a", c, limit=10)]
    assert len(ids) == len(set(ids)) == 6


async def test_a_held_or_silenced_fire_queues_nothing_and_keeps_why(store: Store, database: str) -> None:
    await store.create_channel(channel("chn_a"))
    held = alert("alr_held", notified_ns=None, held_until_ns=100)
    silenced = alert("alr_silenced", alert_type=AlertType.HIGH_MEMORY, notified_ns=None, silence_id="sil_1")
    assert await store.apply_alert_changes(AlertChanges(10, fire=[held, silenced])) == [held, silenced]
    assert await outbox_size(database) == 0
    assert await store.get_alert("ws_a", "alr_held") == held
    stored = await store.get_alert("ws_a", "alr_silenced")
    assert stored is not None and (stored.silence_id, stored.notified_ns) == ("sil_1", None)


async def test_a_release_notifies_once(store: Store) -> None:
    await store.create_channel(channel("chn_a"))
    await store.apply_alert_changes(AlertChanges(10, fire=[alert("alr_1", notified_ns=None, held_until_ns=20)]))

    await store.apply_alert_changes(AlertChanges(20, release=["alr_1"]))
    released = await store.get_alert("ws_a", "alr_1")
    assert released is not None and (released.notified_ns, released.held_until_ns) == (20, 20)
    assert await events_of(store, "chn_a") == [(NotificationEvent.FIRED, "alr_1", 20)]

    await store.apply_alert_changes(AlertChanges(30, release=["alr_1"]))  # again: nothing changes
    assert (await store.get_alert("ws_a", "alr_1")).notified_ns == 20  # type: ignore[union-attr]
    assert await events_of(store, "chn_a") == [(NotificationEvent.FIRED, "alr_1", 20)]


async def test_an_alert_resolved_before_its_release_is_never_told(store: Store, database: str) -> None:
    await store.create_channel(channel("chn_a"))
    await store.apply_alert_changes(
        AlertChanges(
            10, fire=[alert("alr_1", notified_ns=None), alert("alr_2", alert_type="high_memory", notified_ns=None)]
        )
    )
    # Recovered in the tick its hold ended, and recovered before, then released: neither tells anyone.
    await store.apply_alert_changes(AlertChanges(20, resolve=["alr_1"], release=["alr_1"]))
    await store.apply_alert_changes(AlertChanges(20, resolve=["alr_2"]))
    await store.apply_alert_changes(AlertChanges(30, release=["alr_2"]))
    for alert_id in ("alr_1", "alr_2"):
        stored = await store.get_alert("ws_a", alert_id)
        assert stored is not None and (stored.resolved_ns, stored.notified_ns) == (20, None)
    assert await outbox_size(database) == 0


async def test_a_recovery_queues_resolved_only_for_an_alert_that_was_told(store: Store) -> None:
    await store.create_channel(channel("chn_a"))
    await store.create_channel(channel("chn_fired", events=(NotificationEvent.FIRED,)))
    await store.apply_alert_changes(
        AlertChanges(
            10, fire=[alert("alr_told", notified_ns=10), alert("alr_held", alert_type="high_memory", notified_ns=None)]
        )
    )
    await store.apply_alert_changes(AlertChanges(20, resolve=["alr_told", "alr_held"]))
    assert await events_of(store, "chn_a") == [
        (NotificationEvent.FIRED, "alr_told", 10),
        (NotificationEvent.RESOLVED, "alr_told", 20),
    ]
    assert await events_of(store, "chn_fired") == [(NotificationEvent.FIRED, "alr_told", 10)]

    await store.apply_alert_changes(AlertChanges(30, resolve=["alr_told"]))  # already resolved: nothing
    assert len(await events_of(store, "chn_a")) == 2


async def test_a_failed_tick_leaves_neither_alert_nor_event(store: Store, database: str) -> None:
    await store.create_channel(channel("chn_a"))
    await store.apply_alert_changes(AlertChanges(10, fire=[alert("alr_1", notified_ns=None)]))
    # The escalation (a NULL message breaks NOT NULL) fails after the fire and its outbox row were written.
    broken = AlertChanges(
        20,
        fire=[alert("alr_2", alert_type=AlertType.HIGH_MEMORY, notified_ns=20)],
        escalate=[("alr_1", "critical", None)],  # type: ignore[list-item]
    )
    with pytest.raises((sqlite3.IntegrityError, asyncpg.NotNullViolationError)):
        await store.apply_alert_changes(broken)
    assert await store.get_alert("ws_a", "alr_2") is None
    assert await outbox_size(database) == 0
    assert [a.id for a in await store.open_alerts()] == ["alr_1"]


async def test_the_new_columns_are_read_back_by_every_alert_read(store: Store) -> None:
    fired = alert("alr_1", notified_ns=None, silence_id="sil_1", held_until_ns=99)
    await store.apply_alert_changes(AlertChanges(10, fire=[fired]))
    acknowledged = await store.acknowledge_alert("ws_a", "alr_1", 11, "key_1", "looking", 50)
    assert acknowledged is not None
    assert (acknowledged.acknowledged_ns, acknowledged.acknowledged_by) == (11, "key_1")
    assert (acknowledged.ack_note, acknowledged.ack_until_ns) == ("looking", 50)
    assert (acknowledged.silence_id, acknowledged.held_until_ns, acknowledged.notified_ns) == ("sil_1", 99, None)
    assert await store.get_alert("ws_a", "alr_1") == acknowledged
    assert await store.list_alerts("ws_a", limit=5) == [acknowledged]
    assert await store.list_alerts_with_app_names("ws_a", limit=5) == [(acknowledged, "app_a-name")]
    assert await store.open_alerts() == [acknowledged]


# Resolving and acknowledging by hand


async def test_a_manual_resolution_records_the_key_and_tells_a_notified_alert(store: Store) -> None:
    await store.create_channel(channel("chn_a"))
    await store.apply_alert_changes(
        AlertChanges(
            10, fire=[alert("alr_told", notified_ns=10), alert("alr_held", alert_type="high_memory", notified_ns=None)]
        )
    )
    resolved = await store.resolve_alert("ws_a", "alr_told", 20, ResolvedBy.MANUAL, "key_1")
    assert resolved is not None
    assert (resolved.resolved_ns, resolved.resolved_by, resolved.resolved_by_key) == (20, ResolvedBy.MANUAL, "key_1")
    # Resolved again: left as it is, and nothing more queued.
    assert await store.resolve_alert("ws_a", "alr_told", 30, ResolvedBy.MANUAL, "key_2") == resolved
    held = await store.resolve_alert("ws_a", "alr_held", 20, ResolvedBy.MANUAL)  # never told: nobody is now
    assert held is not None and (held.resolved_ns, held.resolved_by_key) == (20, None)
    assert await events_of(store, "chn_a") == [
        (NotificationEvent.FIRED, "alr_told", 10),
        (NotificationEvent.RESOLVED, "alr_told", 20),
    ]
    assert await store.resolve_alert("ws_b", "alr_told", 40, ResolvedBy.MANUAL, "key_1") is None


async def test_an_acknowledgement_in_effect_is_not_replaced(store: Store) -> None:
    await store.create_channel(channel("chn_a"))
    await store.create_channel(channel("chn_no_acks", events=(NotificationEvent.FIRED, NotificationEvent.RESOLVED)))
    await store.apply_alert_changes(AlertChanges(10, fire=[alert("alr_1", notified_ns=10)]))

    first = await store.acknowledge_alert("ws_a", "alr_1", 20, "key_1", "on it", 100)
    assert first is not None
    assert (first.acknowledged_ns, first.acknowledged_by, first.ack_note, first.ack_until_ns) == (
        20,
        "key_1",
        "on it",
        100,
    )
    # While it stands, another acknowledgement changes nothing and queues nothing.
    assert await store.acknowledge_alert("ws_a", "alr_1", 99, "key_2", "me too", None) == first
    assert await events_of(store, "chn_a") == [
        (NotificationEvent.FIRED, "alr_1", 10),
        (NotificationEvent.ACKNOWLEDGED, "alr_1", 20),
    ]
    # Once it lapses (at ack_until_ns), a new one is taken, and told.
    second = await store.acknowledge_alert("ws_a", "alr_1", 100, "key_2", "", None)
    assert second is not None
    assert (second.acknowledged_ns, second.acknowledged_by, second.ack_note, second.ack_until_ns) == (
        100,
        "key_2",
        "",
        None,
    )
    assert second.acknowledged_at(10**18)
    assert await store.acknowledge_alert("ws_a", "alr_1", 10**18, "key_3", "", None) == second  # until resolved
    assert [e for e, _, _ in await events_of(store, "chn_a")].count(NotificationEvent.ACKNOWLEDGED) == 2
    assert await events_of(store, "chn_no_acks") == [(NotificationEvent.FIRED, "alr_1", 10)]


async def test_acknowledging_a_resolved_a_foreign_or_an_untold_alert(store: Store, database: str) -> None:
    await store.create_channel(channel("chn_a"))
    await store.apply_alert_changes(
        AlertChanges(
            10, fire=[alert("alr_told", notified_ns=10), alert("alr_held", alert_type="high_memory", notified_ns=None)]
        )
    )
    await store.resolve_alert("ws_a", "alr_told", 20, ResolvedBy.MANUAL, "key_1")
    resolved = await store.acknowledge_alert("ws_a", "alr_told", 30, "key_1", "late", None)
    assert resolved is not None and resolved.acknowledged_ns is None
    assert await store.acknowledge_alert("ws_b", "alr_held", 30, "key_1", "", None) is None
    assert await store.acknowledge_alert("ws_a", "alr_missing", 30, "key_1", "", None) is None
    held = await store.acknowledge_alert("ws_a", "alr_held", 30, "key_1", "known", None)
    assert held is not None and (held.acknowledged_ns, held.ack_note) == (30, "known")  # recorded, told to nobody
    assert await outbox_size(database) == 2  # alr_told's fired and resolved


async def test_two_stores_acknowledging_at_once_tell_it_once(store: Store, database: str) -> None:
    await store.create_channel(channel("chn_a"))
    await store.apply_alert_changes(AlertChanges(10, fire=[alert("alr_1", notified_ns=10)]))
    other = await open_store(database)
    try:
        acks = await asyncio.gather(
            *(s.acknowledge_alert("ws_a", "alr_1", 20, f"key_{n}", "", None) for n, s in enumerate([store, other] * 2))
        )
    finally:
        await other.close()
    assert len({a.acknowledged_by for a in acks if a is not None}) == 1
    assert [e for e, _, _ in await events_of(store, "chn_a")].count(NotificationEvent.ACKNOWLEDGED) == 1


# Deploy holds


async def test_the_newest_deploy_start_of_each_app_since_a_time(store: Store) -> None:
    deploys = [
        ("app_a", "dep_1", OperationStatus.SUCCEEDED, 10),
        ("app_a", "dep_2", OperationStatus.FAILED, 30),
        ("app_a", "dep_3", OperationStatus.RUNNING, 20),
        ("app_b", "dep_4", OperationStatus.SUCCEEDED, 5),
        ("app_b", "dep_5", OperationStatus.QUEUED, 25),
    ]
    for app_id, deploy_id, status, started_ns in deploys:
        workspace_id = "ws_a" if app_id == "app_a" else "ws_b"
        await store.record_operation(
            OperationKind.DEPLOY, Operation(deploy_id, app_id, workspace_id, status, started_ns, None)
        )
    await store.record_operation(OperationKind.BUILD, Operation("bld_1", "app_a", "ws_a", "succeeded", 40, None))
    assert await store.deploys_started_since(10) == {"app_a": 30, "app_b": 25}
    assert await store.deploys_started_since(26) == {"app_a": 30}
    assert await store.deploys_started_since(31) == {}


# Silences


def silence(
    silence_id: str,
    starts_ns: int,
    ends_ns: int,
    *,
    workspace_id: str = "ws_a",
    app_id: str | None = None,
    alert_types: tuple[AlertType, ...] = (),
) -> Silence:
    return Silence(silence_id, workspace_id, app_id, alert_types, starts_ns, ends_ns, "maintenance", "key_1", 1)


async def test_silences_are_created_read_listed_and_updated(store: Store) -> None:
    every = silence("sil_every", 10, 20)
    some = silence("sil_some", 30, 40, app_id="app_a", alert_types=(AlertType.HIGH_CPU, AlertType.HIGH_LATENCY))
    for s in (every, some, silence("sil_b", 50, 60, workspace_id="ws_b")):
        assert await store.create_silence(s) == s
    assert await store.get_silence("ws_a", "sil_some") == some
    assert (await store.get_silence("ws_a", "sil_some")).alert_types == (AlertType.HIGH_CPU, AlertType.HIGH_LATENCY)  # type: ignore[union-attr]
    assert await store.get_silence("ws_a", "sil_every") == every
    assert await store.get_silence("ws_a", "sil_b") is None
    assert await store.list_silences("ws_a", limit=10) == [some, every]  # newest start first
    assert await store.list_silences("ws_a", limit=1) == [some]

    changed = Silence("sil_every", "ws_a", "app_a", (AlertType.HIGH_MEMORY,), 12, 25, "longer", "key_other", 999)
    updated = await store.update_silence(changed)
    # app, types, times and comment replaced; the creator and creation time stay.
    assert updated == Silence("sil_every", "ws_a", "app_a", (AlertType.HIGH_MEMORY,), 12, 25, "longer", "key_1", 1)
    assert await store.get_silence("ws_a", "sil_every") == updated
    assert await store.update_silence(silence("sil_every", 1, 2, workspace_id="ws_b")) is None
    assert await store.update_silence(silence("sil_missing", 1, 2)) is None


async def test_active_silences_are_those_in_effect_and_live_ones_are_counted(store: Store) -> None:
    for s in (
        silence("sil_1", 10, 20),
        silence("sil_2", 15, 30, app_id="app_a"),
        silence("sil_3", 20, 40),
        silence("sil_b", 10, 30, workspace_id="ws_b"),
    ):
        await store.create_silence(s)

    async def active(now_ns: int) -> list[str]:
        return [s.id for s in await store.active_silences(now_ns)]

    assert await active(9) == []
    assert await active(10) == ["sil_1", "sil_b"]  # from its start...
    assert await active(19) == ["sil_1", "sil_2", "sil_b"]
    assert await active(20) == ["sil_2", "sil_3", "sil_b"]  # ... to before its end
    assert await active(40) == []
    assert [await store.count_live_silences("ws_a", t) for t in (0, 19, 20, 30, 40)] == [3, 3, 2, 1, 0]
    assert await store.count_live_silences("ws_b", 0) == 1


# Channels


async def test_channels_are_created_read_listed_and_updated(store: Store) -> None:
    first = channel("chn_1", created_ns=5)
    second = channel("chn_2", created_ns=3, kind=ChannelKind.ALERTMANAGER, events=(NotificationEvent.FIRED,))
    other = channel("chn_b", workspace_id="ws_b")
    for c in (first, second, other):
        assert await store.create_channel(c) == c
    assert await store.get_channel("ws_a", "chn_2") == second
    assert (await store.get_channel("ws_a", "chn_2")).events == (NotificationEvent.FIRED,)  # type: ignore[union-attr]
    assert await store.get_channel("ws_b", "chn_1") is None
    assert await store.list_channels("ws_a") == [second, first]  # oldest first
    assert await store.list_all_channels() == [second, first, other]

    changed = Channel(
        "chn_1", "ws_a", "renamed", ChannelKind.ALERTMANAGER, "https://hooks.test/new", PayloadFormat.SLACK,
        "whsec_new", (NotificationEvent.RESOLVED, NotificationEvent.REMINDER), 3600, 999,
    )  # fmt: skip
    updated = await store.update_channel(changed)
    # name, url, format, events and reminder replaced; kind, secret and creation time stay.
    assert updated == Channel(
        "chn_1", "ws_a", "renamed", ChannelKind.WEBHOOK, "https://hooks.test/new", PayloadFormat.SLACK,
        "whsec_chn_1", (NotificationEvent.RESOLVED, NotificationEvent.REMINDER), 3600, 5,
    )  # fmt: skip
    assert await store.get_channel("ws_a", "chn_1") == updated
    assert await store.update_channel(channel("chn_1", workspace_id="ws_b")) is None
    assert await store.update_channel(channel("chn_missing")) is None


async def test_deleting_a_channel_deletes_its_deliveries(store: Store, database: str) -> None:
    await store.create_channel(channel("chn_a"))
    await store.create_channel(channel("chn_kept"))
    await store.apply_alert_changes(AlertChanges(10, fire=[alert("alr_1", notified_ns=10)]))
    await store.enqueue_delivery(delivery("evt_test"))
    assert await outbox_size(database) == 3
    assert not await store.delete_channel("ws_b", "chn_a")  # another workspace's: kept
    assert await store.delete_channel("ws_a", "chn_a")
    assert await store.get_channel("ws_a", "chn_a") is None
    assert await store.get_delivery("ws_a", "evt_test") is None
    assert await outbox_size(database) == 1
    assert await events_of(store, "chn_kept") == [(NotificationEvent.FIRED, "alr_1", 10)]
    assert not await store.delete_channel("ws_a", "chn_a")


# The outbox


async def test_a_delivery_is_queued_as_given_and_read_in_its_workspace_only(store: Store) -> None:
    await store.create_channel(channel("chn_a"))
    queued = delivery("evt_1")
    assert await store.enqueue_delivery(queued) == queued
    assert await store.get_delivery("ws_a", "evt_1") == queued
    assert await store.get_delivery("ws_b", "evt_1") is None
    assert await store.get_delivery("ws_a", "evt_missing") is None


async def test_due_deliveries_come_earliest_due_first_with_their_channel_alert_and_app(store: Store) -> None:
    await store.create_channel(channel("chn_a"))
    await store.create_channel(channel("chn_b", workspace_id="ws_b"))
    await store.apply_alert_changes(
        AlertChanges(
            5,
            fire=[
                alert("alr_a", notified_ns=None),
                alert("alr_b", app_id="app_b", workspace_id="ws_b", notified_ns=None),
            ],
        )
    )
    for d in (
        delivery("evt_late", event="fired", alert_id="alr_a", created_ns=1, next_attempt_ns=30),
        delivery("evt_tie_2", created_ns=8, next_attempt_ns=20),
        delivery("evt_tie_1", created_ns=7, next_attempt_ns=20),
        delivery(
            "evt_first", channel_id="chn_b", workspace_id="ws_b", event="fired", alert_id="alr_b", next_attempt_ns=10
        ),
        delivery("evt_future", next_attempt_ns=41),
        delivery("evt_done", status=DeliveryStatus.DELIVERED),
        delivery("evt_gave_up", status=DeliveryStatus.FAILED),
    ):
        await store.enqueue_delivery(d)

    due = await store.due_deliveries(40, 10)
    assert [d.delivery.id for d in due] == ["evt_first", "evt_tie_1", "evt_tie_2", "evt_late"]
    assert [d.delivery.id for d in await store.due_deliveries(40, 2)] == ["evt_first", "evt_tie_1"]
    assert [d.delivery.id for d in await store.due_deliveries(20, 10)] == ["evt_first", "evt_tie_1", "evt_tie_2"]
    assert due[0] == DueDelivery(
        delivery(
            "evt_first", channel_id="chn_b", workspace_id="ws_b", event="fired", alert_id="alr_b", next_attempt_ns=10
        ),
        channel("chn_b", workspace_id="ws_b"),
        await store.get_alert("ws_b", "alr_b"),
        "app_b-name",
    )
    assert (due[1].alert, due[1].app_name, due[1].channel) == (None, "", channel("chn_a"))  # a test event
    assert type(due[3].alert.type) is AlertType  # type: ignore[union-attr]

    await store.delete_app("ws_a", "app_a")  # its alerts go with it; the delivery stays, without its alert
    late = (await store.due_deliveries(40, 10))[-1]
    assert (late.delivery.id, late.alert, late.app_name) == ("evt_late", None, "")


async def test_an_attempt_is_recorded_and_the_first_body_kept(store: Store) -> None:
    await store.create_channel(channel("chn_a"))
    await store.enqueue_delivery(delivery("evt_1"))
    await store.record_attempt("evt_1", Attempt(11, DeliveryStatus.PENDING, 41, 503, "HTTP 503", b"first body"))
    retried = await store.get_delivery("ws_a", "evt_1")
    assert retried is not None
    assert (retried.status, retried.attempts, retried.last_attempt_ns, retried.next_attempt_ns) == (
        "pending",
        1,
        11,
        41,
    )
    assert (retried.last_status_code, retried.last_error, retried.body) == (503, "HTTP 503", b"first body")
    assert [d.delivery.id for d in await store.due_deliveries(40, 10)] == []
    assert [d.delivery.body for d in await store.due_deliveries(41, 10)] == [b"first body"]

    await store.record_attempt("evt_1", Attempt(41, DeliveryStatus.DELIVERED, None, 200, None, b"another body"))
    done = await store.get_delivery("ws_a", "evt_1")
    assert done is not None
    assert (done.status, done.attempts, done.last_attempt_ns, done.next_attempt_ns) == ("delivered", 2, 41, None)
    assert (done.last_status_code, done.last_error, done.body) == (200, None, b"first body")
    assert await store.due_deliveries(10**18, 10) == []


async def test_a_channels_deliveries_are_listed_newest_first_by_status(store: Store) -> None:
    await store.create_channel(channel("chn_a"))
    await store.create_channel(channel("chn_other"))
    for d in (
        delivery("evt_1", created_ns=10),
        delivery("evt_3", created_ns=20, status=DeliveryStatus.DELIVERED),
        delivery("evt_2", created_ns=20),
        delivery("evt_4", created_ns=30, status=DeliveryStatus.FAILED),
        delivery("evt_other", channel_id="chn_other", created_ns=40),
    ):
        await store.enqueue_delivery(d)

    async def listed(status: DeliveryStatus | None = None, limit: int = 10, workspace_id: str = "ws_a") -> list[str]:
        return [d.id for d in await store.list_deliveries(workspace_id, "chn_a", status=status, limit=limit)]

    assert await listed() == ["evt_4", "evt_3", "evt_2", "evt_1"]  # ties by id, descending
    assert await listed(limit=2) == ["evt_4", "evt_3"]
    assert await listed(DeliveryStatus.PENDING) == ["evt_2", "evt_1"]
    assert await listed(DeliveryStatus.DELIVERED) == ["evt_3"]
    assert await listed(workspace_id="ws_b") == []


async def test_reminders_are_queued_for_existing_channels_in_their_workspace(store: Store) -> None:
    reminders_only = (NotificationEvent.REMINDER,)
    await store.create_channel(channel("chn_a", events=reminders_only))
    await store.create_channel(channel("chn_b", workspace_id="ws_b", events=reminders_only))
    await store.apply_alert_changes(
        AlertChanges(10, fire=[alert("alr_1", notified_ns=10), alert("alr_x", workspace_id="ws_b", app_id="app_b")])
    )
    await store.enqueue_reminders([("chn_a", "alr_1"), ("chn_b", "alr_x"), ("chn_deleted", "alr_1")], 50)
    (reminder,) = await store.list_deliveries("ws_a", "chn_a", limit=10)
    assert reminder == Delivery(
        reminder.id, "chn_a", "ws_a", NotificationEvent.REMINDER, "alr_1", 50, DeliveryStatus.PENDING, 0, 50,
        None, None, None, None,
    )  # fmt: skip
    assert reminder.id.startswith("evt_")
    assert [(d.workspace_id, d.alert_id) for d in await store.list_deliveries("ws_b", "chn_b", limit=10)] == [
        ("ws_b", "alr_x")
    ]
    await store.enqueue_reminders([], 60)


async def test_a_reminder_is_not_queued_for_an_alert_acknowledged_resolved_or_untold_since_or_twice(
    store: Store,
) -> None:
    await store.create_channel(channel("chn_a", events=(NotificationEvent.REMINDER,)))
    await store.apply_alert_changes(
        AlertChanges(
            10,
            fire=[
                alert("alr_open", notified_ns=10),
                alert("alr_acked", alert_type="high_memory", notified_ns=10),
                alert("alr_resolved", alert_type="high_latency", notified_ns=10),
                alert("alr_untold", alert_type="high_error_rate", notified_ns=None),
            ],
        )
    )
    await store.acknowledge_alert("ws_a", "alr_acked", 20, "key_1", "", None)
    await store.resolve_alert("ws_a", "alr_resolved", 20, ResolvedBy.MANUAL, "key_1")
    pairs = [("chn_a", a) for a in ("alr_open", "alr_acked", "alr_resolved", "alr_untold")]
    await store.enqueue_reminders(pairs, 50)
    await store.enqueue_reminders(pairs, 60)  # the first is still pending: not a second one
    queued = [(d.alert_id, d.created_ns) for d in await store.list_deliveries("ws_a", "chn_a", limit=10)]
    assert queued == [("alr_open", 50)]


async def test_the_last_event_of_each_channel_and_open_alert(store: Store) -> None:
    await store.create_channel(channel("chn_a"))
    await store.create_channel(channel("chn_fired", events=(NotificationEvent.FIRED,)))
    await store.apply_alert_changes(
        AlertChanges(
            10,
            fire=[
                alert("alr_open", notified_ns=10),
                alert("alr_resolved", alert_type="high_memory", notified_ns=10),
                alert("alr_quiet", alert_type="high_latency", notified_ns=None),
            ],
        )
    )
    await store.enqueue_reminders([("chn_a", "alr_open")], 50)
    await store.resolve_alert("ws_a", "alr_resolved", 60, ResolvedBy.MANUAL, "key_1")
    assert await store.last_events_of_open_alerts() == {("chn_a", "alr_open"): 50, ("chn_fired", "alr_open"): 10}


async def test_old_finished_deliveries_are_deleted_and_pending_ones_kept(store: Store) -> None:
    await store.create_channel(channel("chn_a"))
    for d in (
        delivery("evt_delivered", created_ns=10, status=DeliveryStatus.DELIVERED),
        delivery("evt_failed", created_ns=20, status=DeliveryStatus.FAILED),
        delivery("evt_pending", created_ns=5),
        delivery("evt_recent", created_ns=100, status=DeliveryStatus.DELIVERED),
    ):
        await store.enqueue_delivery(d)
    assert await store.delete_deliveries_before(50) == 2
    assert sorted(d.id for d in await store.list_deliveries("ws_a", "chn_a", limit=10)) == ["evt_pending", "evt_recent"]
    assert await store.delete_deliveries_before(50) == 0


# Fenced writes


def _fence(lease: Lease | None) -> Fence:
    assert lease is not None
    return Fence(lease.name, lease.holder, lease.epoch)


async def test_a_stale_notifiers_fenced_writes_raise_and_write_nothing(store: Store) -> None:
    await store.create_channel(channel("chn_a"))
    await store.apply_alert_changes(AlertChanges(10, fire=[alert("alr_1", notified_ns=None)]))
    await store.enqueue_delivery(delivery("evt_1"))
    await store.enqueue_delivery(delivery("evt_old", created_ns=1, status=DeliveryStatus.DELIVERED))
    stale = _fence(await store.acquire_lease("evaluator", "r1", 0.05))
    await asyncio.sleep(0.15)
    current = _fence(await store.acquire_lease("evaluator", "r2", 10))

    attempt = Attempt(11, DeliveryStatus.DELIVERED, None, 200, None, b"body")
    with pytest.raises(LeaseLost):
        await store.record_attempt("evt_1", attempt, fence=stale)
    with pytest.raises(LeaseLost):
        await store.enqueue_reminders([("chn_a", "alr_1")], 50, fence=stale)
    with pytest.raises(LeaseLost):
        await store.delete_deliveries_before(100, fence=stale)
    with pytest.raises(LeaseLost):
        await store.apply_alert_changes(AlertChanges(20, release=["alr_1"]), fence=stale)
    assert await store.get_delivery("ws_a", "evt_1") == delivery("evt_1")
    assert sorted(d.id for d in await store.list_deliveries("ws_a", "chn_a", limit=10)) == ["evt_1", "evt_old"]
    assert (await store.get_alert("ws_a", "alr_1")).notified_ns is None  # type: ignore[union-attr]

    # The current holder's land.
    await store.record_attempt("evt_1", attempt, fence=current)
    await store.apply_alert_changes(AlertChanges(20, release=["alr_1"]), fence=current)
    await store.enqueue_reminders([("chn_a", "alr_1")], 50, fence=current)
    assert await store.delete_deliveries_before(100, fence=current) == 2  # evt_old, and evt_1 now delivered
    assert [d.event for d in await store.list_deliveries("ws_a", "chn_a", limit=10)] == [
        NotificationEvent.REMINDER,
        NotificationEvent.FIRED,
    ]


async def test_an_attempt_on_a_settled_delivery_changes_nothing(store: Store) -> None:
    # A deposed sender recording late must not turn a delivered row back into a pending retry.
    await store.create_channel(channel("chn_a"))
    await store.enqueue_delivery(delivery("evt_1"))
    await store.record_attempt("evt_1", Attempt(11, DeliveryStatus.DELIVERED, None, 200, None, b"body"))
    await store.record_attempt("evt_1", Attempt(12, DeliveryStatus.PENDING, 99, 503, "HTTP 503", b"other"))
    settled = await store.get_delivery("ws_a", "evt_1")
    assert settled is not None and (settled.status, settled.attempts, settled.last_status_code, settled.body) == (
        DeliveryStatus.DELIVERED,
        1,
        200,
        b"body",
    )
