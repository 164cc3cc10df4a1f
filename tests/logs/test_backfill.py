"""Backfill, then follow (issue 17, item 2): a stream that starts with its last N lines, or from a time, then goes
live with nothing lost or repeated at the seam. Real server and Loki double processes."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing.loki import LokiDouble
from testing.platform import Tenant, ts
from tests.logs.test_list_logs import app_labels
from tests.logs.test_stream import Subscription, tails_opened, until

pytestmark = pytest.mark.timeout(90)

NS = 1_000_000_000


async def _refused(sub: Subscription) -> grpc.aio.AioRpcError:
    await sub.wait_for(lambda s: s.error is not None or (s.task is not None and s.task.done()), within=5)
    await sub.close()
    assert sub.error is not None, sub.messages
    return sub.error


async def test_backfill_starts_with_the_same_last_lines_listapplogs_shows_then_follows(
    loki: LokiDouble, logs_tenant: Tenant
) -> None:
    app = (await logs_tenant.add_app()).id
    old = time.time_ns() - 300 * NS
    # 40 lines over 10 instants in two streams: the 10th newest line shares its nanosecond with others.
    streams = {"a": [], "b": []}  # type: dict[str, list[list[object]]]
    for i in range(40):
        streams["ab"[i % 2]].append([old + (i // 4) * 1000, f"old {i:02d}"])
    loki.push([{"stream": app_labels(logs_tenant, app, pod=pod), "values": v} for pod, v in streams.items()])
    page = await logs_tenant.monitoring.ListAppLogs(
        pb.ListAppLogsRequest(workspace_id=logs_tenant.workspace_id, app_id=app, limit=10), metadata=logs_tenant.auth
    )
    last_ten = [entry.message for entry in reversed(page.logs)]

    before = tails_opened(loki)
    sub = Subscription(logs_tenant, app, backfill=10)
    try:
        await sub.lines_count(10)
        assert sub.lines == last_ten
        await until(lambda: tails_opened(loki) > before)
        loki.push([{"stream": app_labels(logs_tenant, app, pod="a"), "values": [[time.time_ns(), "live"]]}])
        await sub.lines_count(11)
        await asyncio.sleep(0.3)  # nothing else arrives
        assert sub.lines == [*last_ten, "live"]
    finally:
        await sub.close()


async def test_nothing_is_lost_or_repeated_at_the_seam_while_lines_keep_coming(
    loki: LokiDouble, logs_tenant: Tenant
) -> None:
    app = (await logs_tenant.add_app()).id
    total = 150

    async def write() -> None:
        for i in range(total):  # bounded: 150 lines, one every 10 ms
            await asyncio.to_thread(
                loki.push, [{"stream": app_labels(logs_tenant, app), "values": [[time.time_ns(), f"n {i:03d}"]]}]
            )
            await asyncio.sleep(0.01)

    writer = asyncio.create_task(write())
    await asyncio.sleep(0.5)  # some lines are in Loki before the stream starts, more come while it starts
    sub = Subscription(logs_tenant, app, backfill=5)
    try:
        await writer
        await sub.wait_for(lambda s: bool(s.lines) and s.lines[-1] == f"n {total - 1:03d}", within=20)
        numbers = [int(line.split()[1]) for line in sub.lines]
        assert numbers == list(range(numbers[0], total)), numbers  # contiguous: no gap, no repeat
        assert len(numbers) >= 5
    finally:
        writer.cancel()
        await sub.close()


async def test_start_time_replays_from_that_time_then_follows(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app = (await logs_tenant.add_app()).id
    t0 = time.time_ns() - 120 * NS
    loki.push([{"stream": app_labels(logs_tenant, app), "values": [[t0 + i * 1000, f"at {i:02d}"] for i in range(30)]}])
    before = tails_opened(loki)
    sub = Subscription(logs_tenant, app, start_time=ts(t0 + 10 * 1000))
    try:
        await sub.lines_count(20)
        assert sub.lines == [f"at {i:02d}" for i in range(10, 30)]
        await until(lambda: tails_opened(loki) > before)
        loki.push([{"stream": app_labels(logs_tenant, app), "values": [[time.time_ns(), "then live"]]}])
        await sub.lines_count(21)
        assert sub.lines[-1] == "then live"
        cursor = sub.messages[-1].cursor
    finally:
        await sub.close()
    # A reconnecting client (cursor, and still the start time in its URL) resumes where it was.
    loki.push([{"stream": app_labels(logs_tenant, app), "values": [[time.time_ns(), "after reconnect"]]}])
    again = Subscription(logs_tenant, app, start_time=ts(t0 + 10 * 1000), backfill=0, cursor=cursor)
    try:
        await again.lines_count(1)
        await asyncio.sleep(0.3)
        assert again.lines == ["after reconnect"]
    finally:
        await again.close()


async def test_start_time_is_inclusive_to_the_nanosecond(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app = (await logs_tenant.add_app()).id
    t = time.time_ns() - 60 * NS
    loki.push(
        [{"stream": app_labels(logs_tenant, app), "values": [[t - 1, "just before"], [t, "at"], [t + 1, "after"]]}]
    )
    sub = Subscription(logs_tenant, app, start_time=ts(t))
    try:
        await sub.lines_count(2)
        await asyncio.sleep(0.3)
        assert sub.lines == ["at", "after"]  # as ListAppLogs' start_time: inclusive, nothing earlier
    finally:
        await sub.close()


async def test_a_start_time_older_than_loki_can_be_asked_for_starts_with_a_gap(
    loki: LokiDouble, logs_tenant: Tenant
) -> None:
    app = (await logs_tenant.add_app()).id
    sub = Subscription(logs_tenant, app, start_time=ts(time.time_ns() - 800 * 3600 * NS))
    try:
        await sub.wait_for(lambda s: bool(s.messages))
        first = sub.messages[0]
        assert first.WhichOneof("event") == "gap"
        assert (first.gap.reason, first.gap.dropped_entries) == ("start_time_expired", 0)
    finally:
        await sub.close()


async def test_bad_backfill_and_start_time_are_invalid_argument(logs_tenant: Tenant) -> None:
    app = (await logs_tenant.add_app()).id
    for fields, field in (
        ({"backfill": 1001}, "backfill"),
        ({"backfill": -1}, "backfill"),
        ({"backfill": 5, "start_time": ts(time.time_ns() - NS)}, "start_time"),
        ({"start_time": ts(time.time_ns() + 3600 * NS)}, "start_time"),
    ):
        error = await _refused(Subscription(logs_tenant, app, **fields))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert (error.details() or "").startswith(f"{field}:"), error.details()
