"""The one module that speaks to Loki: ``query_range`` over a pooled httpx client, ``/tail`` over websockets.

Loki answers errors as plain text (not JSON); they become :class:`Unavailable` naming Loki and the cause,
a timeout becomes :class:`DeadlineExceeded`. Nanosecond timestamps stay ``int`` end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlencode

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from server.errors import DeadlineExceeded, Unavailable

BACKEND = "Loki"
# Loki's per-tenant defaults, which a query must stay within (400 otherwise); listing and tail both use them.
MAX_ENTRIES = 5000  # max_entries_limit_per_query: the largest `limit` of one query
MAX_QUERY_LENGTH_NS = 721 * 3600 * 10**9  # max_query_length: the widest [start, end) of one query
MAX_FUTURE_NS = 600 * 10**9  # ingestion refuses entries more than 10 min ahead of Loki's clock
_MAX_CAUSE = 300


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
    """``data.result`` of a streams answer, one list per result item in Loki's order."""
    out: list[list[Entry]] = []
    for item in result:
        labels = item["stream"]
        key = labels_key(labels)
        out.append([Entry(key, labels, int(value[0]), value[1]) for value in item["values"]])
    return out


class LokiClient:
    def __init__(self, base_url: str, *, timeout_s: float, tenant: str = "", max_connections: int = 50):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._headers = {"X-Scope-OrgID": tenant} if tenant else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._headers,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

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
        body = await self._get("/loki/api/v1/query_range", params)
        data = body.get("data") or {}
        if data.get("resultType") != "streams":
            raise Unavailable(BACKEND, f"query_range answered resultType {data.get('resultType')!r}, not streams")
        return parse_streams(data.get("result") or [])

    async def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        try:
            response = await self._http.get(path, params=params)
        except httpx.TimeoutException:
            raise DeadlineExceeded(BACKEND, self.timeout_s) from None
        except httpx.HTTPError as error:
            raise Unavailable(BACKEND, f"{type(error).__name__} calling {self.base_url}{path}: {error}") from None
        if response.status_code != 200:
            raise Unavailable(BACKEND, f"{path} answered HTTP {response.status_code}: {_text(response.text)}")
        try:
            return response.json()  # type: ignore[no-any-return]
        except ValueError:
            raise Unavailable(BACKEND, f"{path} answered a body that is not JSON: {_text(response.text)}") from None

    @contextlib.asynccontextmanager
    async def tail(self, query: str, *, start_ns: int, limit: int, delay_for: int = 0) -> AsyncIterator[Tail]:
        """Opens ``/loki/api/v1/tail``; the connection is closed with 1000 when the block exits."""
        params = {"query": query, "start": loki_time(start_ns), "limit": str(limit), "delay_for": str(delay_for)}
        url = self.base_url.replace("http", "ws", 1) + "/loki/api/v1/tail?" + urlencode(params)
        try:
            connection = await websockets.connect(
                url,
                additional_headers=self._headers,
                open_timeout=self.timeout_s,
                ping_interval=None,  # Loki pings us every second; its pings are answered automatically
                max_size=2**24,
                close_timeout=2,
            )
        except TimeoutError:
            raise DeadlineExceeded(BACKEND, self.timeout_s) from None
        except websockets.InvalidStatus as error:
            body = error.response.body.decode(errors="replace") if error.response.body else ""
            raise Unavailable(BACKEND, f"/tail answered HTTP {error.response.status_code}: {_text(body)}") from None
        except (OSError, websockets.WebSocketException) as error:
            raise Unavailable(BACKEND, f"{type(error).__name__} opening {url.split('?')[0]}: {error}") from None
        try:
            yield Tail(connection)
        finally:
            await connection.close()


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
            body = json.loads(message)
            entries = [e for stream in parse_streams(body.get("streams") or []) for e in stream]
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
            raise TailClosed(1007, f"unreadable tail frame: {error}") from None
        return TailFrame(entries, len(body.get("dropped_entries") or ()))


def _text(body: str) -> str:
    body = body.strip()
    return body if len(body) <= _MAX_CAUSE else body[:_MAX_CAUSE] + "…"
