"""A Loki-compatible HTTP/WebSocket server (the parts of /loki/api/v1 our server uses), as a Starlette app.

Behaviour follows Loki's HTTP API as the real Loki behaves (the team's Loki reference): plain-text errors
(no trailing newline on the query path, a newline on push/ready/auth), JSON bodies with a trailing newline,
nanosecond timestamps as ints,
the 5000-entry cap, tail frames with one stream object per entry, ``dropped_entries``, 1011 close codes.

Fault controls for tests live under ``/_double/`` — a path Loki does not have, so the server under test
cannot reach them by accident:

- ``GET  /_double/stats``            open/opened tails, query_range calls
- ``POST /_double/tails/drop``       close every open tail with 1011 (``{"reason": …}`` optional)
- ``POST /_double/tails/stall``      ``{"stalled": true|false}``: tails stop/restart sending frames
- ``POST /_double/tails/drop_next``  ``{"count": n}``: the next n live entries are dropped and reported
- ``POST /_double/faults``           ``{"endpoint": "query_range", "status": 503, "body": "…", "delay_s": 0,
  "count": n}``: the next n calls (all when absent) fail with that status, or are delayed
- ``DELETE /_double/faults``         clears faults
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import pathlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from testing.loki_double import logql
from testing.loki_double.store import Entry, LogStore, PushError, Result, Stream

NS = 1_000_000_000
JSON_TYPE = "application/json; charset=UTF-8"
TEXT_TYPE = "text/plain; charset=utf-8"
_STATS = json.loads((pathlib.Path(__file__).parent / "stats_empty.json").read_text())
BUILD_INFO = {
    "version": "3.5.0-double",
    "revision": "0000000",
    "branch": "main",
    "buildUser": "tests",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24",
}
TAIL_BUFFER_ENTRIES = 1000  # Loki buffers 10 frames of up to 100 entries per tail
TAIL_FRAME_ENTRIES = 100
MAX_DROPPED_RECORDED = 1000


@dataclasses.dataclass
class Settings:
    max_entries_limit: int = 5000
    max_concurrent_tails: int = 10
    tail_max_duration_s: float = 3600.0
    max_query_length_s: float = 721 * 3600.0
    auth_enabled: bool = False


class HTTPError(Exception):
    def __init__(self, status: int, message: str, *, newline: bool = False):
        super().__init__(message)
        self.status = status
        self.body = message + ("\n" if newline else "")


@dataclasses.dataclass
class Fault:
    status: int = 0
    body: str = ""
    delay_s: float = 0.0
    remaining: int | None = None  # None: every call


class Tail:
    """One open /tail WebSocket: a bounded buffer of live entries, sent in time order after delay_for."""

    def __init__(self, ws: WebSocket, query: logql.Query, delay_for: int, hub: Double):
        self.ws = ws
        self.query = query
        self.delay_ns = delay_for * NS
        self.hub = hub
        self.pending: list[Result] = []
        self.dropped: deque[dict[str, object]] = deque(maxlen=MAX_DROPPED_RECORDED)
        self.wake = asyncio.Event()
        self.closed: tuple[int, str] | None = None

    def offer(self, stream: Stream, entries: list[Entry]) -> None:
        if not self.query.selects(stream.labels):
            return
        for entry in entries:
            labels = {**stream.labels, **dict(entry.metadata)}
            if not self.query.keeps(labels, entry.line):
                continue
            if self.hub.drop_next > 0 or len(self.pending) >= TAIL_BUFFER_ENTRIES:
                self.hub.drop_next = max(0, self.hub.drop_next - 1)
                self.dropped.append({"timestamp": str(entry.ts), "labels": labels})
            else:
                self.pending.append(Result(labels, entry.ts, entry.line))
        self.wake.set()

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.wake.set()

    async def send(self, results: list[Result]) -> None:
        for i in range(0, len(results), TAIL_FRAME_ENTRIES):
            chunk = results[i : i + TAIL_FRAME_ENTRIES]
            frame: dict[str, object] = {
                "streams": [{"stream": r.labels, "values": [[str(r.ts), r.line]]} for r in chunk]
            }
            if self.dropped:
                frame["dropped_entries"] = list(self.dropped)
                self.dropped.clear()
            await self.ws.send_text(json.dumps(frame, ensure_ascii=False, separators=(",", ":")))

    async def run(self, max_duration_s: float) -> None:
        deadline = time.monotonic() + max_duration_s
        while self.closed is None:
            if time.monotonic() >= deadline:
                self.close(1011, "reached tail max duration limit")
                break
            due, wait = self._due()
            if due:  # dropped_entries ride along with the next frame that gets through
                await self.send(due)
                continue
            self.wake.clear()
            timeout = min(wait, deadline - time.monotonic(), 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=max(timeout, 0.001))
        code, reason = self.closed
        await self.ws.close(code, reason)

    def _due(self) -> tuple[list[Result], float]:
        """Entries whose ``ts + delay_for`` has passed (oldest first), and seconds until the next is due."""
        if self.hub.stalled or not self.pending:
            return [], 1.0
        now = time.time_ns()
        self.pending.sort(key=lambda r: r.ts)
        cut = 0
        while cut < len(self.pending) and self.pending[cut].ts + self.delay_ns < now:
            cut += 1
        due, self.pending = self.pending[:cut], self.pending[cut:]
        wait = (self.pending[0].ts + self.delay_ns - now) / NS if self.pending else 1.0
        return due, wait


class Double:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.stores: dict[str, LogStore] = {}
        self.tails: dict[str, set[Tail]] = {}
        self.tails_opened = 0
        self.calls: dict[str, int] = {}
        self.faults: dict[str, Fault] = {}
        self.stalled = False
        self.drop_next = 0

    def store(self, tenant: str) -> LogStore:
        store = self.stores.get(tenant)
        if store is None:
            store = self.stores[tenant] = LogStore()
            store.listeners.append(lambda stream, entries: self._fan_out(tenant, stream, entries))
        return store

    def _fan_out(self, tenant: str, stream: Stream, entries: list[Entry]) -> None:
        for tail in list(self.tails.get(tenant, ())):
            tail.offer(stream, entries)

    def tenant(self, headers: object) -> str:
        org = headers.get("x-scope-orgid", "")  # type: ignore[attr-defined]
        if self.settings.auth_enabled and not org:
            raise HTTPError(401, "no org id", newline=True)
        return org or "fake"

    async def apply_fault(self, endpoint: str) -> None:
        self.calls[endpoint] = self.calls.get(endpoint, 0) + 1
        fault = self.faults.get(endpoint)
        if fault is None:
            return
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self.faults[endpoint]
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.status:
            raise HTTPError(fault.status, fault.body)

    def open_tails(self) -> int:
        return sum(len(t) for t in self.tails.values())


# -- parameter parsing (pkg/loghttp/params.go) ------------------------------------------------------


def parse_time(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    if "." in value:
        try:
            seconds, _, fraction = value.partition(".")
            ms = round(float("0." + fraction) * 1000)
            return int(seconds) * NS + ms * 1_000_000
        except ValueError:
            pass
    elif value.lstrip("-").isdigit():
        return int(value) * NS if len(value) <= 10 else int(value)
    try:
        return _rfc3339_ns(value)
    except ValueError:
        raise HTTPError(400, f'cannot parse "{value}" to a valid timestamp') from None


def _rfc3339_ns(value: str) -> int:
    main, frac, rest = value, "", ""
    if "." in value:
        main, _, tail = value.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        frac, rest = tail[:digits], tail[digits:]
        main += rest
    parsed = dt.datetime.fromisoformat(main.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(value)
    return int(parsed.timestamp()) * NS + int((frac + "000000000")[:9] or 0)


def parse_duration_ns(value: str | None, default: int) -> int:
    if not value:
        return default
    try:
        return int(float(value) * NS)
    except ValueError:
        pass
    units = {"ms": 10**6, "s": NS, "m": 60 * NS, "h": 3600 * NS, "d": 86400 * NS, "w": 7 * 86400 * NS}
    total, number = 0, ""
    i = 0
    while i < len(value):
        if value[i].isdigit():
            number += value[i]
            i += 1
            continue
        unit = "ms" if value.startswith("ms", i) else value[i]
        if unit not in units or not number:
            raise HTTPError(400, f'cannot parse "{value}" to a valid duration')
        total += int(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        raise HTTPError(400, f'cannot parse "{value}" to a valid duration')
    return total


def parse_limit(value: str | None, default: int = 100) -> int:
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except ValueError:
        raise HTTPError(400, f'strconv.ParseInt: parsing "{value}": invalid syntax') from None
    if limit <= 0:
        raise HTTPError(400, "limit must be a positive value")
    return limit


def parse_query(text: str | None) -> logql.Query:
    try:
        return logql.parse(text or "")
    except ValueError as error:
        raise HTTPError(400, str(error)) from None


# -- responses ---------------------------------------------------------------------------------------


def json_response(body: object, status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n",
        status,
        media_type=None,
        headers={"content-type": JSON_TYPE},
    )


def text_error(error: HTTPError) -> Response:
    return Response(
        error.body,
        error.status,
        headers={"content-type": TEXT_TYPE, "x-content-type-options": "nosniff"},
    )


def streams_body(results: list[Result]) -> dict[str, object]:
    grouped: dict[str, tuple[dict[str, str], list[list[str]]]] = {}
    for r in results:
        key = logql.labels_string(r.labels)
        grouped.setdefault(key, (r.labels, []))[1].append([str(r.ts), r.line])
    result = [{"stream": labels, "values": values} for _, (labels, values) in sorted(grouped.items())]
    return {"status": "success", "data": {"resultType": "streams", "result": result, "stats": _STATS}}


Handler = Callable[[Request], Awaitable[Response]]


def _handled(double: Double, fn: Callable[[Double, Request], Awaitable[Response]]) -> Handler:
    async def handler(request: Request) -> Response:
        try:
            return await fn(double, request)
        except HTTPError as error:
            return text_error(error)

    return handler


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST" and "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        params.update({k: str(v) for k, v in (await request.form()).items()})
    return params


async def query_range(double: Double, request: Request) -> Response:
    tenant = double.tenant(request.headers)
    await double.apply_fault("query_range")
    p = await _params(request)
    limit = parse_limit(p.get("limit"))
    now = time.time_ns()
    end = parse_time(p.get("end"), now)
    start = parse_time(p.get("start"), min(end, now) - parse_duration_ns(p.get("since"), 3600 * NS))
    direction = p.get("direction") or "backward"
    if direction.lower() not in ("forward", "backward"):
        raise HTTPError(400, f"invalid direction '{direction}'")
    if end < start:
        raise HTTPError(400, "end timestamp must not be before or equal to start time")
    cap = double.settings.max_entries_limit
    if cap and limit > cap:
        raise HTTPError(
            400, f"max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {cap})"
        )
    if end - start > double.settings.max_query_length_s * NS:
        raise HTTPError(
            400, f"the query time range exceeds the limit (query length: {(end - start) // NS}s, limit: 30d1h)"
        )
    query = parse_query(p.get("query"))
    results = double.store(tenant).query(query, start, end, limit, direction.lower() == "forward")
    return json_response(streams_body(results))


async def instant_query(double: Double, request: Request) -> Response:
    """``/loki/api/v1/query``: the double evaluates no metric queries, and Loki refuses log queries here."""
    double.tenant(request.headers)
    parse_query((await _params(request)).get("query"))
    raise HTTPError(
        400, "log queries are not supported as an instant query type, please change your query to a range query type"
    )


async def push(double: Double, request: Request) -> Response:
    try:
        tenant = double.tenant(request.headers)
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise HTTPError(400, "this double accepts JSON pushes only (Content-Type: application/json)", newline=True)
        try:
            body = json.loads(await request.body())
        except ValueError as error:
            raise HTTPError(400, f"couldn't parse push request: {error}", newline=True) from None
        try:
            double.store(tenant).push(body)
        except PushError as error:
            raise HTTPError(error.status, str(error), newline=True) from None
    except HTTPError as error:
        return text_error(error)
    return Response(status_code=204)


async def labels(double: Double, request: Request) -> Response:
    tenant = double.tenant(request.headers)
    start, end, query = _label_window(request)
    return _label_list(double.store(tenant).label_names(start, end, query))


async def label_values(double: Double, request: Request) -> Response:
    tenant = double.tenant(request.headers)
    start, end, query = _label_window(request)
    name = request.path_params["name"]
    return _label_list(double.store(tenant).label_values(name, start, end, query))


def _label_window(request: Request) -> tuple[int, int, logql.Query | None]:
    p = request.query_params
    now = time.time_ns()
    end = parse_time(p.get("end"), now)
    start = parse_time(p.get("start"), end - parse_duration_ns(p.get("since"), 3600 * NS))
    query = parse_query(p["query"]) if p.get("query") else None
    return start, end, query


def _label_list(values: list[str]) -> Response:
    # Loki's LabelResponse.Data is `omitempty`: an empty list means no `data` key at all.
    return json_response({"status": "success", "data": values} if values else {"status": "success"})


async def ready(_double: Double, _request: Request) -> Response:
    return Response("ready\n", 200, headers={"content-type": TEXT_TYPE})


async def buildinfo(_double: Double, _request: Request) -> Response:
    return json_response(BUILD_INFO)


def _tail_params(double: Double, headers: object, p: Mapping[str, str]) -> tuple[str, int, int, int, logql.Query]:
    """(tenant, delay_for, limit, start, query) of a tail request; HTTPError before any upgrade."""
    tenant = double.tenant(headers)
    try:
        delay_for = int(p.get("delay_for") or 0)
    except ValueError:
        raise HTTPError(400, f'strconv.Atoi: parsing "{p.get("delay_for")}": invalid syntax') from None
    if delay_for > 5:
        raise HTTPError(400, "delay_for can't be greater than 5")
    limit = parse_limit(p.get("limit"))
    start = parse_time(p.get("start"), time.time_ns() - 3600 * NS)
    return tenant, delay_for, limit, start, parse_query(p.get("query"))


async def tail_without_upgrade(double: Double, request: Request) -> Response:
    _tail_params(double, request.headers, request.query_params)
    # gorilla/websocket's answer when the parameters are fine but the request is not an upgrade.
    raise HTTPError(
        400,
        "websocket: the client is not using the websocket protocol: 'upgrade' token not found in 'Connection' header",
        newline=True,
    )


async def tail(double: Double, ws: WebSocket) -> None:
    try:
        tenant, delay_for, limit, start, query = _tail_params(double, ws.headers, ws.query_params)
    except HTTPError as error:
        await ws.send_denial_response(text_error(error))
        return
    await ws.accept()
    double.tails_opened += 1
    session = Tail(ws, query, delay_for, double)
    open_tails = double.tails.setdefault(tenant, set())
    open_tails.add(session)
    try:
        count = len(open_tails)
        if count > double.settings.max_concurrent_tails:
            limit_text = f"count > limit ({count} > {double.settings.max_concurrent_tails})"
            reason = f"rpc error: code = Code(400) desc = max concurrent tail requests limit exceeded, {limit_text}"
            await ws.close(1011, reason)
            return
        # The replay and the live registration happen in one step (no await between): nothing is missed.
        history = double.store(tenant).query(query, start, time.time_ns() + 1, limit, forward=False)
        reader = asyncio.create_task(_read_until_closed(ws, session))
        try:
            await session.send(list(reversed(history)))
            await session.run(double.settings.tail_max_duration_s)
        finally:
            reader.cancel()
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client went away
    finally:
        open_tails.discard(session)


async def _read_until_closed(ws: WebSocket, session: Tail) -> None:
    """Reads client frames so a client's close (1000) ends the tail."""
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
    except Exception:
        pass
    session.closed = session.closed or (1000, "")
    session.wake.set()


# -- fault controls ---------------------------------------------------------------------------------


async def admin_stats(double: Double, _request: Request) -> Response:
    return json_response(
        {"tails_open": double.open_tails(), "tails_opened": double.tails_opened, "calls": double.calls}
    )


async def admin_drop(double: Double, request: Request) -> Response:
    body = await _json_body(request)
    reason = str(body.get("reason", "all ingesters closed the connection"))
    code = int(body.get("code", 1011))
    dropped = 0
    for tails in double.tails.values():
        for session in list(tails):
            session.close(code, reason)
            dropped += 1
    return json_response({"dropped": dropped})


async def admin_stall(double: Double, request: Request) -> Response:
    double.stalled = bool((await _json_body(request)).get("stalled", True))
    if not double.stalled:
        for tails in double.tails.values():
            for session in tails:
                session.wake.set()
    return json_response({"stalled": double.stalled})


async def admin_drop_next(double: Double, request: Request) -> Response:
    double.drop_next = int((await _json_body(request)).get("count", 1))
    return json_response({"drop_next": double.drop_next})


async def admin_faults(double: Double, request: Request) -> Response:
    if request.method == "DELETE":
        double.faults.clear()
        return json_response({"faults": 0})
    body = await _json_body(request)
    count = body.get("count")
    double.faults[str(body.get("endpoint", "query_range"))] = Fault(
        status=int(body.get("status", 0)),
        body=str(body.get("body", "")),
        delay_s=float(body.get("delay_s", 0.0)),
        remaining=None if count is None else int(count),
    )
    return json_response({"faults": len(double.faults)})


async def _json_body(request: Request) -> dict[str, object]:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


def create_app(settings: Settings | None = None) -> Starlette:
    double = Double(settings or Settings())

    def route(path: str, fn: Callable[[Double, Request], Awaitable[Response]], methods: list[str]) -> Route:
        return Route(path, _handled(double, fn), methods=methods)

    async def tail_endpoint(ws: WebSocket) -> None:
        await tail(double, ws)

    app = Starlette(
        routes=[
            route("/loki/api/v1/query_range", query_range, ["GET", "POST"]),
            route("/loki/api/v1/query", instant_query, ["GET", "POST"]),
            route("/loki/api/v1/push", push, ["POST"]),
            route("/loki/api/v1/labels", labels, ["GET", "POST"]),
            route("/loki/api/v1/label/{name}/values", label_values, ["GET", "POST"]),
            route("/ready", ready, ["GET"]),
            route("/loki/api/v1/status/buildinfo", buildinfo, ["GET"]),
            WebSocketRoute("/loki/api/v1/tail", tail_endpoint),
            route("/loki/api/v1/tail", tail_without_upgrade, ["GET"]),
            route("/_double/stats", admin_stats, ["GET"]),
            route("/_double/tails/drop", admin_drop, ["POST"]),
            route("/_double/tails/stall", admin_stall, ["POST"]),
            route("/_double/tails/drop_next", admin_drop_next, ["POST"]),
            route("/_double/faults", admin_faults, ["POST", "DELETE"]),
        ]
    )
    app.state.double = double
    return app
