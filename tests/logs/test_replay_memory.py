"""Resuming from an old cursor: bounded memory however long the replay, and an expired cursor says so.

Driven in-process (so the stream's state can be measured) against the Loki double (a real process).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.logs.loki import MAX_QUERY_LENGTH_NS
from server.logs.tokens import StreamPosition, query_digest
from testing.loki import LokiDouble
from tests.logs.test_tail_hub import SIGNER, hub_for, new_app, request, stream_labels

NS = 1_000_000_000
OLD_LINES = 20_000
RECENT_LINES = 5


def cursor_at(app_id: str, ts: int) -> str:
    return SIGNER.cursor(query_digest("stream", "ws-hub", app_id, 0), StreamPosition(ts, ()))


def remembered(stream: AsyncIterator[pb.StreamAppLogsResponse]) -> int:
    """How many replayed identities the suspended stream holds (its ``replayed`` local)."""
    return len(stream.ag_frame.f_locals["replayed"])  # type: ignore[attr-defined]


@pytest.mark.timeout(60)
async def test_replaying_many_old_lines_remembers_only_the_hubs_window(loki: LokiDouble) -> None:
    app = new_app("replay-memory")
    old = time.time_ns() - 1800 * NS  # half an hour ago: older than anything the hub could send again
    old_lines = [f"old {i:05d}" for i in range(OLD_LINES)]
    loki.push([{"stream": stream_labels(app), "values": [[old + i * 1000, line] for i, line in enumerate(old_lines)]}])
    hub = hub_for(loki.url)
    viewer = await hub.open_stream(app, request(app))  # a live viewer moves the hub past a few recent lines
    resumed: AsyncIterator[pb.StreamAppLogsResponse] | None = None
    try:
        first = asyncio.create_task(anext(viewer))
        recent = time.time_ns()
        recent_lines = [f"recent {i}" for i in range(RECENT_LINES)]
        loki.push(
            [{"stream": stream_labels(app), "values": [[recent + i, line] for i, line in enumerate(recent_lines)]}]
        )
        await asyncio.wait_for(first, 15)
        for _ in range(RECENT_LINES - 1):
            await asyncio.wait_for(anext(viewer), 15)

        resumed = await hub.open_stream(app, request(app, cursor=cursor_at(app.id, old - 1)))
        got: list[str] = []
        peak = 0
        for _ in range(OLD_LINES + RECENT_LINES):
            got.append((await asyncio.wait_for(anext(resumed), 15)).entry.message)
            peak = max(peak, remembered(resumed))
        # The documented bound: only replayed entries the hub could still send (the recent window), never
        # the old lines, however many there are.
        assert peak <= RECENT_LINES, f"the replay held {peak} identities"
        assert got == old_lines + recent_lines  # each exactly once, in order

        nxt = asyncio.create_task(anext(resumed))
        loki.push([{"stream": stream_labels(app), "values": [[time.time_ns(), "live"]]}])
        assert (await asyncio.wait_for(nxt, 15)).entry.message == "live"
        assert remembered(resumed) <= RECENT_LINES
    finally:
        if resumed is not None:
            await resumed.aclose()  # type: ignore[attr-defined]
        await viewer.aclose()  # type: ignore[attr-defined]
        await hub.close()
        await hub.loki.close()


@pytest.mark.timeout(30)
async def test_a_cursor_older_than_loki_can_be_asked_for_starts_with_a_cursor_expired_gap(loki: LokiDouble) -> None:
    app = new_app("cursor-expired")
    hub = hub_for(loki.url)
    stream = await hub.open_stream(app, request(app, cursor=cursor_at(app.id, time.time_ns() - MAX_QUERY_LENGTH_NS)))
    try:
        first = asyncio.create_task(anext(stream))
        loki.push([{"stream": stream_labels(app), "values": [[time.time_ns(), "after the gap"]]}])
        message = await asyncio.wait_for(first, 15)
        assert message.HasField("gap"), message
        assert (message.gap.reason, message.gap.dropped_entries) == ("cursor_expired", 0)  # 0: count unknown
        assert message.cursor
        assert (await asyncio.wait_for(anext(stream), 15)).entry.message == "after the gap"
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await hub.close()
        await hub.loki.close()
