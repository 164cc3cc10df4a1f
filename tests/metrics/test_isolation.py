"""The evaluator is not starved by API traffic: its own pool, coalesced API queries, a step-aligned range cache.

A stand-in Prometheus on 127.0.0.1 answers every query after a delay the query names (``slow`` in it: slow),
and counts the requests it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
from collections.abc import AsyncIterator

import pytest

from server.errors import Unavailable
from server.metrics.prometheus import API_POOL, PrometheusClient, clients
from testing.prometheus import CountingTransport

pytestmark = pytest.mark.timeout(60)

MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[60, "1"]]}]}}
VECTOR = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [60, "1"]}]}}
FAILED = {"status": "error", "errorType": "execution", "error": "boom"}


class StandIn:
    """An HTTP/1.1 keep-alive server answering the query API; ``slow`` queries after ``slow_s``, others at once."""

    def __init__(self, slow_s: float = 0.0, delay_s: float = 0.0):
        self.slow_s = slow_s
        self.delay_s = delay_s
        self.requests = 0
        self.fail = False
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode().lower().split("\r\n")
                length = next(int(h.split(":")[1]) for h in head if h.startswith("content-length:"))
                form = urllib.parse.parse_qs((await reader.readexactly(length)).decode())
                self.requests += 1
                query = form["query"][0]
                await asyncio.sleep(self.slow_s if "slow" in query else self.delay_s)
                reply = FAILED if self.fail else (MATRIX if "step" in form else VECTOR)
                body = json.dumps(reply).encode()
                writer.write(
                    b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (422 if self.fail else 200, len(body), body)
                )
                await writer.drain()
        writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[StandIn]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            yield self
        finally:
            server.close()


async def test_identical_concurrent_queries_make_one_request() -> None:
    async with StandIn(delay_s=0.2).running() as prometheus:
        transport = CountingTransport()
        client = PrometheusClient(prometheus.url, 5.0, transport=transport, coalesce=True)
        try:
            results = await asyncio.gather(
                *(client.query_range("up", start=0, end=3600, step=60) for _ in range(20)),
                *(client.query("up", at=60) for _ in range(20)),
            )
        finally:
            await client.close()
    assert transport.requests == 2  # one range, one instant
    assert all(r == results[0] for r in results[:20]) and results[0][0].points == [(60.0, 1.0)]


async def test_the_first_callers_cancellation_does_not_cancel_the_others() -> None:
    async with StandIn(delay_s=0.3).running() as prometheus:
        transport = CountingTransport()
        client = PrometheusClient(prometheus.url, 5.0, transport=transport, coalesce=True)
        try:
            first = asyncio.create_task(client.query("up", at=60))
            await asyncio.sleep(0.05)
            others = [asyncio.create_task(client.query("up", at=60)) for _ in range(5)]
            await asyncio.sleep(0.05)
            first.cancel()
            results = await asyncio.gather(*others)
            # Every caller leaving cancels the request (no orphan); the next caller starts a new one.
            alone = asyncio.create_task(client.query("up", at=120))
            await asyncio.sleep(0.05)
            alone.cancel()
            with pytest.raises(asyncio.CancelledError):
                await alone
            assert client._in_flight == {}
        finally:
            await client.close()
    assert first.cancelled()
    assert [r[0].value for r in results] == [1.0] * 5
    assert transport.requests == 2


async def test_range_results_are_served_until_the_next_step_boundary_and_errors_are_not_kept() -> None:
    now = [7200.0 + 59.0]  # one second before the boundary at 7260
    async with StandIn().running() as prometheus:
        client = PrometheusClient(prometheus.url, 5.0, range_cache=8, clock=lambda: now[0])
        try:
            window = {"start": 3600 + 0, "end": 7200, "step": 60}
            await client.query_range("up", **window)
            await client.query_range("up", **window)
            assert prometheus.requests == 1
            now[0] = 7259.999
            await client.query_range("up", **window)
            assert prometheus.requests == 1
            now[0] = 7260.0  # the next step boundary: the window has moved on, the entry is stale
            await client.query_range("up", **window)
            assert prometheus.requests == 2
            prometheus.fail = True
            for _ in range(2):
                with pytest.raises(Unavailable):
                    await client.query_range("errors", **window)
            assert prometheus.requests == 4  # a failure is asked again, never served from the cache
            prometheus.fail = False
            for i in range(20):  # bounded: the oldest entries go
                await client.query_range(f"q{i}", **window)
            assert len(client._cache) == 8
        finally:
            await client.close()


async def test_a_flood_of_slow_api_queries_does_not_delay_an_evaluator_query() -> None:
    async with StandIn(slow_s=2.0).running() as prometheus:
        pools = clients(prometheus.url, 10.0)
        try:
            # Twice the API pool of distinct slow queries: the API pool is full and more are queued for it.
            flood = [asyncio.create_task(pools.api.query(f"slow{i}", at=60)) for i in range(2 * API_POOL)]
            await asyncio.sleep(0.3)
            started = time.monotonic()
            await pools.evaluator.query_many(["up", "sum(up)"], at=60)
            evaluator_s = time.monotonic() - started
            started = time.monotonic()
            await pools.api.query("fast", at=60)
            api_s = time.monotonic() - started
            for task in flood:
                task.cancel()
            await asyncio.gather(*flood, return_exceptions=True)
        finally:
            await pools.close()
    assert evaluator_s < 1.2, f"the evaluator's query waited {evaluator_s:.2f} s behind API traffic"
    assert api_s > 1.0  # the stand-in does delay: the same query on the API pool queued for a connection
