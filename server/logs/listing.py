"""ListAppLogs over Loki's query_range: newest first, with exact paging.

Loki has no cursor, and several entries (from several streams) can share one nanosecond. Pages are cut
in a *canonical order* that does not depend on Loki's internal tie order: timestamp descending, then the
stream's label set (descending too), then Loki's order within that stream. A page token records
"everything newer than ``boundary`` was served, plus the first ``served`` entries at ``boundary`` in
canonical order". Whenever a
page boundary falls inside a group of entries sharing one timestamp, the whole group is fetched with a
one-nanosecond query ``[t, t+1)``, so the cut is exact however large the group (up to Loki's 5000 cap).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import validation
from server.convert import NS_PER_S, set_timestamp
from server.errors import InvalidArgument, Unavailable
from server.logs import filters
from server.logs.entries import SignerSource, canonical
from server.logs.logql import LabelScheme, Severity
from server.logs.loki import BACKEND, MAX_ENTRIES, MAX_QUERY_LENGTH_NS, Entry, LokiClient
from server.logs.tokens import BadToken, PagePosition, query_digest
from server.store.records import App

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_WINDOW_NS = 3600 * NS_PER_S

PREFETCH_MAX = 64  # next pages held at once (each up to MAX_LIMIT entries)
PREFETCH_DEPTH = 2  # pages fetched ahead of a caller that is paging through
PREFETCH_TTL_S = 30.0  # a next page older than this is fetched again

Page = tuple[list[Entry], PagePosition | None]


@dataclasses.dataclass(frozen=True)
class _Query:
    """What one listing asks Loki for: the LogQL and the direction (pages differ for each)."""

    logql: str
    newest_first: bool


def to_response(entries: Sequence[Entry], scheme: LabelScheme) -> pb.ListAppLogsResponse:
    """A page as a response; the severity is worked out once per stream, and entries are filled in place
    (about twice as fast as building LogEntry messages and copying them in)."""
    severities: dict[str, Severity] = {}
    response = pb.ListAppLogsResponse()
    add = response.logs.add
    for entry in entries:
        severity = severities.get(entry.stream)
        if severity is None:
            severity = severities[entry.stream] = scheme.severity(entry.labels)
        log_entry = add(severity=severity, message=entry.line)
        set_timestamp(log_entry.timestamp, entry.ts)
    return response


def _check_window(entries: Sequence[Entry], start: int, end: int, *, newest_first: bool = True) -> None:
    """Exact paging relies on Loki's window rule (start inclusive, end exclusive): check it, never guess."""
    if not entries:
        return
    oldest, newest = (entries[-1], entries[0]) if newest_first else (entries[0], entries[-1])
    if not (start <= oldest.ts and newest.ts < end):
        raise Unavailable(BACKEND, f"query_range returned entries outside the requested window [{start}, {end})")


class AppLogs:
    """The ``LogReader`` capability."""

    def __init__(
        self,
        loki: LokiClient,
        scheme: LabelScheme,
        signer: SignerSource,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], int] = time.time_ns,
    ):
        self._loki = loki
        self._scheme = scheme
        self._signer = signer
        self._max_entries = max_entries
        self._clock = clock
        # Next pages fetched ahead for callers that are paging through: (query, position, limit) → task.
        self._ahead: collections.OrderedDict[tuple[_Query, PagePosition, int], tuple[float, asyncio.Task[Page]]] = (
            collections.OrderedDict()
        )
        self._depth: dict[tuple[_Query, PagePosition, int], int] = {}

    async def list_logs(self, app: App, request: pb.ListAppLogsRequest) -> pb.ListAppLogsResponse:
        limit = validation.limit("limit", request.limit, default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
        start = validation.timestamp_ns("start_time", request.start_time) if request.HasField("start_time") else None
        end = validation.timestamp_ns("end_time", request.end_time) if request.HasField("end_time") else None
        kept = filters.from_request(request)
        direction = validation.require_enum(
            "direction", request.direction, pb.LogDirection.DESCRIPTOR, default=pb.LOG_DIRECTION_NEWEST_FIRST
        )
        newest_first = direction == pb.LOG_DIRECTION_NEWEST_FIRST
        # The token is bound to the filters as the client sent them (not to the resolved "now").
        extra = kept.extra_digest_parts() + (() if newest_first else ("oldest_first",))
        digest = query_digest("logs", app.workspace_id, app.id, request.severity, start, end, *extra)
        signer = await self._signer()
        if request.page_token:
            try:
                position = signer.open_page_token(digest, request.page_token)
            except BadToken as error:
                raise InvalidArgument("page_token", str(error)) from None
        else:
            position = self._first_position(start, end, newest_first)
        query = _Query(kept.logql(self._scheme, app.workspace_id, app.id), newest_first)
        entries, following = await self._prefetched_or_fetch(query, position, limit)
        response = to_response(entries, self._scheme)
        if following is not None:
            response.next_page_token = signer.page_token(digest, following)
            if request.page_token:
                # The caller is paging through (not just looking at the first page): fetch the next page
                # while it processes this one.
                self._prefetch(query, following, limit)
        return response

    def _prefetch(self, query: _Query, position: PagePosition, limit: int, depth: int = PREFETCH_DEPTH) -> None:
        """Starts fetching the page at ``position`` unless it is already on its way; once it is in, the
        page after it follows, ``depth`` pages ahead in all (Loki stays busy while the caller reads)."""
        key = (query, position, limit)
        self._depth[key] = max(self._depth.get(key, 0), depth)
        ahead = self._ahead.get(key)
        if ahead is None:
            task = asyncio.create_task(self._page(query, position, limit))
            task.add_done_callback(lambda done: self._chain(key, done))
            self._ahead[key] = (time.monotonic(), task)
            while len(self._ahead) > PREFETCH_MAX:
                old_key, (_, old) = self._ahead.popitem(last=False)
                self._depth.pop(old_key, None)
                old.cancel()
        elif ahead[1].done():
            self._chain(key, ahead[1])

    def _chain(self, key: tuple[_Query, PagePosition, int], task: asyncio.Task[Page]) -> None:
        if task.cancelled() or task.exception() is not None:  # retrieving it marks it seen
            return
        depth = self._depth.get(key, 1)
        following = task.result()[1]
        if depth > 1 and following is not None and key in self._ahead:
            self._prefetch(key[0], following, key[2], depth - 1)

    async def _prefetched_or_fetch(self, query: _Query, position: PagePosition, limit: int) -> Page:
        ahead = self._ahead.pop((query, position, limit), None)
        self._depth.pop((query, position, limit), None)
        if ahead is not None and time.monotonic() - ahead[0] <= PREFETCH_TTL_S:
            with contextlib.suppress(Exception):
                return await ahead[1]
            # A failed prefetch is retried below, so the caller sees a fresh error (or a result).
        elif ahead is not None:
            ahead[1].cancel()
        return await self._page(query, position, limit)

    async def close(self) -> None:
        for _, task in self._ahead.values():
            task.cancel()
        await asyncio.gather(*(task for _, task in self._ahead.values()), return_exceptions=True)
        self._ahead.clear()
        self._depth.clear()

    def _first_position(self, start: int | None, end: int | None, newest_first: bool) -> PagePosition:
        if end is None:
            end = self._clock()
            if start is not None and start > end:
                raise InvalidArgument("start_time", "is in the future (end_time defaults to now)")
        if start is None:
            start = max(end - DEFAULT_WINDOW_NS, 0)
        if end < start:
            raise InvalidArgument("end_time", "must not be before start_time")
        if end - start > MAX_QUERY_LENGTH_NS:
            hours = MAX_QUERY_LENGTH_NS // (3600 * NS_PER_S)
            raise InvalidArgument("start_time", f"the window from start_time to end_time may span at most {hours}h")
        if newest_first:  # nothing newer than end - 1 is wanted, and nothing at end - 1 was served yet
            return PagePosition(start, end, end - 1, 0)
        return PagePosition(start, end, start, 0)  # nothing older than start, nothing at start served yet

    async def _page(self, query: _Query, pos: PagePosition, limit: int) -> Page:
        """One page from ``pos``, and the position after it (None when the window is exhausted)."""
        if query.newest_first:
            return await self._page_backward(query, pos, limit)
        return await self._page_forward(query, pos, limit)

    async def _page_backward(self, query: _Query, pos: PagePosition, limit: int) -> Page:
        """Newest first: ``boundary_ns`` is the newest timestamp not yet wholly served."""
        out: list[Entry] = []
        upper = pos.boundary_ns + 1  # exclusive end of what is still unserved (boundary group aside)
        if pos.served > 0:
            rest = (await self._group(query, pos.boundary_ns))[pos.served :]
            if len(rest) > limit:
                return rest[:limit], PagePosition(pos.start_ns, pos.end_ns, pos.boundary_ns, pos.served + limit)
            out.extend(rest)
            upper = pos.boundary_ns
        remaining = limit - len(out)
        if upper <= pos.start_ns:
            return out, None
        # One more than needed tells whether anything follows this page.
        batch = canonical(
            await self._loki.query_range(
                query.logql, start_ns=pos.start_ns, end_ns=upper, limit=remaining + 1, forward=False
            )
        )
        _check_window(batch, pos.start_ns, upper)
        if len(batch) <= remaining:
            return out + batch, None
        if remaining == 0:
            return out, PagePosition(pos.start_ns, pos.end_ns, upper - 1, 0)
        cut_ts = batch[remaining - 1].ts
        newer = [e for e in batch if e.ts > cut_ts]
        need = remaining - len(newer)
        group = await self._whole_group(query, batch, remaining, cut_ts)
        out.extend(newer)
        out.extend(group[:need])
        if need >= len(group):
            return out, PagePosition(pos.start_ns, pos.end_ns, cut_ts - 1, 0)
        return out, PagePosition(pos.start_ns, pos.end_ns, cut_ts, need)

    async def _page_forward(self, query: _Query, pos: PagePosition, limit: int) -> Page:
        """Oldest first, the mirror image: ``boundary_ns`` is the oldest timestamp not yet wholly served."""
        out: list[Entry] = []
        lower = pos.boundary_ns  # inclusive start of what is still unserved (boundary group aside)
        if pos.served > 0:
            rest = (await self._group(query, pos.boundary_ns))[pos.served :]
            if len(rest) > limit:
                return rest[:limit], PagePosition(pos.start_ns, pos.end_ns, pos.boundary_ns, pos.served + limit)
            out.extend(rest)
            lower = pos.boundary_ns + 1
        remaining = limit - len(out)
        if lower >= pos.end_ns:
            return out, None
        batch = canonical(
            await self._loki.query_range(
                query.logql, start_ns=lower, end_ns=pos.end_ns, limit=remaining + 1, forward=True
            ),
            newest_first=False,
        )
        _check_window(batch, lower, pos.end_ns, newest_first=False)
        if len(batch) <= remaining:
            return out + batch, None
        if remaining == 0:
            return out, PagePosition(pos.start_ns, pos.end_ns, lower, 0)
        cut_ts = batch[remaining - 1].ts
        older = [e for e in batch if e.ts < cut_ts]
        need = remaining - len(older)
        group = await self._whole_group(query, batch, remaining, cut_ts)
        out.extend(older)
        out.extend(group[:need])
        if need >= len(group):
            return out, PagePosition(pos.start_ns, pos.end_ns, cut_ts + 1, 0)
        return out, PagePosition(pos.start_ns, pos.end_ns, cut_ts, need)

    async def _whole_group(self, query: _Query, batch: list[Entry], remaining: int, cut_ts: int) -> list[Entry]:
        """The entries at ``cut_ts``: from the batch, or, when the batch may hold only part of them (the entry
        after the cut shares the timestamp), all of them fetched with a one-nanosecond query."""
        if batch[remaining].ts != cut_ts:
            return [e for e in batch if e.ts == cut_ts]
        group = await self._group(query, cut_ts)
        if len(group) < sum(1 for e in batch if e.ts == cut_ts):
            raise Unavailable(BACKEND, f"query_range for [{cut_ts}, {cut_ts + 1}) returned fewer entries than before")
        return group

    async def _group(self, query: _Query, ts: int) -> list[Entry]:
        """Every entry at exactly ``ts``, in canonical order."""
        streams = await self._loki.query_range(
            query.logql, start_ns=ts, end_ns=ts + 1, limit=self._max_entries, forward=not query.newest_first
        )
        group = canonical(streams, newest_first=query.newest_first)
        _check_window(group, ts, ts + 1)
        if len(group) >= self._max_entries:
            raise Unavailable(
                BACKEND,
                f"{len(group)} or more entries share the timestamp {ts} ns; Loki's max_entries_limit_per_query "
                f"({self._max_entries}) prevents paging through them exactly",
            )
        return group
