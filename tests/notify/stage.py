"""What the sender tests share: a real SQLite store with a workspace and an app, a notifier running against
it, and bounded polling."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from server.config import NotifySettings
from server.convert import now_ns
from server.notify.sender import Notifier
from server.store.records import Alert, AlertChanges, App, Channel
from server.store.sqlite import SqliteStore, open_sqlite
from tests.notify import records

T = TypeVar("T")
WORKSPACE = "ws_1"
APP = "app_1"
APP_NAME = "checkout"
# Fast retries, and loopback receivers allowed (they are the tests' own processes).
FAST = NotifySettings(
    poll_s=0.02,
    retry_initial_s=0.05,
    retry_max_s=0.2,
    timeout_s=5.0,
    alertmanager_resend_s=3600.0,
    allow_private_destinations=True,
)


async def open_store(tmp_path: pathlib.Path) -> SqliteStore:
    store = await open_sqlite(str(tmp_path / "monitoring.db"))
    await store.create_workspace(WORKSPACE, "Workspace one", now_ns())
    for app_id, name in ((APP, APP_NAME), ("app_2", "billing")):
        app = App(app_id, WORKSPACE, name, f"svc-{app_id}", 512.0, 1.0, now_ns())
        assert await store.upsert_app(app) is not None
    return store


async def add_channel(store: SqliteStore, url: str, channel_id: str = "chn_1", **fields: object) -> Channel:
    return await store.create_channel(records.channel(url, channel_id=channel_id, workspace_id=WORKSPACE, **fields))  # type: ignore[arg-type]


async def fire(store: SqliteStore, alert_id: str = "alr_1", *, app_id: str = APP, at_ns: int | None = None) -> Alert:
    """Fires an alert released to the channels at once: its `fired` events are queued in the same transaction."""
    at = now_ns() if at_ns is None else at_ns
    alert = records.alert(alert_id, workspace_id=WORKSPACE, app_id=app_id, triggered_ns=at, notified_ns=at)
    [fired] = await store.apply_alert_changes(AlertChanges(now_ns=at, fire=[alert]))
    return fired


@contextlib.asynccontextmanager
async def running(store: SqliteStore, settings: NotifySettings = FAST) -> AsyncIterator[Notifier]:
    """A notifier whose rounds run in the background until the block ends."""
    notifier = Notifier(store, settings)
    task = asyncio.create_task(notifier.run())
    try:
        yield notifier
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await notifier.close()


@dataclasses.dataclass
class Timeout(Exception):
    what: str


async def until(check: Callable[[], Awaitable[T | None]], what: str, timeout_s: float = 15.0) -> T:
    """Polls ``check`` (at most 1500 times, at most ``timeout_s``) until it returns something other than None."""
    deadline = time.monotonic() + timeout_s
    for _ in range(1500):
        found = await check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    raise Timeout(what)
