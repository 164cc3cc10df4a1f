"""StreamAppLogs: a fan-out hub over Loki's ``/tail`` WebSocket.

- One :class:`_Upstream` per (workspace, app) reads one Loki tail of the app's whole selector and fans out to
  every subscriber of this server, applying each subscriber's filters here (severity, ``q``, ``regex``:
  server/logs/filters.py, the rules the LogQL of a replay uses); it is opened by the first subscriber and
  closed ``linger_s`` after the last. Cursors stay per (app, filters): their digest binds the filters.
- Loki's tail slots (10 per tenant, shared by every workspace) are a budget: at most ``max_upstream_tails``
  upstreams per process and ``max_tailed_apps_per_workspace`` tailed apps per workspace. A stream that would
  need one more is refused at once (RESOURCE_EXHAUSTED with a retry delay); an upstream lingering after its
  last subscriber left holds no budget: the idlest one is closed to make room.
- Lossless across tail failures: on reconnect (backoff with jitter, capped) the upstream back-fills from
  query_range starting ``late_window_s`` before the newest entry it delivered; a ledger of recently
  delivered entry identities (stream labels, ns, line) drops everything already sent.
- Every message carries a signed cursor (:mod:`server.logs.tokens`): the newest timestamp delivered and digests
  of the entries delivered at it. A request with a cursor replays from query_range what came after it, up
  to where the upstream takes over, then follows the live stream, skipping live entries the replay already
  sent; it remembers only those the upstream could still send, so its memory does not grow with the replay.
- Each subscriber has a buffer bounded in messages and bytes. When it is full, entries for that subscriber
  are counted, not queued, and it then receives ``StreamGap(reason="slow_consumer")``; the others are never
  held up. Loki's own ``dropped_entries`` become ``StreamGap(reason="upstream_dropped")``.
- Streams end: at their maximum lifetime, when their API key is revoked (re-checked periodically through the
  :class:`Caller`), when their client took nothing from a full buffer for ``stalled_after_s``, and at
  shutdown. The hub tells the caller why and where to resume (:meth:`Caller.end`), then the stream's iterator
  stops. Streams are capped per API key and per process (RESOURCE_EXHAUSTED with a retry delay).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import logging
import random
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Protocol

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import validation
from server.config import TailSettings
from server.convert import NS_PER_S
from server.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted, ServiceError, Unavailable
from server.logs import filters
from server.logs.entries import SignerSource, canonical, to_proto
from server.logs.filters import LogFilter
from server.logs.logql import LabelScheme
from server.logs.loki import BACKEND, MAX_ENTRIES, MAX_FUTURE_NS, MAX_QUERY_LENGTH_NS, Entry, LokiClient, TailClosed
from server.logs.tokens import BadToken, Signer, StreamPosition, advance, entry_digest, query_digest
from server.store.records import App

log = logging.getLogger("server.logs.tail")

Identity = tuple[str, int, str]
AppKey = tuple[str, str]  # (workspace id, app id): one upstream tail each
_REPLAY_MARGIN_NS = 3600 * NS_PER_S
MAX_REFILL_NS = 3600 * NS_PER_S  # a back-fill never reaches further back than this before the upstream started
TAIL_REPLAY_LIMIT = 100  # Loki's default; the back-fill from query_range covers the rest anyway
REPLAY_PIN_S = 30.0  # Loki replays the last entries right after a tail opens; this is ample for them

# Why the hub ends a stream (StreamEnd.reason).
LIFETIME = "lifetime"
REVOKED_KEY = "revoked_key"
SLOW_CONSUMER = "slow_consumer"
SHUTTING_DOWN = "server_shutting_down"
LIFETIME_SPREAD = 0.1  # a stream lives between 90 and 100 % of max_lifetime_s
RECHECK_WARN_EVERY_S = 60.0  # a store that cannot answer key re-checks is logged at most this often


# A refused stream is told to try again after this long: streams end (lifetime, clients leaving) all the time.
STREAM_RETRY_AFTER_S = 5


def _too_many_streams(message: str, *, limit: str, maximum: int) -> ResourceExhausted:
    metadata = {"limit": limit, "max": str(maximum)}
    return ResourceExhausted(message, reason="TOO_MANY_STREAMS", retry_after_s=STREAM_RETRY_AFTER_S, metadata=metadata)


class Caller(Protocol):
    """Who holds a stream, as the hub needs to know it (the servicer implements it)."""

    @property
    def key_id(self) -> str: ...

    async def key_valid(self) -> bool:
        """False once the caller's key is revoked; raises when that cannot be told now (the stream goes on)."""
        ...

    def end(self, reason: str, cursor: str) -> None:
        """The hub ends the stream (its iterator stops next); ``cursor`` resumes after what it handed out."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class _Event:
    """One message for subscribers: an entry (with the hub's position after it) or a gap."""

    message: pb.StreamAppLogsResponse
    identity: Identity | None
    position: StreamPosition
    size: int = 0  # the message's bytes, for the subscribers' byte bound


_END = object()
_GAP_BYTES = 64  # a gap notice with its cursor, about


class _Subscriber:
    def __init__(self, capacity: int, max_bytes: int, room: asyncio.Event, kept: LogFilter, digest: bytes):
        self.kept = None if kept == LogFilter() else kept  # None: every entry, without a check per entry
        self.digest = digest  # of its query (workspace, app, filters): its cursors are signed with it
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.room = room  # set whenever this subscriber takes an item (the back-fill paces on it)
        self.items: deque[_Event | object] = deque()
        self.bytes = 0  # of the queued events
        self.wake = asyncio.Event()
        self.dropped = 0
        self.gap_cursor = ""
        self.last_cursor = ""
        # Made the hub wait too long once: not waited for again until it has caught up.
        self.lagging = False
        # Since when the buffer is full without the client taking anything (monotonic), or None.
        self.full_since: float | None = None
        self.ended = False  # the stream ends: next() returns None whatever is still queued

    def _fits(self, count: int, size: int) -> bool:
        """Whether ``count`` more events of ``size`` bytes in all fit (one always fits an empty buffer)."""
        return len(self.items) + count <= self.capacity and (not self.items or self.bytes + size <= self.max_bytes)

    def offer(self, event: _Event) -> None:
        if self.dropped and self._fits(2, event.size + _GAP_BYTES):
            self._put_gap()
        if not self._fits(1, event.size):
            if not self.dropped:
                self.gap_cursor = self.last_cursor  # resuming from the gap replays what was dropped
            # An upstream gap notice that does not fit adds the entries it stood for.
            self.dropped += 1 if event.identity is not None else max(event.message.gap.dropped_entries, 1)
            self._full()
            return
        self.items.append(event)
        self.bytes += event.size
        self.last_cursor = event.message.cursor
        self.wake.set()
        if not self._fits(1, 0):
            self._full()

    def _full(self) -> None:
        if self.full_since is None:
            self.full_since = time.monotonic()

    def stalled(self, now: float, after_s: float) -> bool:
        """Whether the client took nothing from its full buffer for ``after_s``."""
        return self.full_since is not None and now - self.full_since >= after_s

    def _put_gap(self) -> None:
        gap = pb.StreamGap(dropped_entries=self.dropped, reason="slow_consumer")
        message = pb.StreamAppLogsResponse(gap=gap, cursor=self.gap_cursor)
        self.items.append(_Event(message, None, StreamPosition(0, ()), _GAP_BYTES))
        self.bytes += _GAP_BYTES
        self.dropped = 0
        self.wake.set()

    def end(self) -> None:
        self.items.append(_END)
        self.wake.set()

    def finish(self) -> None:
        """Ends the stream now: what is still queued is not sent (the end's cursor resumes before it)."""
        self.ended = True
        self.wake.set()

    async def next(self) -> _Event | None:
        while not self.items or self.ended:
            if self.ended:
                return None
            if self.dropped:
                self._put_gap()
                break
            self.wake.clear()
            await self.wake.wait()
        item = self.items.popleft()
        self.full_since = None
        if isinstance(item, _Event):
            self.bytes -= item.size
        if self.lagging and len(self.items) <= self.capacity // 4:
            self.lagging = False
        self.room.set()
        return None if item is _END else item  # type: ignore[return-value]

    def free(self) -> int:
        return 0 if self.bytes >= self.max_bytes else self.capacity - len(self.items)


class _Upstream:
    """One Loki tail for one app (every severity), shared by all its subscribers whatever their filter."""

    def __init__(self, hub: TailHub, key: AppKey, query: str, signer: Signer):
        self.hub = hub
        self.key = key
        self.query = query
        self.signer = signer
        self.subscribers: set[_Subscriber] = set()
        self.idle_since: float | None = None  # when its last subscriber left (monotonic), while it lingers
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.connected.add_done_callback(_retrieve)
        self.created = time.time_ns()
        # The cursor position: the newest timestamp delivered (and digests at it); 0 before the first entry.
        self.position = StreamPosition(0, ())
        # The ledger remembers every delivered entry with a timestamp ≥ floor (late_window_s behind the
        # newest): a back-fill never starts below it, so older entries cannot come back twice.
        self.floor = 0
        self._ledger: dict[Identity, int] = {}
        self._ledger_heap: list[tuple[int, Identity]] = []
        # While Loki's replay for a reopened tail may still arrive, the ledger keeps everything from there.
        self._pin: tuple[float, int] | None = None
        self._linger: asyncio.TimerHandle | None = None
        self.room = asyncio.Event()
        self.opened_at: float | None = None  # when the current tail connection was accepted (monotonic)
        self.task = asyncio.create_task(self._run(), name=f"tail {key}")

    # -- subscribers -----------------------------------------------------------------------------

    def subscribe(self, kept: LogFilter, digest: bytes) -> _Subscriber:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self.idle_since = None
        settings = self.hub.settings
        subscriber = _Subscriber(settings.buffer, settings.buffer_bytes, self.room, kept, digest)
        self.subscribers.add(subscriber)
        return subscriber

    def joined_at(self) -> StreamPosition:
        """Where a subscriber that joins now starts: resuming from here replays what it would have received."""
        return self.position if self.position.ts else StreamPosition(self._since() - 1, ())

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        self.subscribers.discard(subscriber)
        if not self.subscribers and not self.task.done():
            self.idle_since = time.monotonic()
            self._linger = asyncio.get_running_loop().call_later(self.hub.settings.linger_s, self._close_if_idle)

    def _close_if_idle(self) -> None:
        if not self.subscribers:
            self.close()

    def close(self) -> None:
        """Closes the tail now (it has no subscribers): its budget is free at once."""
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self.hub.discard(self)
        self.task.cancel()

    def end(self) -> None:
        self.task.cancel()
        # Subscribers still waiting for the first connect go on to their end marker (shutdown ends with OK).
        if not self.connected.done():
            self.connected.set_result(None)
        for subscriber in self.subscribers:
            subscriber.end()

    # -- delivery --------------------------------------------------------------------------------

    def deliver(self, entries: Iterable[Entry]) -> None:
        """Hands each new entry to the subscribers whose filters (severity, ``q``, ``regex``) it passes.

        The position advances over every entry, whichever passes: a filtered subscriber's cursor at it is
        still exact, since its replay asks Loki for its filters only (the other entries are not in it)."""
        for entry in entries:
            identity = entry.identity
            if identity in self._ledger:
                continue
            # A late entry (older than the floor) is delivered too; no back-fill can send it again.
            if entry.ts >= self.floor:
                self._ledger[identity] = entry.ts
                heapq.heappush(self._ledger_heap, (entry.ts, identity))
            self.position = advance(self.position, [identity])
            proto = to_proto(entry, self.hub.scheme)
            events: dict[bytes, _Event] = {}  # one message per cursor digest (per distinct filter)
            for subscriber in self.subscribers:
                kept = subscriber.kept
                if kept is not None and not (kept.keeps_severity(proto.severity) and kept.keeps_line(entry.line)):
                    continue
                event = events.get(subscriber.digest)
                if event is None:
                    cursor = self.signer.cursor(subscriber.digest, self.position)
                    message = pb.StreamAppLogsResponse(entry=proto, cursor=cursor)
                    event = events[subscriber.digest] = _Event(message, identity, self.position, message.ByteSize())
                subscriber.offer(event)
        self._prune()

    async def deliver_paced(self, entries: list[Entry]) -> None:
        """Delivers entries in chunks that fit the subscribers' buffers, so a burst (a back-fill, a frame
        that arrives while a subscriber is briefly behind) is absorbed instead of turned into a gap.

        Before each chunk it waits for room, at most ``pace_wait_s``; a subscriber that makes it wait that
        long is marked lagging and not waited for again until it has caught up (meanwhile it gets
        slow_consumer gaps), so a slow subscriber holds the others up at most once per episode.
        """
        step = max(1, self.hub.settings.buffer // 2)
        loop = asyncio.get_running_loop()
        for i in range(0, len(entries), step):
            chunk = entries[i : i + step]
            deadline = loop.time() + self.hub.settings.pace_wait_s
            while waiting := [s for s in self.subscribers if not s.lagging and s.free() < len(chunk)]:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    for subscriber in waiting:
                        subscriber.lagging = True
                    break
                self.room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.room.wait(), remaining)
            self.deliver(chunk)

    def refill_start(self) -> int:
        """No entry older than this can reach subscribers again from a back-fill or Loki's replay."""
        start = self._since()
        return min(start, self._pin[1]) if self._pin is not None else start

    def handover(self) -> int:
        """Where a resumed stream's replay ends (exclusive) and this upstream takes over for it.

        The replay covers everything up to the position (sent before the stream subscribed) and everything
        older than the refill start (never sent again); this upstream sends each subscriber the rest."""
        return max(self.position.ts + 1, self.refill_start())

    def _prune(self) -> None:
        self.floor = max(self.floor, self.position.ts - int(self.hub.settings.late_window_s * NS_PER_S))
        bound = self.floor
        if self._pin is not None:
            if self._pin[0] > time.monotonic():
                bound = min(bound, self._pin[1])
            else:
                self._pin = None
        heap = self._ledger_heap
        while heap and heap[0][0] < bound:
            _, identity = heapq.heappop(heap)
            self._ledger.pop(identity, None)

    def gap(self, dropped: int) -> None:
        """Loki dropped entries: every subscriber is told (their severities are unknown)."""
        gap = pb.StreamGap(dropped_entries=dropped, reason="upstream_dropped")
        events: dict[bytes, _Event] = {}
        for subscriber in self.subscribers:
            event = events.get(subscriber.digest)
            if event is None:
                cursor = self.signer.cursor(subscriber.digest, self.position)
                message = pb.StreamAppLogsResponse(gap=gap, cursor=cursor)
                event = events[subscriber.digest] = _Event(message, None, self.position, message.ByteSize())
            subscriber.offer(event)

    # -- the upstream loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        settings = self.hub.settings
        attempt = 0
        while True:
            self.opened_at = None
            try:
                await self._follow()
            except TailClosed as closed:
                log.info("tail %s closed (%d %s); reconnecting", self.key, closed.code, closed.reason)
            except (Unavailable, DeadlineExceeded) as error:
                if not self.connected.done():
                    self.connected.set_exception(error)
                    self.hub.discard(self)
                    return
                log.warning("tail %s: %s; retrying", self.key, error.message)
            except Exception as error:
                # A bug must not leave subscribers waiting on a dead task: log it and go round again, or
                # fail the first connect like any other (its waiters would otherwise wait forever).
                log.exception("tail %s failed unexpectedly; retrying", self.key)
                if not self.connected.done():
                    unexpected = Unavailable(BACKEND, "an internal error", detail=f"{type(error).__name__}: {error}")
                    self.connected.set_exception(unexpected)
                    self.hub.discard(self)
                    return
            # Only a connection that lived a while resets the backoff: Loki may accept the upgrade and close
            # at once (e.g. too many tails), and that must not turn into a reconnect loop.
            lived = time.monotonic() - self.opened_at if self.opened_at is not None else 0.0
            stable = lived >= settings.stable_after_s
            attempt = 1 if stable else attempt + 1
            ceiling = min(settings.backoff_max_s, settings.backoff_initial_s * 2 ** (attempt - 1))
            await asyncio.sleep(random.uniform(ceiling / 2, ceiling))

    def _since(self) -> int:
        """Where a (re)opened tail's back-fill starts."""
        if not self.position.ts:
            # Nothing delivered yet: a little before the first subscriber came, to cover lines logged while
            # its call was being set up.
            return self.created - int(self.hub.settings.lookback_s * NS_PER_S)
        return max(self.floor, self.created - MAX_REFILL_NS)

    async def _follow(self) -> None:
        settings = self.hub.settings
        start = self._since()
        async with self.hub.loki.tail(
            self.query, start_ns=start, limit=TAIL_REPLAY_LIMIT, delay_for=settings.delay_for
        ) as tail:
            self.opened_at = time.monotonic()
            if not self.connected.done():
                self.connected.set_result(None)
            # Whatever arrived before this tail was open comes from query_range; the ledger drops repeats
            # (Loki's own replay of the last entries included).
            self._pin = (float("inf"), start)
            async for batch in self.hub.forward(self.query, start):
                await self.deliver_paced(batch)
            self._pin = (time.monotonic() + REPLAY_PIN_S, start)
            while True:
                frame = await tail.recv(settings.watchdog_s)
                if frame is None:
                    await self._check_not_stalled()
                    continue
                if frame.dropped:
                    self.gap(frame.dropped)
                if frame.entries:
                    await self.deliver_paced(sorted(frame.entries, key=lambda e: e.ts))

    async def _check_not_stalled(self) -> None:
        """After a quiet spell: does Loki hold entries the tail should have sent by now? Then it hangs
        (a known Loki failure mode): drop it, and the reconnect back-fills."""
        settings = self.hub.settings
        due_before = time.time_ns() - int((settings.delay_for + settings.watchdog_s) * NS_PER_S)
        since = max(self.position.ts + 1, self.created - MAX_REFILL_NS) if self.position.ts else self.created
        if due_before <= since:
            return
        streams = await self.hub.loki.query_range(self.query, start_ns=since, end_ns=due_before, limit=1, forward=True)
        if any(streams):
            raise TailClosed(1006, f"no frame for {settings.watchdog_s:g} s while Loki has newer entries")


class _Replayed:
    """The identities a resumed stream replayed that its upstream could still send it, to drop those.

    Only entries at or after the upstream's refill start are kept (it never sends older ones again), and
    the replay ends at the upstream's position (:meth:`_Upstream.handover`): so this holds at most the
    entries of the upstream's own late window, however many lines are replayed (docs/logs.md, "Replay").
    """

    def __init__(self, upstream: _Upstream):
        self._upstream = upstream
        self._ids: set[Identity] = set()
        self._order: deque[Identity] = deque()  # replay order, i.e. by timestamp: forgetting pops the left

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, identity: Identity) -> None:
        if identity[1] >= self.forget_older():
            self._ids.add(identity)
            self._order.append(identity)

    def forget_older(self) -> int:
        """Forgets what the upstream can no longer send; returns the bound it used."""
        bound = self._upstream.refill_start()
        while self._order and self._order[0][1] < bound:
            self._ids.discard(self._order.popleft())
        return bound

    def take(self, identity: Identity | None) -> bool:
        """Whether the replay sent this entry (the upstream sends each entry once: then forgotten)."""
        if identity is None or identity not in self._ids:
            return False
        self._ids.discard(identity)
        return True


def _covered(resume: StreamPosition, identity: Identity | None) -> bool:
    """Whether the client that resumed from ``resume`` already had this entry."""
    if identity is None:
        return False
    return identity[1] < resume.ts or (identity[1] == resume.ts and entry_digest(identity) in resume.digests)


def _replay_start(resume: StreamPosition) -> int:
    """The oldest timestamp a replay from ``resume`` asks Loki for: the cursor, or as far back as Loki's
    query length allows (forward() reads the clock again for the window's end: an hour of margin)."""
    return max(resume.ts, time.time_ns() + MAX_FUTURE_NS - (MAX_QUERY_LENGTH_NS - _REPLAY_MARGIN_NS))


MAX_BACKFILL = 1000  # as a page of ListAppLogs


@dataclasses.dataclass(frozen=True)
class _Start:
    """Where a stream without a cursor begins: with its last ``backfill`` entries, or at ``since_ns``."""

    backfill: int = 0
    since_ns: int | None = None


def _start_of(request: pb.StreamAppLogsRequest) -> _Start | None:
    """The request's ``backfill`` or ``start_time``, checked; None to start live."""
    if not 0 <= request.backfill <= MAX_BACKFILL:
        raise InvalidArgument("backfill", f"must be between 0 and {MAX_BACKFILL}, got {request.backfill}")
    if not request.HasField("start_time"):
        return _Start(backfill=request.backfill) if request.backfill else None
    if request.backfill:
        raise InvalidArgument("start_time", "cannot be combined with backfill; give one of them")
    since = validation.timestamp_ns("start_time", request.start_time)
    if since > time.time_ns():
        raise InvalidArgument("start_time", "is in the future; leave it out to start live")
    return _Start(since_ns=since)


class _Viewer:
    """One open stream as the caps and the reasons to end it see it (the hub's part; the caller's is Caller)."""

    def __init__(self, hub: TailHub, caller: Caller | None, cursor: str, app: AppKey):
        self.hub = hub
        self.app = app  # the app whose tail it holds a place under the tail budget for, until released
        self.caller = caller
        self.key = caller.key_id if caller is not None else None
        self.cursor = cursor  # where a new call resumes: after the last message handed out, or the request's cursor
        self.ending: str | None = None
        self.subscriber: _Subscriber | None = None
        self.released = False
        # Between 90 and 100 % of the lifetime: streams opened together (after a restart) do not all end together.
        lifetime = hub.settings.max_lifetime_s * random.uniform(1 - LIFETIME_SPREAD, 1.0)
        self._lifetime = asyncio.get_running_loop().call_later(lifetime, self.end, LIFETIME)

    def handed(self, message: pb.StreamAppLogsResponse) -> pb.StreamAppLogsResponse:
        """Notes a message handed to the caller: the resume cursor, and progress (a replay is reading too)."""
        if message.cursor:
            self.cursor = message.cursor
        if self.subscriber is not None and self.subscriber.full_since is not None:
            self.subscriber.full_since = time.monotonic()
        return message

    def attach(self, subscriber: _Subscriber) -> None:
        self.subscriber = subscriber
        if self.ending is not None:
            subscriber.finish()

    def end(self, reason: str) -> None:
        """Ends the stream (once): its iterator hands out nothing more and stops."""
        if self.ending is not None or self.released:
            return
        self.ending = reason
        self._lifetime.cancel()
        log.log(
            logging.INFO if reason in (REVOKED_KEY, SLOW_CONSUMER) else logging.DEBUG, "ending a log stream: %s", reason
        )
        if self.subscriber is not None:
            self.subscriber.finish()
        if self.caller is not None:
            self.caller.end(reason, self.cursor)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._lifetime.cancel()
            self.hub.release(self)


class _Key:
    """The open streams of one API key, and when the key is checked next."""

    def __init__(self, next_check: float):
        self.viewers: set[_Viewer] = set()
        self.next_check = next_check
        self.checking: asyncio.Task[None] | None = None


def _retrieve(future: asyncio.Future[None]) -> None:
    """A failed first connect is reported to the subscribers waiting for it; none waiting is not an error."""
    if not future.cancelled():
        future.exception()


class TailHub:
    """The ``LogStreamer`` capability. ``close()`` ends every subscriber stream cleanly."""

    def __init__(
        self, loki: LokiClient, scheme: LabelScheme, signer: SignerSource, settings: TailSettings | None = None
    ):
        self.loki = loki
        self.scheme = scheme
        self.settings = settings or TailSettings()
        self._signer = signer
        self._upstreams: dict[AppKey, _Upstream] = {}
        # Open streams per app (admitted, not yet released): an app with any holds its tail budget, even
        # before its upstream exists (so two streams admitted together cannot both take the last place).
        self._claims: dict[AppKey, int] = {}
        self._closed = False
        self._viewers: set[_Viewer] = set()
        self._keys: dict[str, _Key] = {}
        self._warden: asyncio.Task[None] | None = None
        self._recheck_warned = -RECHECK_WARN_EVERY_S

    def discard(self, upstream: _Upstream) -> None:
        if self._upstreams.get(upstream.key) is upstream:
            del self._upstreams[upstream.key]

    async def close(self) -> None:
        self._closed = True
        for viewer in list(self._viewers):
            viewer.end(SHUTTING_DOWN)
        tasks = [t for t in (self._warden, *(k.checking for k in self._keys.values())) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        upstreams = list(self._upstreams.values())
        self._upstreams.clear()
        for upstream in upstreams:
            upstream.end()
        await asyncio.gather(*(u.task for u in upstreams), return_exceptions=True)

    async def open_stream(
        self, app: App, request: pb.StreamAppLogsRequest, caller: Caller | None = None
    ) -> AsyncIterator[pb.StreamAppLogsResponse]:
        """Checks the request (cursor, shutdown, caps) at once, then returns the stream of its messages.

        Split in two so the servicer can tell the client "accepted" (gRPC headers) before the first entry,
        which may be minutes away on a quiet app, while a bad cursor or one stream too many is still refused
        outright. Without a ``caller`` the stream counts towards ``max_streams`` only, and ends silently.
        """
        signer = await self._signer()
        kept = filters.from_request(request)
        digest = query_digest("stream", app.workspace_id, app.id, request.severity, *kept.extra_digest_parts())
        resume: StreamPosition | None = None
        if request.cursor:
            try:
                resume = signer.open_cursor(digest, request.cursor)
            except BadToken as error:
                raise InvalidArgument("cursor", str(error)) from None
        start = None if request.cursor else _start_of(request)  # a reconnecting client resumes where it was
        if self._closed:
            raise Unavailable("log stream", "the server is shutting down")
        viewer = self._admit(caller, request.cursor, (app.workspace_id, app.id))
        stream = self._stream(app, kept, signer, digest, resume, viewer, start)
        # A stream never iterated (its call failed before the first read) gives its place back too.
        weakref.finalize(stream, viewer.release).atexit = False
        return stream

    # -- caps and ends ---------------------------------------------------------------------------

    def _admit(self, caller: Caller | None, cursor: str, app: AppKey) -> _Viewer:
        settings = self.settings
        key = self._keys.get(caller.key_id) if caller is not None else None
        if key is not None and len(key.viewers) >= settings.max_streams_per_key:
            n = settings.max_streams_per_key
            raise _too_many_streams(
                f"too many log streams: the limit of {n} open log streams per API key is reached; close one first",
                limit="max_streams_per_key",
                maximum=n,
            )
        if len(self._viewers) >= settings.max_streams:
            n = settings.max_streams
            raise _too_many_streams(
                f"too many log streams: the limit of {n} open log streams on this server is reached; retry later",
                limit="max_streams",
                maximum=n,
            )
        self._budget_tail(app)
        viewer = _Viewer(self, caller, cursor, app)
        self._claims[app] = self._claims.get(app, 0) + 1
        self._viewers.add(viewer)
        if caller is not None:
            if key is None:
                key = self._keys[caller.key_id] = _Key(time.monotonic() + settings.key_recheck_s)
            key.viewers.add(viewer)
        if self._warden is None or self._warden.done():
            self._warden = asyncio.create_task(self._watch(), name="log stream warden")
        return viewer

    def _budget_tail(self, app: AppKey) -> None:
        """Makes sure ``app`` may be tailed: it already is, or there is room under both tail budgets, or a
        lingering upstream (no streams) is closed to make room. Refuses the caller otherwise."""
        if app in self._claims or app in self._upstreams:
            return
        settings = self.settings
        tailed = self._claims.keys() | self._upstreams.keys()
        workspace = app[0]
        if sum(1 for key in tailed if key[0] == workspace) >= settings.max_tailed_apps_per_workspace:
            if not self._close_idlest(lambda key: key[0] == workspace):
                n = settings.max_tailed_apps_per_workspace
                raise _too_many_streams(
                    f"too many tailed apps: the limit of {n} apps with open log streams per workspace is reached;"
                    " close the streams of another app first",
                    limit="max_tailed_apps_per_workspace",
                    maximum=n,
                )
            tailed = self._claims.keys() | self._upstreams.keys()
        if len(tailed) >= settings.max_upstream_tails and not self._close_idlest(lambda key: True):
            n = settings.max_upstream_tails
            raise _too_many_streams(
                f"too many tailed apps: the limit of {n} Loki tails on this server is reached; retry later",
                limit="max_upstream_tails",
                maximum=n,
            )

    def _close_idlest(self, eligible: Callable[[AppKey], bool]) -> bool:
        """Closes the upstream that has lingered longest among the eligible ones without streams; whether
        there was one."""
        lingering = [
            u
            for key, u in self._upstreams.items()
            if eligible(key) and key not in self._claims and not u.subscribers and u.idle_since is not None
        ]
        if not lingering:
            return False
        idlest = min(lingering, key=lambda u: u.idle_since or 0.0)
        log.debug("closing the lingering tail %s to make room for another app", idlest.key)
        idlest.close()
        return True

    def release(self, viewer: _Viewer) -> None:
        if viewer in self._viewers:
            left = self._claims.get(viewer.app, 0) - 1
            if left > 0:
                self._claims[viewer.app] = left
            else:
                self._claims.pop(viewer.app, None)
        self._viewers.discard(viewer)
        key = self._keys.get(viewer.key) if viewer.key is not None else None
        if key is not None:
            key.viewers.discard(viewer)
            if not key.viewers:
                del self._keys[viewer.key]  # type: ignore[arg-type]
                if key.checking is not None:
                    key.checking.cancel()

    async def _watch(self) -> None:
        """While streams are open: ends those whose client stalled, and re-checks each API key in turn."""
        settings = self.settings
        tick = max(0.05, min(1.0, settings.stalled_after_s / 4, settings.key_recheck_s / 2))
        while self._viewers:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for viewer in list(self._viewers):
                subscriber = viewer.subscriber
                if subscriber is not None and subscriber.stalled(now, settings.stalled_after_s):
                    viewer.end(SLOW_CONSUMER)
            for key in self._keys.values():
                if key.checking is None and now >= key.next_check:
                    key.checking = asyncio.create_task(self._recheck(key), name="API key re-check")

    async def _recheck(self, key: _Key) -> None:
        try:
            callers = [v.caller for v in key.viewers if v.caller is not None and v.ending is None]
            if not callers:
                return
            valid = await callers[0].key_valid()
        except Exception as error:  # the store cannot tell now: the streams go on, and are asked about again
            detail = error.message if isinstance(error, ServiceError) else repr(error)
            now = time.monotonic()
            level = logging.WARNING if now - self._recheck_warned >= RECHECK_WARN_EVERY_S else logging.DEBUG
            if level == logging.WARNING:
                self._recheck_warned = now
            log.log(level, "cannot re-check the API key of open log streams (they go on): %s", detail)
            return
        finally:
            key.checking = None
            key.next_check = time.monotonic() + self.settings.key_recheck_s
        if not valid:
            for viewer in list(key.viewers):
                viewer.end(REVOKED_KEY)

    # -- one stream ------------------------------------------------------------------------------

    async def _stream(
        self,
        app: App,
        kept: LogFilter,
        signer: Signer,
        digest: bytes,
        resume: StreamPosition | None,
        viewer: _Viewer,
        start: _Start | None = None,
    ) -> AsyncIterator[pb.StreamAppLogsResponse]:
        try:
            # Closed (or ended) between open_stream and the first read: open no tail nobody would close.
            if self._closed or viewer.ending is not None:
                return
            key = viewer.app
            upstream = self._upstreams.get(key)
            if upstream is None:
                query = self.scheme.selector(app.workspace_id, app.id)  # every entry: filtered per subscriber
                upstream = self._upstreams[key] = _Upstream(self, key, query, signer)
            subscriber = upstream.subscribe(kept, digest)
            viewer.attach(subscriber)
            if resume is None:
                viewer.cursor = signer.cursor(digest, upstream.joined_at())
            try:
                await asyncio.shield(upstream.connected)
                replayed = _Replayed(upstream)
                own: StreamPosition | None = None
                replay_query = kept.logql(self.scheme, app.workspace_id, app.id)
                expired = "cursor_expired"
                if resume is None and start is not None:
                    # Backfill or a start time: a replay from a position worked out here, as if resumed.
                    resume, expired = await self._start_position(replay_query, start), "start_time_expired"
                    viewer.cursor = signer.cursor(digest, resume)
                if resume is not None:
                    own = resume
                    resumed = self._resume(upstream, replay_query, resume, replayed, signer, digest, expired)
                    async for message, identity in resumed:
                        if viewer.ending is not None:
                            return
                        if identity is not None:
                            own = advance(own, [identity])
                        yield viewer.handed(message)
                while True:
                    if replayed:  # only after a resume: the common stream pays nothing per event
                        replayed.forget_older()
                    if (event := await subscriber.next()) is None:
                        break
                    if replayed.take(event.identity):
                        continue
                    if own is not None and resume is not None and _covered(resume, event.identity):
                        continue  # a new upstream's back-fill reaches before the cursor: the client has these
                    if own is None or event.identity is None:
                        yield viewer.handed(event.message)
                        continue
                    own = advance(own, [event.identity])
                    if event.position.ts > own.ts:
                        own = None  # the hub is ahead of everything replayed: its cursors are valid from here
                        yield viewer.handed(event.message)
                    else:
                        message = pb.StreamAppLogsResponse()
                        message.CopyFrom(event.message)
                        message.cursor = signer.cursor(digest, own)
                        yield viewer.handed(message)
            finally:
                upstream.unsubscribe(subscriber)
        finally:
            viewer.release()

    async def _start_position(self, query: str, start: _Start) -> StreamPosition:
        """The position a stream with ``start`` replays from: at ``since_ns`` (inclusive), or just before the last
        ``backfill`` entries of ``query`` in canonical order (the newest first, as ListAppLogs pages them)."""
        if start.since_ns is not None:  # nothing at since_ns delivered yet: it is replayed, nothing before it
            return StreamPosition(start.since_ns, ())
        oldest = _replay_start(StreamPosition(0, ()))
        streams = await self.loki.query_range(
            query, start_ns=oldest, end_ns=time.time_ns() + MAX_FUTURE_NS, limit=start.backfill, forward=False
        )
        newest = canonical(streams)
        if len(newest) < start.backfill:
            return StreamPosition(oldest - 1, ())  # fewer than asked for: all of them
        cut = newest[start.backfill - 1].ts
        taken = sum(1 for entry in newest if entry.ts == cut)
        # Loki chose which entries at the cut it returned; the canonical first `taken` of all of them are ours,
        # and the replay skips the rest of that nanosecond by their digests.
        group = canonical(
            await self.loki.query_range(query, start_ns=cut, end_ns=cut + 1, limit=MAX_ENTRIES, forward=False)
        )
        return StreamPosition(cut, tuple(entry_digest(entry.identity) for entry in group[taken:]))

    async def _resume(
        self,
        upstream: _Upstream,
        query: str,
        resume: StreamPosition,
        replayed: _Replayed,
        signer: Signer,
        digest: bytes,
        expired: str = "cursor_expired",
    ) -> AsyncIterator[tuple[pb.StreamAppLogsResponse, Identity | None]]:
        """What a resumed stream sends before it goes live: a gap (reason ``expired``) when Loki cannot be asked
        back to the cursor, then the replay of ``query`` (the stream's filters only) up to where ``upstream``
        takes over, noting in ``replayed`` the entries the upstream could still send."""
        since = _replay_start(resume)
        if resume.ts < since:
            # dropped_entries 0 means unknown, as the proto says: Loki may not even hold those entries any more.
            gap = pb.StreamGap(dropped_entries=0, reason=expired)
            cursor = signer.cursor(digest, StreamPosition(since - 1, ()))
            yield pb.StreamAppLogsResponse(gap=gap, cursor=cursor), None
        end = upstream.handover()
        async for message, identity in self._replay(query, resume, signer, digest, since=since, end=end):
            replayed.add(identity)
            yield message, identity

    async def _replay(
        self,
        query: str,
        resume: StreamPosition,
        signer: Signer,
        digest: bytes,
        *,
        since: int | None = None,
        end: int | None = None,
    ) -> AsyncIterator[tuple[pb.StreamAppLogsResponse, Identity]]:
        """The entries after ``resume`` that are in Loki in [since, end), oldest first, each with its cursor.

        ``since`` defaults to :func:`_replay_start`, ``end`` to forward()'s. One batch is read at a time, when
        the client has taken the last one, so nothing piles up for a slow client.
        """
        since = _replay_start(resume) if since is None else since
        if end is not None and since >= end:
            return
        seen = set(resume.digests)
        position = resume
        async for batch in self.forward(query, since, end=end):
            for entry in batch:
                identity = entry.identity
                if entry.ts == resume.ts and entry_digest(identity) in seen:
                    continue
                position = advance(position, [identity])
                message = pb.StreamAppLogsResponse(
                    entry=to_proto(entry, self.scheme), cursor=signer.cursor(digest, position)
                )
                yield message, identity
            if self._closed:
                return

    async def forward(self, query: str, start: int, *, end: int | None = None) -> AsyncIterator[list[Entry]]:
        """Every entry from ``start`` (inclusive) to ``end`` (exclusive; default: now + Loki's 10 min future
        slack), oldest first, in batches without repeats."""
        end = time.time_ns() + MAX_FUTURE_NS if end is None else end
        limit = self.settings.fill_batch
        boundary: set[Identity] = set()
        while True:
            streams = await self.loki.query_range(query, start_ns=start, end_ns=end, limit=limit, forward=True)
            batch = canonical(streams, newest_first=False)
            fresh = [e for e in batch if not (e.ts == start and e.identity in boundary)]
            if len(batch) < limit:
                yield fresh
                return
            last = batch[-1].ts
            if not fresh:
                if limit >= MAX_ENTRIES:
                    raise Unavailable(BACKEND, f"more than {limit} entries share the timestamp {start} ns")
                limit = min(limit * 4, MAX_ENTRIES)
                continue
            yield fresh
            # The next query starts at the last timestamp again (inclusive); entries of that instant
            # already yielded are remembered so none is repeated and none is skipped.
            boundary = {e.identity for e in batch if e.ts == last} | (boundary if last == start else set())
            start = last
