"""The one module that speaks to Loki: ``query_range`` over a pooled httpx client (aiohttp underneath,
:mod:`server.backend_body`), ``/tail`` over websockets.

Loki answers errors as plain text (not JSON); they become :class:`Unavailable` naming Loki and the cause in
plain words ("it answered HTTP 400 (bad request)"), an answer of the wrong shape "malformed response from Loki",
and no complete answer within the timeout :class:`DeadlineExceeded`. Loki's text (it echoes the LogQL), the URL
(it may carry a password) and the query go into the error's ``detail``, which only the server log sees.
Nanosecond timestamps stay ``int`` end to end. An answer larger than :data:`MAX_RESPONSE_BYTES` (decoded) is
refused with "the answer is larger than 128 MiB; ask for fewer lines", without reading past the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlencode

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from server.backend_body import decode_json, http_client, read_capped
from server.errors import DeadlineExceeded, ServiceError, Unavailable, http_cause, network_cause, without_password

BACKEND = "Loki"
# Loki's per-tenant defaults, which a query must stay within (400 otherwise); listing and tail both use them.
MAX_ENTRIES = 5000  # max_entries_limit_per_query: the largest `limit` of one query
MAX_QUERY_LENGTH_NS = 721 * 3600 * 10**9  # max_query_length: the widest [start, end) of one query
MAX_FUTURE_NS = 600 * 10**9  # ingestion refuses entries more than 10 min ahead of Loki's clock
# The largest query_range answer read, in decoded (decompressed) bytes. A full page at Loki's defaults could be
# 5000 lines × 256 KB (max_line_size) = 1.25 GB: too much to hold; such a page is refused, and a smaller limit
# gets it. Read at each call, so tests can lower it. (Tail frames are capped by the WebSocket's max_size.)
MAX_RESPONSE_BYTES = 128 * 2**20
_ADVICE = "; ask for fewer lines"  # a page that large is a limit= the caller can lower
_MAX_CAUSE = 300  # how much of Loki's body the detail (the log, never the caller) quotes
QUERY_RANGE = "/loki/api/v1/query_range"
TAIL = "/loki/api/v1/tail"
# What a body of the wrong shape raises while it is read (json, indexing, int(), the checks below).
_SHAPE_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError)

T = TypeVar("T")


class Entry(NamedTuple):
    """One log line as Loki returns it. ``stream`` is the label-set string, part of the entry's identity.

    A NamedTuple rather than a dataclass: pages hold thousands of these, and creation cost shows.
    """

    stream: str
    labels: Mapping[str, str]
    ts: int
    line: str

    @property
    def identity(self) -> tuple[str, int, str]:
        return (self.stream, self.ts, self.line)


@dataclasses.dataclass(frozen=True, slots=True)
class TailFrame:
    entries: list[Entry]
    dropped: int  # entries Loki discarded for this tail (its ``dropped_entries``)


class TailClosed(Exception):
    """The tail WebSocket ended; ``code``/``reason`` are the close frame's (1006 when there was none)."""

    def __init__(self, code: int, reason: str):
        super().__init__(f"tail closed with {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


def loki_time(ns: int) -> str:
    """A time parameter Loki reads exactly: integers of up to 10 digits would be taken as seconds."""
    if ns >= 10**10:
        return str(ns)
    seconds, nanos = divmod(ns, 10**9)
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def labels_key(labels: Mapping[str, str]) -> str:
    """A stable string for a label set (sorted names; JSON-escaped values, so it is unambiguous)."""
    return "{" + ",".join(f"{k}={json.dumps(labels[k], ensure_ascii=False)}" for k in sorted(labels)) + "}"


def parse_streams(result: Any) -> list[list[Entry]]:
    """``data.result`` of a streams answer, one list per result item in Loki's order.

    Any other shape raises one of ``_SHAPE_ERRORS``, which callers turn into "malformed", never a crash.
    """
    if not isinstance(result, list):
        raise TypeError("result is not a list")
    out: list[list[Entry]] = []
    for item in result:
        labels, values = item["stream"], item["values"]
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise TypeError("stream labels are not an object of strings")
        if not isinstance(values, list):
            raise TypeError("values is not a list")
        key = labels_key(labels)
        entries = [Entry(key, labels, int(value[0]), value[1]) for value in values]
        if not all(isinstance(entry.line, str) for entry in entries):
            raise TypeError("a log line is not a string")
        out.append(entries)
    return out


def _streams(body: Any) -> list[list[Entry]]:
    data = body["data"]
    if data["resultType"] != "streams":
        raise ValueError(f"resultType {data['resultType']!r}, expected 'streams'")
    return parse_streams(data["result"])


class LokiClient:
    def __init__(self, base_url: str, *, timeout_s: float, tenant: str = "", max_connections: int = 50):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._logged_url = without_password(self.base_url)
        self._headers = {"X-Scope-OrgID": tenant} if tenant else {}
        self._http = http_client(self.base_url, timeout_s, max_connections, headers=self._headers)

    async def close(self) -> None:
        await self._http.aclose()

    async def query_range(
        self, query: str, *, start_ns: int, end_ns: int, limit: int, forward: bool
    ) -> list[list[Entry]]:
        """Entries of [start_ns, end_ns) as Loki returns them: one list per stream, each in direction order."""
        params = {
            "query": query,
            "start": loki_time(start_ns),
            "end": loki_time(end_ns),
            "limit": str(limit),
            "direction": "forward" if forward else "backward",
        }
        try:
            return _parsed(await self._get(QUERY_RANGE, params), _streams)
        except ServiceError as error:
            raise self._explained(error, QUERY_RANGE, query) from None

    async def _get(self, path: str, params: Mapping[str, str]) -> bytes:
        """The body of a 200 answer to ``path``, or the domain error of the failed exchange."""
        try:
            # httpx's timeouts are per phase (connect, each read): a body trickling in would never end. This
            # bounds the whole exchange, as the Prometheus client does.
            async with asyncio.timeout(self.timeout_s):
                async with self._http.stream("GET", path, params=params) as response:
                    body = await read_capped(
                        response, MAX_RESPONSE_BYTES, backend=BACKEND, advice="; ask for fewer lines"
                    )
        except (TimeoutError, httpx.TimeoutException) as error:
            raise DeadlineExceeded(BACKEND, self.timeout_s, detail=f"no answer in time ({error!r})") from None
        except httpx.HTTPError as error:
            raise Unavailable(BACKEND, _cause(error), detail=f"{type(error).__name__}: {error}") from None
        if response.status_code != 200:
            detail = f"HTTP {response.status_code}: {_text(_decoded(body))}"
            raise Unavailable(BACKEND, http_cause(response.status_code), detail=detail)
        return body

    def _explained(self, error: ServiceError, path: str, query: str) -> ServiceError:
        """``error`` with the request in its detail: where it failed knows what went wrong, not which request."""
        error.detail = f"GET {self._logged_url}{path} query={query!r}: {error.detail}"
        return error

    @contextlib.asynccontextmanager
    async def tail(self, query: str, *, start_ns: int, limit: int, delay_for: int = 0) -> AsyncIterator[Tail]:
        """Opens ``/loki/api/v1/tail``; the connection is closed with 1000 when the block exits."""
        params = {"query": query, "start": loki_time(start_ns), "limit": str(limit), "delay_for": str(delay_for)}
        url = self.base_url.replace("http", "ws", 1) + TAIL + "?" + urlencode(params)
        try:
            connection = await self._connect(url)
        except ServiceError as error:
            raise self._explained(error, TAIL, query) from None
        try:
            yield Tail(connection)
        finally:
            await connection.close()

    async def _connect(self, url: str) -> ClientConnection:
        try:
            return await websockets.connect(
                url,
                additional_headers=self._headers,
                open_timeout=self.timeout_s,
                ping_interval=None,  # Loki pings us every second; its pings are answered automatically
                max_size=2**24,
                close_timeout=2,
            )
        except TimeoutError as error:
            raise DeadlineExceeded(BACKEND, self.timeout_s, detail=f"no upgrade in time ({error!r})") from None
        except websockets.InvalidStatus as error:
            status = error.response.status_code
            body = error.response.body.decode(errors="replace") if error.response.body else ""
            raise Unavailable(BACKEND, http_cause(status), detail=f"HTTP {status}: {_text(body)}") from None
        except (OSError, websockets.WebSocketException) as error:
            cause = network_cause(error) or "the tail connection failed"
            raise Unavailable(BACKEND, cause, detail=f"{type(error).__name__}: {error}") from None


class Tail:
    """An open tail. :meth:`recv` returns the next frame; a closed tail raises :class:`TailClosed`."""

    def __init__(self, connection: ClientConnection):
        self._connection = connection

    async def recv(self, timeout_s: float) -> TailFrame | None:
        """The next frame, or None when none came within ``timeout_s`` (the tail stays usable)."""
        try:
            # websockets' recv() may be cancelled and called again without losing a message.
            message = await asyncio.wait_for(self._connection.recv(), timeout_s)
        except TimeoutError:
            return None
        except websockets.ConnectionClosed as closed:
            frame = closed.rcvd
            raise TailClosed(frame.code if frame else 1006, frame.reason if frame else "") from None
        try:
            body = decode_json(message)
            entries = [e for stream in parse_streams(body.get("streams") or []) for e in stream]
        except _SHAPE_ERRORS as error:
            raise TailClosed(1007, f"unreadable tail frame: {error}") from None
        return TailFrame(entries, len(body.get("dropped_entries") or ()))


def _parsed(body: bytes, parse: Callable[[Any], T]) -> T:
    """``parse`` of the JSON body; a body of any other shape is a malformed answer (UNAVAILABLE, not UNKNOWN)."""
    try:
        return parse(decode_json(body))
    except _SHAPE_ERRORS as error:
        raise Unavailable.malformed(BACKEND, f"{error!r} in the body {_text(_decoded(body))!r}") from None


def _decoded(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _cause(error: httpx.HTTPError) -> str:
    """Plain words for a failed exchange (httpx's own text may name the host)."""
    if (words := network_cause(error)) is not None:
        return words
    if isinstance(error, httpx.RemoteProtocolError):
        return "connection closed without a complete answer"
    return "the request failed"


def _text(body: str) -> str:
    body = body.strip()
    return body if len(body) <= _MAX_CAUSE else body[:_MAX_CAUSE] + "…"
