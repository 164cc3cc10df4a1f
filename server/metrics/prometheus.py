"""The Prometheus HTTP API client: the only module that speaks HTTP to Prometheus.

Two clients per process, each its own ``httpx.AsyncClient`` pool (:func:`clients`; aiohttp's connections under
the httpx API, see :mod:`server.backend_body`): one for the evaluator and
everything run under its lease, one for the API. A flood of API calls queues for the API pool's connections
and never for the evaluator's. The API client also coalesces identical in-flight queries (callers asking the
same path and form at the same time share one request) and caches range results until the next step
boundary. Queries go as POST form bodies (no URL length limit).
Every failure becomes a domain error that names the backend and the cause in plain words:

- no connection, a 4xx/5xx → :class:`~server.errors.Unavailable` ("connection refused", "it answered HTTP 400
  (bad request)"); a body that is not the API's shape → "malformed response from prometheus"
- no complete answer in time, or Prometheus's own ``timeout`` error → :class:`~server.errors.DeadlineExceeded`
- an answer larger than :data:`MAX_RESPONSE_BYTES` (decoded) → :class:`~server.errors.Unavailable` ("the answer
  is larger than 64 MiB"): a Content-Length over the cap is refused before the body is read, any other body is
  read in chunks and dropped at the cap, so memory never holds more than the cap plus one chunk

The caller never sees the URL (it may carry a password), the PromQL or Prometheus's error text (it echoes the
query): those go into the error's ``detail``, which only the server log sees.

Values are returned as floats exactly as Prometheus sent them, ``NaN`` and ``±Inf`` included: callers
decide what a non-finite value means (see :func:`finite`).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import logging
import math
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from server.backend_body import decode_json, http_client, read_capped
from server.errors import DeadlineExceeded, ServiceError, Unavailable, http_cause, network_cause, without_password

BACKEND = "prometheus"
log = logging.getLogger("server.metrics.prometheus")

# How much of a body or of Prometheus's error text the detail (the log, never the caller) quotes.
_EXCERPT = 300

_QUERY = "/api/v1/query"
_QUERY_RANGE = "/api/v1/query_range"
# Sent with every request. Each is a form (see _form). Answers come uncompressed: Prometheus runs beside the
# service or on its network, where gzip costs both sides CPU to save little (measured: the same CPU here, 7–15 %
# longer GetAppMetrics with gzip, docs/benchmarks.md).
_HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "Accept-Encoding": "identity"}

T = TypeVar("T")

# Connections per pool. The evaluator's tick makes at most seven concurrent grouped queries (plus the alert
# engine's and the uptime history's, one after another); API calls make six each (GetAppMetrics) or four
# (GetWorkspaceOverview), so 32 connections serve five such calls at once and the rest queue for the pool.
EVALUATOR_POOL = 16
API_POOL = 32
# Range results kept by the API client (LRU); each expires at the next boundary of its step.
RANGE_CACHE_ENTRIES = 1024
# The largest answer read, counted in decoded (decompressed) bytes: far above any template's answer for 10,000
# apps (a few MiB), far below what would hurt the process. Read at each call, so tests can lower it.
MAX_RESPONSE_BYTES = 64 * 2**20


@dataclasses.dataclass(frozen=True)
class Sample:
    """One element of an instant vector: a label set and its value at ``time`` (Unix seconds)."""

    labels: Mapping[str, str]
    time: float
    value: float


@dataclasses.dataclass(frozen=True)
class Series:
    """One series of a range query: a label set and its points ``(Unix seconds, value)`` in time order."""

    labels: Mapping[str, str]
    points: Sequence[tuple[float, float]]


def finite(value: float) -> float | None:
    """``value``, or None when it is NaN or infinite (a division by zero traffic, for example)."""
    return value if math.isfinite(value) else None


class PrometheusClient:
    """``query`` and ``query_range`` over one keep-alive connection pool, with a deadline per call.

    ``coalesce``: identical queries in flight at the same time share one request. ``range_cache``: up to that
    many range results are served again until the next step boundary (0: no cache). Errors are never kept.
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = API_POOL,
        coalesce: bool = False,
        range_cache: int = 0,
        clock: Callable[[], float] = time.time,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._logged_url = without_password(self.base_url)
        self._http = http_client(self.base_url, timeout_s, max_connections, headers=_HEADERS, transport=transport)
        # Whole URLs, parsed once, and each request built over one with the client's headers (send() adds the
        # client's timeouts): what the client's build_request would do, without joining a relative URL to the base
        # and merging headers, cookies and parameters again on every request (0.03–0.05 ms of ~0.5 ms per query).
        self._urls = {path: httpx.URL(self.base_url + path) for path in (_QUERY, _QUERY_RANGE)}
        self._post_request = functools.partial(httpx.Request, "POST", headers=self._http.headers)
        self._coalesce = coalesce
        self._in_flight: dict[tuple[str, tuple[tuple[str, str], ...]], _Shared] = {}
        self._cache_size = range_cache
        self._cache: collections.OrderedDict[tuple[str, float, float, float], tuple[float, list[Series]]] = (
            collections.OrderedDict()
        )
        self._clock = clock

    async def close(self) -> None:
        await self._http.aclose()

    async def query(self, promql: str, *, at: float | None = None) -> list[Sample]:
        """An instant query at ``at`` (Unix seconds; Prometheus's "now" when None)."""
        params: dict[str, str] = {"query": promql}
        if at is not None:
            params["time"] = _seconds(at)
        return await self._call(_QUERY, params, _instant)

    async def query_many(self, promqls: Sequence[str], *, at: float | None = None) -> list[list[Sample]]:
        """Instant queries at one time, run concurrently; results in the order asked.

        The first to fail cancels the others, so no request is left running against Prometheus for a
        caller that has already failed, and its error is raised.
        """
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self.query(promql, at=at)) for promql in promqls]
        except* ServiceError as failed:
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]

    async def query_range(self, promql: str, *, start: float, end: float, step: float) -> list[Series]:
        """A range query: points at ``start``, ``start + step``, … ≤ ``end`` where the series has a sample."""
        key = (promql, float(start), float(end), float(step))
        if self._cache_size:
            now = self._clock()
            if (kept := self._cache.get(key)) is not None:
                expires, found = kept
                if now < expires:
                    self._cache.move_to_end(key)
                    return found
                del self._cache[key]
        params = {"query": promql, "start": _seconds(start), "end": _seconds(end), "step": _seconds(step)}
        found = await self._call(_QUERY_RANGE, params, _matrix)
        if self._cache_size and step > 0:
            # Served again until the next step boundary after the query was asked (a window aligned to the
            # step moves on then); only successes get here.
            self._cache[key] = ((now // step + 1) * step, found)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return found

    async def _call(self, path: str, params: dict[str, str], parse: Callable[[dict[str, Any]], T]) -> T:
        if not self._coalesce:
            return await self._request(path, params, parse)
        key = (path, tuple(sorted(params.items())))
        shared = self._in_flight.get(key)
        if shared is None:
            shared = _Shared(asyncio.ensure_future(self._request(path, params, parse)))
            self._in_flight[key] = shared
            shared.task.add_done_callback(lambda task: self._finished(key, shared))
        shared.callers += 1
        try:
            # The shield: a caller that is cancelled leaves; the request goes on for the others.
            return await asyncio.shield(shared.task)  # type: ignore[no-any-return]
        finally:
            shared.callers -= 1
            if shared.callers == 0 and not shared.task.done():
                shared.task.cancel()  # nobody waits for it any more
                self._finished(key, shared)

    def _finished(self, key: tuple[str, tuple[tuple[str, str], ...]], shared: _Shared) -> None:
        if self._in_flight.get(key) is shared:
            del self._in_flight[key]
        if shared.task.done() and not shared.task.cancelled():
            shared.task.exception()  # retrieved: a failure whose callers all left is not reported as unhandled

    async def _request(self, path: str, params: dict[str, str], parse: Callable[[dict[str, Any]], T]) -> T:
        try:
            return parse(await self._exchange(path, params))
        except ServiceError as error:
            # Where the failure happened knows what went wrong, not which request it was: the log needs both.
            error.detail = f"POST {self._logged_url}{path} query={params['query']!r}: {error.detail}"
            raise

    async def _exchange(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        # Prometheus stops evaluating at the same deadline we stop waiting.
        form = _form({**params, "timeout": _seconds(self.timeout_s)})
        try:
            # httpx's timeouts are per phase (connect, each read); this bounds the whole exchange.
            async with asyncio.timeout(self.timeout_s):
                response = await self._http.send(self._post_request(self._urls[path], content=form), stream=True)
                try:
                    body = await read_capped(response, MAX_RESPONSE_BYTES, backend=BACKEND)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as error:
            raise DeadlineExceeded(BACKEND, self.timeout_s, detail=f"no answer in time ({error!r})") from None
        except httpx.HTTPError as error:
            raise Unavailable(BACKEND, _cause(error), detail=f"{type(error).__name__}: {error}") from None
        return _envelope(response.status_code, response.headers, body, self.timeout_s)


@dataclasses.dataclass
class _Shared:
    """One request in flight and how many callers wait for it."""

    task: asyncio.Future[Any]
    callers: int = 0


@dataclasses.dataclass(frozen=True)
class Clients:
    """The two Prometheus clients of a process: the evaluator's and the API's, each with its own pool."""

    evaluator: PrometheusClient
    api: PrometheusClient

    async def close(self) -> None:
        await self.api.close()
        await self.evaluator.close()


def clients(base_url: str, timeout_s: float, *, range_cache: int = RANGE_CACHE_ENTRIES) -> Clients:
    """The evaluator's client (its own pool, no sharing) and the API's (coalescing, range cache)."""
    return Clients(
        evaluator=PrometheusClient(base_url, timeout_s, max_connections=EVALUATOR_POOL),
        api=PrometheusClient(
            base_url,
            timeout_s,
            max_connections=API_POOL,
            coalesce=True,
            range_cache=range_cache,
        ),
    )


def _cause(error: httpx.HTTPError) -> str:
    """Plain words for a failed exchange (httpx's own text may name the host)."""
    if (words := network_cause(error)) is not None:
        return words
    if isinstance(error, httpx.RemoteProtocolError):
        return "connection closed without a complete answer"
    return "the request failed"


def _envelope(status: int, headers: httpx.Headers, content: bytes, timeout_s: float) -> dict[str, Any]:
    """The ``data`` of a success envelope, or the domain error the response stands for."""
    try:
        body = decode_json(content)
    except ValueError:
        kind = headers.get("content-type", "no content type")
        raise _failed(status, f"HTTP {status}, a non-JSON body ({kind}): {_excerpt(_text(content))!r}") from None
    if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
        raise _failed(status, f"HTTP {status}, JSON that is not an API envelope: {_excerpt(_text(content))!r}")
    if body["status"] == "error" or status >= 400:
        raise _answered_error(status, body, timeout_s)
    data = body.get("data")
    if not isinstance(data, dict):
        raise _malformed("success envelope without a data object")
    return data


def _answered_error(status: int, body: dict[str, Any], timeout_s: float) -> ServiceError:
    """Prometheus's error envelope as a domain error; its text (which echoes the query) stays in the detail."""
    error_type, message = body.get("errorType", "unknown"), body.get("error", "")
    detail = f"HTTP {status} {error_type}: {_excerpt(str(message))}"
    if error_type == "timeout":  # Prometheus gave up at the deadline we sent it
        return DeadlineExceeded(BACKEND, timeout_s, detail=detail)
    return Unavailable(BACKEND, http_cause(status) if status >= 400 else "it answered an error", detail=detail)


def _failed(status: int, detail: str) -> Unavailable:
    """An answer we cannot read: an HTTP error when it says so (a proxy's error page), else a malformed one."""
    return Unavailable(BACKEND, http_cause(status), detail=detail) if status >= 400 else _malformed(detail)


def _matrix(data: dict[str, Any]) -> list[Series]:
    if data.get("resultType") != "matrix":
        raise _malformed(f"query_range returned resultType {data.get('resultType')!r}, expected 'matrix'")
    return [_series(item) for item in _list(data.get("result"))]


def _instant(data: dict[str, Any]) -> list[Sample]:
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "vector":
            return [_sample(item) for item in _list(result)]
        if kind == "scalar":
            time, value = result  # type: ignore[misc]
            return [Sample({}, float(time), float(value))]
    except (TypeError, ValueError) as error:
        raise _malformed(f"bad {kind} result: {error}") from None
    raise _malformed(f"instant query returned resultType {kind!r}, expected 'vector' or 'scalar'")


def _sample(item: Any) -> Sample:
    try:
        time, value = item["value"]
        return Sample(_labels(item.get("metric")), float(time), float(value))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise _malformed(f"bad vector element: {error!r}") from None


def _series(item: Any) -> Series:
    try:
        points = [(float(t), float(v)) for t, v in item["values"]]
        return Series(_labels(item.get("metric")), points)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise _malformed(f"bad matrix series: {error!r}") from None


def _labels(metric: Any) -> dict[str, str]:
    # Only the container is checked: a per-value check costs a third of parsing a 10,000-app tick.
    if not isinstance(metric, dict):
        raise _malformed("series labels are not an object")
    return metric


def _list(result: Any) -> list[Any]:
    if not isinstance(result, list):
        raise _malformed("result is not a list")
    return result


def _malformed(why: str) -> Unavailable:
    return Unavailable.malformed(BACKEND, why)


def _text(content: bytes) -> str:
    return content.decode("utf-8", errors="replace")


def _excerpt(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"


def _form(params: Mapping[str, str]) -> bytes:
    """``params`` as an ``application/x-www-form-urlencoded`` body, the encoding httpx's ``data=`` would give."""
    return "&".join(f"{_quoted(name)}={_quoted(value)}" for name, value in params.items()).encode()


# The same queries come back all the time (each app's, each period's), and urllib quotes byte by byte in Python:
# a batch of six range templates took a tenth of a millisecond to quote. The cache holds each text once.
_quoted = functools.lru_cache(maxsize=4096)(urllib.parse.quote_plus)


def _seconds(value: float) -> str:
    # Prometheus takes float seconds; whole seconds are written without a fraction.
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
