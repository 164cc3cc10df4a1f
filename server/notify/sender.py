"""The sender: drains the outbox to the channels, queues reminders, keeps Alertmanagers up to date.

Every event reaches the outbox in the transaction of the alert change it tells (the store does that), so a
crash between the change and the send loses nothing: the next round finds the delivery still pending. A
delivery is sent under its event id (``Dooor-Webhook-Id``) on every attempt, with the body rendered before
the first attempt and kept by the store, so a receiver can drop a repeat. Repeats happen only when the
process dies after the receiver answered and before the outcome is recorded.

One round, every ``poll_s``:

1. reminders: each open, notified, unacknowledged, unsilenced alert whose channel asks for reminders and
   heard nothing of it for ``reminder_s`` gets a `reminder` event;
2. due deliveries, ``concurrency`` at a time, each attempt recorded (retry policy: retry.py);
3. every ``alertmanager_resend_s``: each Alertmanager channel is pushed its workspace's open alerts again
   (Alertmanager forgets an alert once its endsAt passes; the refresh is not a delivery, so not logged);
4. hourly: the delivery log's retention.

It runs on the lease holder only, fencing its writes; a lost lease ends it (the next holder's sender
takes over, and finds what was pending).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import httpx

from server.alerts.silences import ActiveSilences
from server.backend_body import http_client
from server.config import NotifySettings
from server.convert import NS_PER_S, now_ns
from server.errors import network_cause
from server.notify import payloads, retry, signing
from server.notify.destinations import refused_reason
from server.states import ChannelKind, DeliveryStatus, NotificationEvent
from server.store import Store
from server.store.base import LeaseLost
from server.store.records import Alert, Attempt, Channel, Delivery, DueDelivery, Fence, pending_delivery

log = logging.getLogger("server.notify.sender")

USER_AGENT = "dooor-monitoring-webhooks/1"
ALERTMANAGER_PATH = "/api/v2/alerts"
_CLEANUP_EVERY_NS = 3600 * NS_PER_S
# Reminders are at least a minute apart: looking for due ones every few seconds is soon enough, and spares the
# store a read of every channel, open alert and their last events at every poll.
_REMINDERS_EVERY_NS = 5 * NS_PER_S
# Due deliveries taken per round, in multiples of ``concurrency``: enough to drain a burst in a few rounds,
# few enough that one round ends within a few timeouts even when every receiver hangs.
_BATCHES_PER_ROUND = 4
# Fairness: a round reads this many times the rows it sends, and sends at most _PER_CHANNEL of one channel, so
# that one tenant's slow or dead receiver with a backlog cannot take every slot of every round.
_LOOK_AHEAD = 4
_PER_CHANNEL = 2
# Open alerts of one workspace pushed to an Alertmanager at most (one per app and alert type in practice).
_MAX_PUSHED = 5000
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class _Outcome:
    """What one HTTP attempt came to: an answer's status (None: no answer), its Retry-After, or why not."""

    status_code: int | None
    retry_after: str | None = None
    error: str | None = None
    # Final whatever the code: a destination refused before sending, or nothing left to send. Never retried.
    final: bool = False


class Notifier:
    """Sends the outbox's deliveries; one per process that holds the evaluator lease (and one for test sends)."""

    def __init__(
        self,
        store: Store,
        settings: NotifySettings,
        fence: Fence | None = None,
        *,
        clock: Callable[[], int] = now_ns,
    ):
        self._store = store
        self._settings = settings
        self._fence = fence
        self._clock = clock
        self._client = http_client("", settings.timeout_s, max(1, settings.concurrency))
        self._last_run: dict[str, int] = {}  # step → when it last ran, for the steps that run less often

    async def close(self) -> None:
        await self._client.aclose()

    async def run(self) -> None:
        """Rounds every ``poll_s`` until cancelled; raises LeaseLost once another replica holds the lease."""
        while True:
            await self.run_round()
            await asyncio.sleep(self._settings.poll_s)

    async def run_round(self) -> None:
        """One round. A step that fails (the store unavailable, say) is logged and the others still run."""
        now = self._clock()
        if self._every("reminders", _REMINDERS_EVERY_NS, now):
            await self._step("reminders", self.queue_reminders(now))
        await self._step("deliveries", self.send_due(now))
        if self._every("alertmanager refresh", int(self._settings.alertmanager_resend_s * NS_PER_S), now):
            await self._step("alertmanager refresh", self.push_alertmanagers(now))
        if self._every("delivery log retention", _CLEANUP_EVERY_NS, now):
            await self._step("delivery log retention", self.clean_log(now))

    def _every(self, step: str, every_ns: int, now: int) -> bool:
        """Whether ``step`` is due at ``now`` (never run, or ``every_ns`` since it last did); if so, it runs now."""
        last = self._last_run.get(step)
        if last is not None and now - last < every_ns:
            return False
        self._last_run[step] = now
        return True

    # -- reminders -----------------------------------------------------------------------------------------

    async def queue_reminders(self, now: int) -> int:
        """Queues the reminders due at ``now``; returns how many."""
        channels = [channel for channel in await self._store.list_all_channels() if _reminds(channel)]
        if not channels:
            return 0
        alerts = await self._store.open_alerts()
        silences = ActiveSilences(await self._store.active_silences(now))
        last_events = await self._store.last_events_of_open_alerts()
        by_workspace = _group(_unmuted(alerts, silences, now), lambda alert: alert.workspace_id)
        pairs = [
            (channel.id, alert.id)
            for channel in channels
            for alert in by_workspace.get(channel.workspace_id, ())
            if _reminder_due(channel, alert, last_events.get((channel.id, alert.id)), now)
        ]
        if pairs:
            await self._store.enqueue_reminders(pairs, now, fence=self._fence)
        return len(pairs)

    # -- deliveries ----------------------------------------------------------------------------------------

    async def send_due(self, now: int) -> int:
        """Attempts the deliveries due at ``now``, ``concurrency`` at a time; returns how many were attempted."""
        limit = max(1, self._settings.concurrency) * _BATCHES_PER_ROUND
        due = _fair_share(await self._store.due_deliveries(now, limit * _LOOK_AHEAD), limit)
        gate = asyncio.Semaphore(max(1, self._settings.concurrency))

        async def one(item: DueDelivery) -> None:
            async with gate:
                await self._deliver(item)

        results = await asyncio.gather(*(one(item) for item in due), return_exceptions=True)
        _raise_lease_lost(results)
        for item, result in zip(due, results, strict=True):
            if isinstance(result, BaseException):
                log.error("delivery %s: the attempt failed unexpectedly", item.delivery.id, exc_info=result)
                await self._record_unexpected(item.delivery)
        return len(due)

    async def _record_unexpected(self, delivery: Delivery) -> None:
        """Backs a delivery whose attempt raised off like any failure, so that it never stays at the head of the
        queue (earliest due first) and starves the others; it is given up in time like any other."""
        with contextlib.suppress(Exception):
            await self._record(delivery, self._clock(), _Outcome(None, error="internal error"), b"")

    async def send_test(self, channel: Channel, now_ns: int) -> Delivery:
        """TestNotificationChannel: queues a `test` event, attempts it once now, records the outcome (delivered
        or failed: never retried) and returns the row."""
        # Due only well after this attempt must have ended: the sender's rounds leave it alone meanwhile, yet
        # if this process dies before recording, the row is not left pending for ever (a round sends it).
        hold_ns = int(3 * self._settings.timeout_s * NS_PER_S) + NS_PER_S
        test = pending_delivery(
            channel.id, channel.workspace_id, NotificationEvent.TEST, None, now_ns, next_attempt_ns=now_ns + hold_ns
        )
        queued = await self._store.enqueue_delivery(test)
        due = DueDelivery(delivery=queued, channel=channel, alert=None, app_name="")
        body = self._body(due)
        at = self._clock()
        outcome = await self._attempt(channel, queued.id, body or b"")
        status = DeliveryStatus.FAILED if outcome.error is not None else DeliveryStatus.DELIVERED
        # Unfenced: a test send is the API's own write on whichever replica took the call, not the lease holder's.
        await self._store.record_attempt(queued.id, _attempt(at, status, None, outcome, body or b""))
        return await self._store.get_delivery(channel.workspace_id, queued.id) or queued

    async def _deliver(self, due: DueDelivery) -> None:
        delivery = due.delivery
        at = self._clock()
        body = self._body(due)
        if body is None:
            # Its app was deleted (with its alerts) before the first attempt: there is nothing left to tell.
            gone = _Outcome(None, error="the alert no longer exists (its app was deleted)", final=True)
            await self._record(delivery, at, gone, b"")
            return
        outcome = await self._attempt(due.channel, delivery.id, body)
        await self._record(delivery, at, outcome, body)

    def _body(self, due: DueDelivery) -> bytes | None:
        """The body to send: the one kept from the first attempt, else rendered now. An Alertmanager channel's
        is always rendered now, since its endsAt counts from the push (the alert's labels identify it there, so
        a changed body is no repeat). None when there is nothing to send (an alert event without its alert)."""
        delivery, channel = due.delivery, due.channel
        if channel.kind == ChannelKind.ALERTMANAGER:
            if due.alert is None:  # a test event: an empty push checks the address and the API without an alert
                return payloads.alertmanager_alerts([], 0, 0) if delivery.event == NotificationEvent.TEST else None
            return payloads.alertmanager_alerts(
                [(due.alert, due.app_name)], self._clock(), self._settings.alertmanager_resend_s
            )
        if delivery.body is not None:
            return delivery.body
        if due.alert is None and delivery.event != NotificationEvent.TEST:
            return None
        return payloads.render(delivery, channel, due.alert, due.app_name)

    async def _record(self, delivery: Delivery, at: int, outcome: _Outcome, body: bytes) -> None:
        if outcome.final:
            decision = retry.Decision(DeliveryStatus.FAILED, None)
        else:
            decision = retry.decide(
                status_code=outcome.status_code,
                retry_after=outcome.retry_after,
                attempt=delivery.attempts + 1,
                created_ns=delivery.created_ns,
                now_ns=self._clock(),
                settings=self._settings,
            )
        attempt = _attempt(at, decision.status, decision.next_attempt_ns, outcome, body)
        await self._store.record_attempt(delivery.id, attempt, fence=self._fence)
        if decision.status == DeliveryStatus.FAILED:
            log.warning("delivery %s to channel %s failed: %s", delivery.id, delivery.channel_id, attempt.error)

    # -- HTTP ----------------------------------------------------------------------------------------------

    async def _attempt(self, channel: Channel, event_id: str, body: bytes) -> _Outcome:
        """One POST of ``body`` to the channel, bounded by ``timeout_s`` as a whole (name lookup included)."""
        timeout_s = self._settings.timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                return await self._post(channel, event_id, body)
        except TimeoutError:
            return _Outcome(None, error=f"timed out after {timeout_s:g} s")

    async def _post(self, channel: Channel, event_id: str, body: bytes) -> _Outcome:
        url, headers = _request(channel, event_id, body, self._clock())
        try:
            reason = await refused_reason(url, allow_private=self._settings.allow_private_destinations)
        except (ValueError, httpx.InvalidURL):  # a URL stored before check_url refused its kind
            return _Outcome(None, error="invalid URL", final=True)
        if reason is not None:
            return _Outcome(None, error=reason, final=True)
        try:
            # Streamed and closed unread: the answer's status is all that counts, and a receiver must not be
            # able to make the sender read a large body.
            async with self._client.stream("POST", url, content=body, headers=headers) as response:
                code = response.status_code
                error = None if 200 <= code <= 299 else f"HTTP {code}"
                return _Outcome(code, retry_after=response.headers.get("retry-after"), error=error)
        except httpx.TimeoutException:
            return _Outcome(None, error=f"timed out after {self._settings.timeout_s:g} s")
        except httpx.HTTPError as error:
            return _Outcome(None, error=_network_words(error))
        except ValueError:  # an invalid internationalized host name (idna's errors are ValueErrors), say
            return _Outcome(None, error="invalid URL", final=True)

    # -- Alertmanager refresh ------------------------------------------------------------------------------

    async def push_alertmanagers(self, now: int) -> int:
        """Pushes each Alertmanager channel its workspace's open, notified, unsilenced alerts; returns how many
        channels answered 2xx. Failures are logged only: the next refresh tries again."""
        channels = [c for c in await self._store.list_all_channels() if c.kind == ChannelKind.ALERTMANAGER]
        if not channels:
            return 0
        pushes = []
        for workspace_id, workspace_channels in _group(channels, lambda channel: channel.workspace_id).items():
            named = await self._store.list_alerts_with_app_names(workspace_id, resolved=False, limit=_MAX_PUSHED)
            alerts = [(alert, name) for alert, name in named if _pushable(alert)]
            body = payloads.alertmanager_alerts(alerts, now, self._settings.alertmanager_resend_s)
            pushes += [self._push(channel, body) for channel in workspace_channels]
        results = await _bounded(pushes, max(1, self._settings.concurrency))
        return sum(results)

    async def _push(self, channel: Channel, body: bytes) -> bool:
        outcome = await self._attempt(channel, "", body)
        if outcome.error is not None:
            log.warning("alertmanager refresh of channel %s: %s", channel.id, outcome.error)
        return outcome.error is None

    # -- retention -----------------------------------------------------------------------------------------

    async def clean_log(self, now: int) -> int:
        before = now - self._settings.delivery_log_days * 86400 * NS_PER_S
        return await self._store.delete_deliveries_before(before, fence=self._fence)

    async def _step(self, name: str, work: Awaitable[object]) -> None:
        try:
            await work
        except LeaseLost:
            raise
        except Exception:  # the store unavailable, say: this round skips the step, the next tries again
            log.exception("notifications: %s failed this round", name)


def _request(channel: Channel, event_id: str, body: bytes, now: int) -> tuple[str, dict[str, str]]:
    """The URL and headers of a POST to ``channel``: a webhook's are signed; an Alertmanager's are not (it has
    no use for them) and go to its alerts API."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if channel.kind == ChannelKind.ALERTMANAGER:
        return _alertmanager_url(channel.url), headers
    return channel.url, headers | signing.headers([channel.secret], event_id, now // NS_PER_S, body)


def _alertmanager_url(base: str) -> str:
    """``<base>/api/v2/alerts``, the base's own path kept (a prefix behind a proxy) and its query too."""
    parts = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + ALERTMANAGER_PATH))


def _network_words(error: httpx.HTTPError) -> str:
    """Plain words for a failed exchange; never the error's text, which may name an internal address."""
    if isinstance(error, httpx.UnsupportedProtocol):
        return "unsupported URL"
    if any(isinstance(link, ssl.SSLError) for link in _causes(error)):
        return "TLS handshake failed"
    if isinstance(error, httpx.RemoteProtocolError):
        return "the connection closed before an answer"
    return network_cause(error) or "network error"


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and len(chain) < 16:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def _attempt(at: int, status: DeliveryStatus, next_ns: int | None, outcome: _Outcome, body: bytes) -> Attempt:
    return Attempt(
        at_ns=at,
        status=status,
        next_attempt_ns=next_ns,
        status_code=outcome.status_code,
        error=None if status == DeliveryStatus.DELIVERED else outcome.error,
        body=body,
    )


def _reminds(channel: Channel) -> bool:
    return (
        channel.kind == ChannelKind.WEBHOOK and channel.reminder_s > 0 and NotificationEvent.REMINDER in channel.events
    )


def _reminder_due(channel: Channel, alert: Alert, last_event_ns: int | None, now: int) -> bool:
    # Counted from the channel's newest event about the alert (fired, acknowledged, the last reminder), or
    # from its release when the channel has none (it was created after the alert fired).
    assert alert.notified_ns is not None
    since = max(alert.notified_ns, last_event_ns or 0)
    return now - since >= channel.reminder_s * NS_PER_S


def _unmuted(alerts: Sequence[Alert], silences: ActiveSilences, now: int) -> list[Alert]:
    """The open alerts a reminder may be about: notified, not acknowledged at ``now``, no active silence matching."""
    return [
        alert
        for alert in alerts
        if alert.resolved_ns is None
        and not alert.acknowledged_at(now)
        and _pushable(alert)
        and silences.matching(alert.workspace_id, alert.app_id, alert.type) is None
    ]


def _pushable(alert: Alert) -> bool:
    """Notified: not held for a deploy nor silenced when it fired. A silence made after the release does not
    take it out of the refresh: Alertmanager would resolve it by itself and tell its receivers "resolved" while
    the problem goes on (Alertmanager has silences of its own for that)."""
    return alert.notified_ns is not None


def _fair_share(due: Sequence[DueDelivery], limit: int) -> list[DueDelivery]:
    """The earliest due first, at most ``_PER_CHANNEL`` of each channel, at most ``limit`` in all."""
    taken: collections.Counter[str] = collections.Counter()
    chosen = []
    for item in due:
        if taken[item.channel.id] < _PER_CHANNEL:
            taken[item.channel.id] += 1
            chosen.append(item)
            if len(chosen) == limit:
                break
    return chosen


def _group(items: Sequence[_T], key: Callable[[_T], str]) -> dict[str, list[_T]]:
    grouped: dict[str, list[_T]] = collections.defaultdict(list)
    for item in items:
        grouped[key(item)].append(item)
    return grouped


async def _bounded(work: Sequence[Awaitable[bool]], limit: int) -> list[bool]:
    gate = asyncio.Semaphore(limit)

    async def one(item: Awaitable[bool]) -> bool:
        async with gate:
            return await item

    # One channel's failure (or bug) must not cost the others their refresh.
    results = await asyncio.gather(*(one(item) for item in work), return_exceptions=True)
    return [result is True for result in results]


def _raise_lease_lost(results: Sequence[object]) -> None:
    for result in results:
        if isinstance(result, LeaseLost):
            raise result
