"""The Prometheus HTTP API client: the only module that speaks HTTP to Prometheus.

One pooled ``httpx.AsyncClient`` per process. Queries go as POST form bodies (no URL length limit).
Every failure becomes a domain error that names the backend and the cause:

- no connection, a 4xx/5xx, a body that is not the JSON envelope → :class:`~server.errors.Unavailable`
- no complete answer in time, or Prometheus's own ``timeout`` error → :class:`~server.errors.DeadlineExceeded`

Values are returned as floats exactly as Prometheus sent them, ``NaN`` and ``±Inf`` included: callers
decide what a non-finite value means (see :func:`finite`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from server.errors import DeadlineExceeded, ServiceError, Unavailable

BACKEND = "prometheus"
log = logging.getLogger("server.metrics.prometheus")

# How much of a non-JSON body an error message quotes.
_EXCERPT = 160


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
    """``query`` and ``query_range`` over one keep-alive connection pool, with a deadline per call."""

    def __init__(self, base_url: str, timeout_s: float, *, transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s),
            # Six concurrent range queries per GetAppMetrics, seven per evaluator tick: keep them warm.
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def query(self, promql: str, *, at: float | None = None) -> list[Sample]:
        """An instant query at ``at`` (Unix seconds; Prometheus's "now" when None)."""
        params: dict[str, str] = {"query": promql}
        if at is not None:
            params["time"] = _seconds(at)
        data = await self._call("/api/v1/query", params)
        return _instant(data)

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
        params = {"query": promql, "start": _seconds(start), "end": _seconds(end), "step": _seconds(step)}
        data = await self._call("/api/v1/query_range", params)
        if data.get("resultType") != "matrix":
            raise _malformed(f"query_range returned resultType {data.get('resultType')!r}, expected 'matrix'")
        return [_series(item) for item in _list(data.get("result"))]

    async def _call(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        # Prometheus stops evaluating at the same deadline we stop waiting.
        params = {**params, "timeout": _seconds(self.timeout_s)}
        try:
            # httpx's timeouts are per phase (connect, each read); this bounds the whole exchange.
            async with asyncio.timeout(self.timeout_s):
                response = await self._http.post(path, data=params)
        except (TimeoutError, httpx.TimeoutException):
            raise DeadlineExceeded(BACKEND, self.timeout_s) from None
        except httpx.HTTPError as error:
            raise Unavailable(BACKEND, f"{type(error).__name__} on {self.base_url}{path}: {error}") from None
        return _envelope(response, self.timeout_s)


def _envelope(response: httpx.Response, timeout_s: float) -> dict[str, Any]:
    """The ``data`` of a success envelope, or the domain error the response stands for."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        excerpt = response.text[:_EXCERPT].strip()
        kind = response.headers.get("content-type", "no content type")
        raise Unavailable(BACKEND, f"HTTP {status} with a non-JSON body ({kind}): {excerpt!r}") from None
    if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
        raise _malformed(f"HTTP {status} with JSON that is not a Prometheus API envelope")
    if body["status"] == "error" or status >= 400:
        error_type, message = body.get("errorType", "unknown"), body.get("error", "")
        if error_type == "timeout":  # Prometheus gave up at the deadline we sent it
            raise DeadlineExceeded(BACKEND, timeout_s)
        raise Unavailable(BACKEND, f"HTTP {status} {error_type}: {message}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise _malformed("success envelope without a data object")
    return data


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
    return Unavailable(BACKEND, f"malformed response: {why}")


def _seconds(value: float) -> str:
    # Prometheus takes float seconds; whole seconds are written without a fraction.
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
