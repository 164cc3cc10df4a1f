"""Loki's tail slots as a shared budget: one upstream tail per app whatever the severity filters, a cap on the
apps one workspace tails, a per-process cap on upstream tails (a lingering tail gives its place up). Real
processes on loopback: the Loki double and the server."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import time
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing.loki import LokiDouble, running_loki
from testing.platform import Tenant, new_tenant
from testing.procs import ServerProcess
from tests.logs.test_stream import Subscription, labels, tails_opened, until
from tests.logs.test_stream_limits import accepted, error_info, refusal, server_with

pytestmark = pytest.mark.timeout(90)

# Two lines per severity, by the level words of docs/logs.md ("Severity").
LEVELS = {
    pb.SEVERITY_DEBUG: ("trace", "debug"),
    pb.SEVERITY_INFO: ("info", "notice"),
    pb.SEVERITY_WARNING: ("warn", "WARNING"),
    pb.SEVERITY_ERROR: ("err", "error"),
    pb.SEVERITY_CRITICAL: ("fatal", "panic"),
}


@contextlib.contextmanager
def own_loki(log_dir: pathlib.Path) -> Iterator[LokiDouble]:
    """A Loki double of the test's own, so its tail counts are the test's server's alone."""
    with running_loki(log_dir) as double:
        yield double


def retry_after_s(error: grpc.aio.AioRpcError) -> int:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return int(info.retry_delay.seconds)
    raise AssertionError(f"no RetryInfo in {status}")


async def closing(subs: list[Subscription]) -> None:
    for sub in subs:
        await sub.close()


async def receives_live(loki: LokiDouble, tenant: Tenant, app_id: str, sub: Subscription, line: str) -> None:
    """``sub`` receives a line pushed now within 3 s."""
    await accepted(sub)
    pushed = time.monotonic()
    loki.push([{"stream": labels(tenant, app_id), "values": [[time.time_ns(), line]]}])
    await sub.wait_for(lambda s: line in s.lines, within=5)
    assert time.monotonic() - pushed < 3


async def test_one_app_with_five_severity_filters_opens_one_tail_and_each_gets_its_severities(
    loki: LokiDouble, logs_server: ServerProcess, logs_tenant: Tenant
) -> None:
    app = await logs_tenant.add_app()
    await until(lambda: loki.stats()["tails_open"] == 0, within=15)  # earlier tests' tails have lingered out
    before = tails_opened(loki)
    subs = {severity: Subscription(logs_tenant, app.id, severity=severity) for severity in LEVELS}
    everything = Subscription(logs_tenant, app.id)
    try:
        for sub in (*subs.values(), everything):
            await accepted(sub)
        await until(lambda: tails_opened(loki) >= before + 1)
        now = time.time_ns()
        values = [(level, f"{level} line") for words in zip(*LEVELS.values(), strict=True) for level in words]
        for i, (level, line) in enumerate(values):
            loki.push([{"stream": labels(logs_tenant, app.id, level=level), "values": [[now + i, line]]}])
        await everything.lines_count(len(values))
        for sub in subs.values():
            await sub.lines_count(2)
        await asyncio.sleep(0.3)  # nothing else comes
        assert everything.lines == [line for _, line in values]
        for severity, sub in subs.items():
            assert sub.lines == [f"{level} line" for level in LEVELS[severity]], (severity, sub.lines)
            assert all(m.entry.severity == severity for m in sub.messages)
        stats = loki.stats()
        assert stats["tails_opened"] == before + 1 and stats["tails_open"] == 1, stats

        # A filtered cursor resumes by query_range with the severity selector: the replay sends exactly what
        # the filtered live stream sent after that cursor.
        for severity, sub in subs.items():
            resumed = Subscription(logs_tenant, app.id, severity=severity, cursor=sub.messages[0].cursor)
            try:
                await resumed.lines_count(1)
                await asyncio.sleep(0.2)
                assert resumed.lines == sub.lines[1:], (severity, resumed.lines)
            finally:
                await resumed.close()
        # A cursor of one severity does not resume another.
        other = Subscription(
            logs_tenant, app.id, severity=pb.SEVERITY_ERROR, cursor=subs[pb.SEVERITY_DEBUG].messages[0].cursor
        )
        try:
            error = await refusal(other)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        finally:
            await other.close()
    finally:
        await closing([*subs.values(), everything])


async def test_a_workspace_beyond_its_tailed_apps_is_refused_while_another_streams_promptly(
    log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    with own_loki(log_dir) as loki, server_with(log_dir, tmp_path, loki, max_tailed_apps_per_workspace=2) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            greedy, other = await new_tenant(channel), await new_tenant(channel)
            apps = [await greedy.add_app() for _ in range(3)]
            their_app = await other.add_app()
            subs = [Subscription(greedy, apps[0].id), Subscription(greedy, apps[1].id)]
            try:
                for sub in subs:
                    await accepted(sub)
                # More streams of an app already tailed are fine, whatever their severity.
                subs.append(Subscription(greedy, apps[0].id, severity=pb.SEVERITY_ERROR))
                await accepted(subs[-1])
                started = time.monotonic()
                extra = Subscription(greedy, apps[2].id)
                subs.append(extra)
                error = await refusal(extra)
                assert time.monotonic() - started < 3
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "2 apps with open log streams per workspace" in (error.details() or ""), error.details()
                assert error_info(error)["limit"] == "max_tailed_apps_per_workspace"
                assert retry_after_s(error) > 0

                theirs = Subscription(other, their_app.id)
                subs.append(theirs)
                await receives_live(loki, other, their_app.id, theirs, "another workspace streams")
                assert loki.stats()["tails_open"] == 3
            finally:
                await closing(subs)


async def test_the_process_tail_budget_refuses_one_app_more_and_a_lingering_tail_gives_way(
    log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    # A long linger: only closing the lingering tail for the new app can make room in time.
    with (
        own_loki(log_dir) as loki,
        server_with(log_dir, tmp_path, loki, max_upstream_tails=2, tail_linger_s=60.0) as server,
    ):
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenants = [await new_tenant(channel) for _ in range(3)]
            apps = [await tenant.add_app() for tenant in tenants]
            subs = [Subscription(tenants[i], apps[i].id) for i in range(2)]
            try:
                for sub in subs:
                    await accepted(sub)
                third = Subscription(tenants[2], apps[2].id)
                subs.append(third)
                error = await refusal(third)
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "2 Loki tails on this server" in (error.details() or ""), error.details()
                assert error_info(error)["limit"] == "max_upstream_tails"
                assert retry_after_s(error) > 0
                await until(lambda: loki.stats()["tails_open"] == 2)

                await subs[0].close()  # its tail lingers (60 s) but holds no place against a new app
                again = Subscription(tenants[2], apps[2].id)
                subs.append(again)
                await receives_live(loki, tenants[2], apps[2].id, again, "room was made")
                await until(lambda: loki.stats()["tails_open"] == 2)
                # The remaining stream was not degraded.
                await receives_live(loki, tenants[1], apps[1].id, subs[1], "still streaming")
            finally:
                await closing(subs)
