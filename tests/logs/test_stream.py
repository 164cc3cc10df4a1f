"""StreamAppLogs through a real server against the Loki double: fan-out, cuts, resume, gaps, shutdown."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import pathlib
import signal
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc
from testing.loki import LokiDouble
from testing.platform import Tenant, new_tenant
from testing.procs import ServerProcess, running_server
from tests.logs.conftest import loki_env

NS = 1_000_000_000


class Subscription:
    """One StreamAppLogs call read by a background task into ``messages``."""

    def __init__(
        self,
        tenant: Tenant,
        app_id: str,
        *,
        cursor: str = "",
        severity: int = 0,
        read: bool = True,
        stub: monitoring_pb2_grpc.MonitoringServiceStub | None = None,
        **filters: Any,
    ):
        request = pb.StreamAppLogsRequest(
            workspace_id=tenant.workspace_id, app_id=app_id, cursor=cursor, severity=severity, **filters
        )
        self.call = (stub or tenant.monitoring).StreamAppLogs(request, metadata=tenant.auth)
        self.messages: list[pb.StreamAppLogsResponse] = []
        self.changed = asyncio.Event()
        self.error: grpc.aio.AioRpcError | None = None
        self.task = asyncio.create_task(self._read()) if read else None

    def start(self) -> None:
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.call:
                self.messages.append(message)
                self.changed.set()
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                self.error = error
        self.changed.set()

    @property
    def lines(self) -> list[str]:
        return [m.entry.message for m in self.messages if m.HasField("entry")]

    async def wait_for(self, done: Callable[[Subscription], bool], within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while not done(self):
            if self.error is not None:
                raise self.error
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                have = [line[:20] for line in self.lines]
                raise AssertionError(f"timed out with {len(self.messages)} messages: {have[:3]}…{have[-3:]}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    async def lines_count(self, n: int, within: float = 20.0) -> None:
        await self.wait_for(lambda s: len(s.lines) >= n, within)

    async def close(self) -> None:
        self.call.cancel()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


def labels(tenant: Tenant, app_id: str, **extra: str) -> dict[str, str]:
    return {"workspace_id": tenant.workspace_id, "app_id": app_id, **extra}


def tails_opened(loki: LokiDouble) -> int:
    return int(loki.stats()["tails_opened"])


async def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def push_in_batches(loki: LokiDouble, stream: dict[str, str], lines: list[str], batch: int, pause: float) -> None:
    for i in range(0, len(lines), batch):
        now = time.time_ns()
        await asyncio.to_thread(
            loki.push, [{"stream": stream, "values": [[now + j, line] for j, line in enumerate(lines[i : i + batch])]}]
        )
        await asyncio.sleep(pause)


@pytest.mark.timeout(30)
async def test_live_lines_arrive_in_order_with_severity_and_cursor(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app = await logs_tenant.add_app()
    before = tails_opened(loki)
    sub = Subscription(logs_tenant, app.id)
    errors = Subscription(logs_tenant, app.id, severity=pb.SEVERITY_ERROR)
    try:
        # One upstream tail for the app, whatever the subscribers' severity filters.
        await until(lambda: tails_opened(loki) >= before + 1)
        for call in (sub.call, errors.call):
            await asyncio.wait_for(call.initial_metadata(), 10)
        now = time.time_ns()
        loki.push([{"stream": labels(logs_tenant, app.id, level="warn"), "values": [[now, "w1"], [now + 1, "w2"]]}])
        loki.push([{"stream": labels(logs_tenant, app.id, level="error"), "values": [[now + 2, "e1"]]}])
        await sub.lines_count(3)
        await errors.lines_count(1)
        assert sub.lines == ["w1", "w2", "e1"]
        assert [m.entry.severity for m in sub.messages] == [pb.SEVERITY_WARNING] * 2 + [pb.SEVERITY_ERROR]
        assert errors.lines == ["e1"]
        cursors = [m.cursor for m in sub.messages]
        assert all(cursors) and len(set(cursors)) == 3
        assert all(c.replace("-", "").replace("_", "").isalnum() for c in cursors)
    finally:
        await sub.close()
        await errors.close()


@pytest.mark.timeout(60)
async def test_tail_cut_mid_stream_loses_nothing_and_repeats_nothing(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app = await logs_tenant.add_app()
    opened = tails_opened(loki)
    sub = Subscription(logs_tenant, app.id)
    try:
        await until(lambda: tails_opened(loki) >= opened + 1)
        lines = [f"line {i:04d}" for i in range(600)]
        pusher = asyncio.create_task(push_in_batches(loki, labels(logs_tenant, app.id), lines, batch=20, pause=0.05))
        await sub.lines_count(100)
        loki.drop_tails()  # 1011 "all ingesters closed the connection", mid-stream
        await sub.lines_count(300)
        loki.stall_tails(True)  # the next tail hangs, lines pile up in Loki...
        await asyncio.sleep(0.3)
        loki.drop_tails("reached tail max duration limit")  # ... then it is cut too
        loki.stall_tails(False)
        await pusher
        try:
            await sub.lines_count(len(lines), within=30)
        except AssertionError:
            got = collections.Counter(sub.lines)
            missing = [x for x in lines if x not in got]
            twice = [x for x, n in got.items() if n > 1]
            gaps = [m.gap for m in sub.messages if m.HasField("gap")]
            raise AssertionError(f"missing {missing} twice {twice} gaps {gaps}") from None
        await asyncio.sleep(0.5)  # anything repeated late would show up here
        assert collections.Counter(sub.lines) == collections.Counter(lines)
        assert sub.lines == sorted(sub.lines)  # and in order
        assert tails_opened(loki) >= opened + 3  # it really reconnected, twice
    finally:
        await sub.close()


@pytest.mark.timeout(60)
async def test_lines_logged_as_the_stream_opens_are_streamed(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app = await logs_tenant.add_app()
    t0 = time.time_ns()  # the clock is read before subscribing, and the lines pushed at once
    sub = Subscription(logs_tenant, app.id)
    try:
        loki.push([{"stream": labels(logs_tenant, app.id), "values": [[t0 + i, f"early {i}"] for i in range(5)]}])
        await sub.lines_count(5)
        # A late line (a minute older than the newest streamed) is streamed too.
        loki.push([{"stream": labels(logs_tenant, app.id), "values": [[time.time_ns() - 60 * NS, "late"]]}])
        await sub.lines_count(6)
        await asyncio.sleep(0.3)
        assert sub.lines == [f"early {i}" for i in range(5)] + ["late"]
    finally:
        await sub.close()


@pytest.mark.timeout(60)
async def test_timestamps_behind_the_clock_survive_a_cut(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app = await logs_tenant.add_app()
    stream = labels(logs_tenant, app.id)
    opened = tails_opened(loki)
    sub = Subscription(logs_tenant, app.id)
    try:
        await until(lambda: tails_opened(loki) >= opened + 1)
        # A shipper catching up: every timestamp ten minutes behind the wall clock.
        behind = time.time_ns() - 10 * 60 * NS
        loki.push([{"stream": stream, "values": [[behind + i, f"behind {i:02d}"] for i in range(30)]}])
        await sub.lines_count(30)
        loki.drop_tails()
        loki.push([{"stream": stream, "values": [[behind + 30 + i, f"behind {30 + i:02d}"] for i in range(30)]}])
        await sub.lines_count(60)
        await asyncio.sleep(0.5)
        assert sub.lines == [f"behind {i:02d}" for i in range(60)]
        assert tails_opened(loki) >= opened + 2
    finally:
        await sub.close()


@pytest.mark.timeout(60)
async def test_hung_tail_is_detected_and_back_filled(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app = await logs_tenant.add_app()
    opened = tails_opened(loki)
    sub = Subscription(logs_tenant, app.id)
    stream = labels(logs_tenant, app.id)
    try:
        await until(lambda: tails_opened(loki) >= opened + 1)
        loki.stall_tails(True)  # the WebSocket stays open and answers pings, but no frame comes
        now = time.time_ns()
        loki.push([{"stream": stream, "values": [[now + i, f"hung {i:02d}"] for i in range(50)]}])
        await sub.lines_count(50, within=15)  # the watchdog (1 s here) notices and the back-fill delivers
        loki.stall_tails(False)
        later = time.time_ns()
        loki.push([{"stream": stream, "values": [[later + i, f"hung {50 + i:02d}"] for i in range(10)]}])
        await sub.lines_count(60)
        await asyncio.sleep(0.5)
        assert sub.lines == [f"hung {i:02d}" for i in range(60)]
        assert not any(m.HasField("gap") for m in sub.messages)
    finally:
        loki.stall_tails(False)
        await sub.close()


@pytest.mark.timeout(60)
async def test_resume_with_cursor_replays_exactly_what_came_after(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app = await logs_tenant.add_app()
    stream = labels(logs_tenant, app.id)
    before = tails_opened(loki)
    first = Subscription(logs_tenant, app.id)
    await until(lambda: tails_opened(loki) >= before + 1)
    stamp = time.time_ns()
    # Five lines share one nanosecond (in two streams), so the cursor has to tell them apart.
    loki.push([{"stream": stream, "values": [[stamp, f"a{i}"] for i in range(3)] + [[stamp + 1, "b0"]]}])
    loki.push([{"stream": {**stream, "pod": "other"}, "values": [[stamp, "a3"], [stamp, "a4"]]}])
    await first.lines_count(6)
    received = first.lines[:3]
    cursor = first.messages[2].cursor  # stop in the middle of the tie group
    await first.close()
    later = time.time_ns()
    loki.push([{"stream": stream, "values": [[later + i, f"c{i}"] for i in range(5)]}])  # while away

    second = Subscription(logs_tenant, app.id, cursor=cursor)
    try:
        await second.lines_count(6 - 3 + 5)
        loki.push([{"stream": stream, "values": [[time.time_ns(), "live after resume"]]}])
        await second.lines_count(6 - 3 + 5 + 1)
        await asyncio.sleep(0.3)
        everything = received + second.lines
        assert collections.Counter(everything) == collections.Counter(
            [f"a{i}" for i in range(5)] + ["b0"] + [f"c{i}" for i in range(5)] + ["live after resume"]
        )
        # A cursor from the resumed stream resumes too (nothing left after the last line).
        third = Subscription(logs_tenant, app.id, cursor=second.messages[-1].cursor)
        await asyncio.sleep(0.5)
        assert third.lines == []
        await third.close()
    finally:
        await second.close()


async def test_bad_or_foreign_cursor_is_invalid_argument(logs_tenant: Tenant, loki: LokiDouble) -> None:
    app = await logs_tenant.add_app()
    other = await logs_tenant.add_app()
    before = tails_opened(loki)
    sub = Subscription(logs_tenant, app.id)
    try:
        await until(lambda: tails_opened(loki) >= before + 1)
        loki.push([{"stream": labels(logs_tenant, app.id), "values": [[time.time_ns(), "x"]]}])
        await sub.lines_count(1)
    finally:
        await sub.close()
    for app_id, cursor in (
        (app.id, "garbage!"),
        (app.id, sub.messages[0].cursor[:-2] + "AA"),
        (other.id, sub.messages[0].cursor),
    ):
        call = Subscription(logs_tenant, app_id, cursor=cursor)
        await call.wait_for(lambda s: s.error is not None or (s.task is not None and s.task.done()), within=10)
        assert call.error is not None and call.error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (call.error.details() or "").startswith("cursor:")


@pytest.mark.timeout(60)
async def test_hundred_subscribers_share_exactly_one_upstream_tail(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app = await logs_tenant.add_app()
    await until(lambda: loki.stats()["tails_open"] == 0, within=15)  # earlier tests' tails have lingered out
    before = loki.stats()["tails_opened"]
    subs = [Subscription(logs_tenant, app.id) for _ in range(100)]
    try:
        await until(lambda: loki.stats()["tails_open"] == 1)
        await asyncio.sleep(0.5)
        assert loki.stats()["tails_opened"] == before + 1
        now = time.time_ns()
        loki.push([{"stream": labels(logs_tenant, app.id), "values": [[now + i, f"fan {i}"] for i in range(20)]}])
        for sub in subs:
            await sub.lines_count(20)
            assert sub.lines == [f"fan {i}" for i in range(20)]
        assert loki.stats()["tails_open"] == 1
    finally:
        for sub in subs:
            await sub.close()
    # Closed a little after the last subscriber left (linger is 1 s in this suite's config).
    await until(lambda: loki.stats()["tails_open"] == 0, within=10)


@pytest.mark.timeout(30)
async def test_loki_dropped_entries_become_an_upstream_dropped_gap(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app = await logs_tenant.add_app()
    before = tails_opened(loki)
    sub = Subscription(logs_tenant, app.id)
    try:
        await until(lambda: tails_opened(loki) >= before + 1)
        loki.drop_next(3)
        now = time.time_ns()
        loki.push([{"stream": labels(logs_tenant, app.id), "values": [[now + i, f"gone {i}"] for i in range(3)]}])
        loki.push([{"stream": labels(logs_tenant, app.id), "values": [[now + 10, "kept"]]}])
        await sub.lines_count(1)
        gaps = [m.gap for m in sub.messages if m.HasField("gap")]
        assert [(g.reason, g.dropped_entries) for g in gaps] == [("upstream_dropped", 3)]
        assert sub.lines == ["kept"]
        assert sub.messages[0].HasField("gap")  # the notice comes before the entry that followed the loss
    finally:
        await sub.close()


@pytest.mark.timeout(60)
async def test_slow_subscriber_gets_a_gap_while_others_keep_up(
    loki: LokiDouble, logs_tenant: Tenant, logs_server: ServerProcess
) -> None:
    app = await logs_tenant.add_app()
    before = tails_opened(loki)
    fast = Subscription(logs_tenant, app.id)
    # Without BDP probing the slow client's HTTP/2 window stays at 64 KiB, so the server feels it stop reading.
    slow_channel = grpc.aio.insecure_channel(logs_server.addr, options=[("grpc.http2.bdp_probe", 0)])
    stub = monitoring_pb2_grpc.MonitoringServiceStub(slow_channel)
    slow = Subscription(logs_tenant, app.id, read=False, stub=stub)  # never reads until the end
    try:
        await until(lambda: tails_opened(loki) >= before + 1)
        await asyncio.sleep(0.3)
        total = 1500
        payload = "x" * 300
        lines = [f"{i:05d} {payload}" for i in range(total)]
        await push_in_batches(loki, labels(logs_tenant, app.id), lines, batch=30, pause=0.1)
        await fast.lines_count(total, within=30)
        assert fast.lines == lines
        assert not any(m.HasField("gap") for m in fast.messages)
        slow.start()
        await slow.wait_for(
            lambda s: len(s.lines) + sum(m.gap.dropped_entries for m in s.messages if m.HasField("gap")) >= total,
            within=30,
        )
        gaps = [m.gap for m in slow.messages if m.HasField("gap")]
        assert gaps and all(g.reason == "slow_consumer" and g.dropped_entries > 0 for g in gaps)
        assert len(slow.lines) + sum(g.dropped_entries for g in gaps) == total  # every line accounted for
        assert slow.lines == sorted(slow.lines) and len(set(slow.lines)) == len(slow.lines)
    finally:
        await fast.close()
        await slow.close()
        await slow_channel.close()


async def test_stream_with_loki_unreachable_is_unavailable(tenant: Tenant) -> None:
    app = await tenant.add_app()
    sub = Subscription(tenant, app.id)
    await sub.wait_for(lambda s: s.error is not None or (s.task is not None and s.task.done()), within=15)
    assert sub.error is not None and sub.error.code() == grpc.StatusCode.UNAVAILABLE
    assert "Loki" in (sub.error.details() or "")


@pytest.mark.timeout(60)
async def test_server_shutdown_ends_streams_cleanly(
    loki: LokiDouble, log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    with running_server(log_dir, tmp_path / "monitoring.db", loki_env(loki.url)) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenant = await new_tenant(channel)
            app = await tenant.add_app()
            before = tails_opened(loki)
            sub = Subscription(tenant, app.id)
            await until(lambda: tails_opened(loki) >= before + 1)
            loki.push([{"stream": labels(tenant, app.id), "values": [[time.time_ns(), "before shutdown"]]}])
            await sub.lines_count(1)
            server.popen.send_signal(signal.SIGTERM)
            assert sub.task is not None
            await asyncio.wait_for(sub.task, 15)
            assert sub.error is None  # the stream ended with OK, not an error
            assert await sub.call.code() == grpc.StatusCode.OK
            assert server.popen.wait(15) == 0
