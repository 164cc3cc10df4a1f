"""An Alertmanager channel against Debian's real Alertmanager on loopback: a fired alert appears in its
/api/v2/alerts with the four labels, a resolved one leaves it, the refresh keeps open alerts there."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from server.convert import now_ns
from server.notify import payloads
from server.notify.sender import Notifier
from server.states import ChannelKind, DeliveryStatus, NotificationEvent, ResolvedBy
from server.store.sqlite import SqliteStore
from testing.alertmanager import AlertmanagerProcess, alerts, running_alertmanager
from tests.notify.stage import FAST, WORKSPACE, add_channel, fire, open_store, running, until

AM_EVENTS = (NotificationEvent.FIRED, NotificationEvent.RESOLVED)


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertmanagerProcess]:
    with running_alertmanager(tmp_path_factory.mktemp("alertmanager")) as process:
        yield process


@pytest.fixture
async def store(tmp_path: pathlib.Path) -> AsyncIterator[SqliteStore]:
    opened = await open_store(tmp_path)
    yield opened
    await opened.close()


def _listed(url: str, app_id: str) -> list[dict[str, Any]]:
    return [alert for alert in alerts(url) if alert["labels"].get("app_id") == app_id]


async def test_fired_appears_with_its_labels_and_resolved_leaves(
    store: SqliteStore, alertmanager: AlertmanagerProcess
) -> None:
    channel = await add_channel(store, alertmanager.url, kind=ChannelKind.ALERTMANAGER, events=AM_EVENTS)
    alert = await fire(store)
    async with running(store):

        async def shown() -> list[dict[str, Any]] | None:
            return _listed(alertmanager.url, alert.app_id) or None

        [listed] = await until(shown, "the fired alert in Alertmanager")
        assert listed["labels"] == {
            "alertname": "high_cpu",
            "severity": "critical",
            "workspace_id": WORKSPACE,
            "app_id": alert.app_id,
        }
        assert listed["status"]["state"] == "active"
        assert listed["startsAt"].startswith(payloads.rfc3339(alert.triggered_ns)[:19])

        await store.resolve_alert(WORKSPACE, alert.id, now_ns(), by=ResolvedBy.MANUAL, by_key="key_1")

        async def gone() -> bool | None:
            return True if not _listed(alertmanager.url, alert.app_id) else None

        await until(gone, "the resolved alert out of Alertmanager's active alerts")
    deliveries = await store.list_deliveries(WORKSPACE, channel.id, limit=10)
    assert sorted(d.event for d in deliveries) == sorted(AM_EVENTS)
    assert all(d.status == DeliveryStatus.DELIVERED for d in deliveries)


async def test_the_refresh_pushes_open_alerts_and_a_test_send_pushes_none(
    store: SqliteStore, alertmanager: AlertmanagerProcess
) -> None:
    channel = await add_channel(store, alertmanager.url, kind=ChannelKind.ALERTMANAGER, events=AM_EVENTS)
    notifier = Notifier(store, FAST)
    try:
        # Not through the outbox: the refresh alone must bring it there (and leave no delivery behind).
        alert = await fire(store, "alr_refresh", app_id="app_2")
        await store.delete_channel(WORKSPACE, channel.id)  # the fired event goes with the channel
        channel = await add_channel(store, alertmanager.url, "chn_2", kind=ChannelKind.ALERTMANAGER, events=AM_EVENTS)
        assert await notifier.push_alertmanagers(now_ns()) == 1
        [listed] = _listed(alertmanager.url, "app_2")
        assert listed["labels"]["alertname"] == str(alert.type)
        assert await store.list_deliveries(WORKSPACE, channel.id, limit=10) == []
        sent = await notifier.send_test(channel, now_ns())
        assert sent.status == DeliveryStatus.DELIVERED and sent.last_status_code == 200
        assert len(_listed(alertmanager.url, "app_2")) == 1
    finally:
        await notifier.close()
