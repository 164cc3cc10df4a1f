"""Regressions of the TailHub found in review, driven in-process against the Loki double (a real process)."""

from __future__ import annotations

import asyncio
import pathlib
import time
import urllib.parse
from collections.abc import AsyncIterator

import pytest
import websockets

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.config import TailSettings
from server.logs.logql import LabelScheme
from server.logs.loki import LokiClient
from server.logs.tail import TailHub
from server.logs.tokens import Signer, StreamPosition, query_digest
from server.store.records import App
from testing.loki import LokiDouble, running_loki

NS = 1_000_000_000
SIGNER = Signer(b"tail-hub-tests-secret-0123")
END = "end of stream"


async def signer() -> Signer:
    return SIGNER


def new_app(name: str) -> App:
    return App(
        id=name,
        workspace_id="ws-hub",
        name=name,
        service_name=name,
        memory_limit_mib=1,
        cpu_limit_cores=1,
        created_ns=0,
    )


def hub_for(url: str, **settings: float) -> TailHub:
    return TailHub(LokiClient(url, timeout_s=10), LabelScheme(), signer, TailSettings(**settings))  # type: ignore[arg-type]


def request(app: App, cursor: str = "") -> pb.StreamAppLogsRequest:
    return pb.StreamAppLogsRequest(workspace_id=app.workspace_id, app_id=app.id, cursor=cursor)


def stream_labels(app: App) -> dict[str, str]:
    return {"workspace_id": app.workspace_id, "app_id": app.id}


async def take(stream: AsyncIterator[pb.StreamAppLogsResponse], n: int) -> list[pb.StreamAppLogsResponse]:
    return [await asyncio.wait_for(anext(stream), 15) for _ in range(n)]


@pytest.mark.timeout(60)
async def test_resume_on_a_new_upstream_sends_nothing_the_cursor_covers(loki: LokiDouble) -> None:
    app = new_app("resume-new-upstream")
    now = time.time_ns()
    first = hub_for(loki.url)
    stream = await first.open_stream(app, request(app))
    # Logged as the stream opens: the new upstream's back-fill (2 s back) delivers them.
    loki.push([{"stream": stream_labels(app), "values": [[now + i, f"line {i}"] for i in range(5)]}])
    got = await take(stream, 5)
    assert [m.entry.message for m in got] == [f"line {i}" for i in range(5)]
    await stream.aclose()
    await first.close()

    second = hub_for(loki.url)  # another server: its upstream back-fills from before the cursor again
    resumed = await second.open_stream(app, request(app, cursor=got[-1].cursor))
    try:
        # Whichever way each line arrives (replay or live), only lines after the cursor may follow.
        for line in ("after", "later"):
            nxt = asyncio.create_task(anext(resumed))
            loki.push([{"stream": stream_labels(app), "values": [[time.time_ns(), line]]}])
            assert (await asyncio.wait_for(nxt, 15)).entry.message == line
    finally:
        await resumed.aclose()
        await second.close()


@pytest.mark.timeout(60)
async def test_replayed_identities_are_forgotten_once_the_upstream_cannot_resend_them(loki: LokiDouble) -> None:
    app = new_app("replay-pruned")
    old = time.time_ns() - 3600 * NS
    loki.push([{"stream": stream_labels(app), "values": [[old + i, f"old {i}"] for i in range(300)]}])
    cursor = SIGNER.cursor(query_digest("stream", app.workspace_id, app.id, 0), StreamPosition(old - 1, ()))
    hub = hub_for(loki.url)
    stream = await hub.open_stream(app, request(app, cursor=cursor))
    try:
        assert [m.entry.message for m in await take(stream, 300)] == [f"old {i}" for i in range(300)]
        nxt = asyncio.create_task(anext(stream))
        loki.push([{"stream": stream_labels(app), "values": [[time.time_ns(), "live"]]}])
        assert (await asyncio.wait_for(nxt, 15)).entry.message == "live"
        # An hour-old entry can never come from this upstream again: the stream keeps none of them.
        assert len(stream.ag_frame.f_locals["replayed"]) == 0  # type: ignore[attr-defined]
    finally:
        await stream.aclose()
        await hub.close()


@pytest.mark.timeout(30)
async def test_close_ends_a_stream_still_waiting_for_its_first_connect() -> None:
    # A "Loki" that accepts TCP and never answers the WebSocket upgrade.
    silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    app = new_app("close-while-connecting")
    hub = hub_for(f"http://127.0.0.1:{port}")
    try:
        stream = await hub.open_stream(app, request(app))
        reader = asyncio.create_task(anext(stream, END))
        await asyncio.sleep(0)  # let it start waiting for the connect
        await hub.close()
        assert await asyncio.wait_for(reader, 10) == END
    finally:
        silent.close()


@pytest.mark.timeout(30)
async def test_stream_accepted_just_before_close_opens_no_tail(loki: LokiDouble) -> None:
    app = new_app("accepted-before-close")
    hub = hub_for(loki.url)
    opened = loki.stats()["tails_opened"]
    stream = await hub.open_stream(app, request(app))
    await hub.close()
    assert await asyncio.wait_for(anext(stream, END), 10) == END
    assert loki.stats()["tails_opened"] == opened


@pytest.mark.timeout(60)
async def test_a_tail_closed_right_after_the_upgrade_is_retried_with_growing_backoff(log_dir: pathlib.Path) -> None:
    with running_loki(log_dir, extra_args=["--max-concurrent-tails", "1"]) as double:
        query = urllib.parse.urlencode({"query": '{workspace_id="someone-else"}'})
        hog = await websockets.connect(double.url.replace("http", "ws", 1) + "/loki/api/v1/tail?" + query)
        app = new_app("tail-limit")
        initial = 0.02
        hub = hub_for(double.url, backoff_initial_s=initial, backoff_max_s=60.0)
        stream = await hub.open_stream(app, request(app))
        reader = asyncio.create_task(anext(stream, END))
        try:
            start = time.monotonic()
            before = double.stats()["tails_opened"]
            retries = 7
            while double.stats()["tails_opened"] < before + retries + 1:
                assert time.monotonic() - start < 30, "the tail was not retried"
                await asyncio.sleep(0.05)
            # Each retry k waits at least half its ceiling initial·2^(k-1) (full jitter): a lower bound that
            # holds however slow the machine. Without the growth the retries come every initial/2..initial.
            assert time.monotonic() - start >= sum(initial * 2 ** (k - 1) / 2 for k in range(1, retries + 1)) - initial
        finally:
            await hub.close()
            await asyncio.wait_for(reader, 10)
            await hog.close()
