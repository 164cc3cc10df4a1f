"""How StreamAppLogs streams end: lifetime, revoked key, a client that stops reading, shutdown; and the stream
caps. Real processes on loopback (server, Loki double, and the edge for the SSE `end` event), each server
started with its own short settings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import signal
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from dooor.monitoring.v1 import monitoring_pb2_grpc
from dooor.monitoring.v1 import platform_pb2 as ppb
from testing.edge import running_edge
from testing.loki import LokiDouble
from testing.platform import ADMIN, Tenant, new_tenant
from testing.procs import ServerProcess, running_server
from tests.logs.conftest import loki_env
from tests.logs.test_stream import Subscription, labels, tails_opened, until

pytestmark = pytest.mark.timeout(90)


@contextlib.contextmanager
def server_with(
    log_dir: pathlib.Path, tmp_path: pathlib.Path, loki: LokiDouble, **loki_keys: float
) -> Iterator[ServerProcess]:
    """A server of its own whose ``[loki]`` table holds ``loki_keys`` (plus the suite's short linger)."""
    table = {"tail_linger_s": 1.0, "tail_watchdog_s": 1.0, **loki_keys}
    config = tmp_path / "monitoring.toml"
    config.write_text("[loki]\n" + "".join(f"{key} = {value}\n" for key, value in table.items()))
    env = loki_env(loki.url, MONITORING_CONFIG_FILE=str(config))
    with running_server(log_dir, tmp_path / "monitoring.db", env) as server:
        yield server


async def accepted(sub: Subscription) -> None:
    """Waits until the server accepted the call (its headers arrived) or refused it."""
    await asyncio.wait_for(sub.call.initial_metadata(), 10)


async def refusal(sub: Subscription) -> grpc.aio.AioRpcError:
    await sub.wait_for(lambda s: s.error is not None or (s.task is not None and s.task.done()), within=5)
    assert sub.error is not None, f"the call was not refused: {sub.messages}"
    return sub.error


def error_info(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return {"reason": info.reason, **info.metadata}
    raise AssertionError(f"no ErrorInfo in {status}")


async def first_tail(loki: LokiDouble, before: int) -> None:
    await until(lambda: tails_opened(loki) >= before + 1)


async def test_a_stream_ends_at_its_lifetime_with_a_cursor_to_resume_from_also_over_sse(
    loki: LokiDouble, log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    lifetime = 3.0
    with server_with(log_dir, tmp_path, loki, stream_max_lifetime_s=lifetime) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenant = await new_tenant(channel)
            app = await tenant.add_app()
            stream = labels(tenant, app.id)
            before = tails_opened(loki)
            opened = time.monotonic()
            sub = Subscription(tenant, app.id)
            await first_tail(loki, before)
            loki.push([{"stream": stream, "values": [[time.time_ns(), "before the end"]]}])
            await sub.lines_count(1)
            assert sub.task is not None
            await asyncio.wait_for(sub.task, lifetime + 10)
            lasted = time.monotonic() - opened
            assert sub.error is None and await sub.call.code() == grpc.StatusCode.OK
            assert lifetime - 0.5 <= lasted <= lifetime + 5, lasted
            end = sub.messages[-1]
            assert end.WhichOneof("event") == "end" and end.end.reason == "lifetime"
            assert end.cursor == sub.messages[0].cursor  # the last delivered position
            # Resuming from the end's cursor continues seamlessly: what came later, nothing twice.
            loki.push([{"stream": stream, "values": [[time.time_ns(), "after the end"]]}])
            resumed = Subscription(tenant, app.id, cursor=end.cursor)
            try:
                await resumed.lines_count(1)
                await asyncio.sleep(0.3)
                assert resumed.lines == ["after the end"]
            finally:
                await resumed.close()

            # The same over SSE: `event: end` with the cursor as its id, then the response ends; an
            # EventSource reconnecting with Last-Event-ID gets what followed.
            with running_edge(log_dir, server.addr) as edge:
                url = f"{edge.url}/api/v1/workspaces/{tenant.workspace_id}/monitoring/apps/{app.id}/logs/stream"
                auth = {"authorization": f"Bearer {tenant.key}"}
                async with httpx.AsyncClient(timeout=lifetime + 15) as client:
                    body = b""
                    async with client.stream("GET", url, headers=auth) as response:
                        assert response.status_code == 200
                        await asyncio.sleep(0.5)
                        loki.push([{"stream": stream, "values": [[time.time_ns(), "over sse"]]}])
                        async with asyncio.timeout(lifetime + 10):
                            async for chunk in response.aiter_raw():  # to the end of the response
                                body += chunk
                    blocks = [b for b in body.decode().split("\n\n") if b]
                    assert any('"message":"over sse"' in b for b in blocks), blocks
                    fields = dict(line.split(": ", 1) for line in blocks[-1].split("\n"))
                    assert fields["event"] == "end" and json.loads(fields["data"]) == {"reason": "lifetime"}, blocks
                    entry_ids = [dict(x.split(": ", 1) for x in b.split("\n")).get("id") for b in blocks[1:-1]]
                    assert fields["id"] == entry_ids[-1]
                    loki.push([{"stream": stream, "values": [[time.time_ns(), "after sse end"]]}])
                    async with client.stream("GET", url, headers={**auth, "last-event-id": fields["id"]}) as again:
                        assert again.status_code == 200
                        seen = b""
                        async with asyncio.timeout(10):
                            async for chunk in again.aiter_raw():
                                seen += chunk
                                if b"after sse end" in seen:
                                    break
                        assert b"over sse" not in seen and b"after sse end" in seen


async def test_streams_beyond_the_key_or_server_cap_are_resource_exhausted_at_once(
    loki: LokiDouble, log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    with server_with(log_dir, tmp_path, loki, max_streams_per_key=2, max_streams=3) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            first, second = await new_tenant(channel), await new_tenant(channel)
            app, other = await first.add_app(), await second.add_app()
            mine = [Subscription(first, app.id) for _ in range(2)]
            subs = list(mine)
            try:
                for sub in mine:
                    await accepted(sub)
                started = time.monotonic()
                extra = Subscription(first, app.id)
                subs.append(extra)
                error = await refusal(extra)
                assert time.monotonic() - started < 3
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "2 open log streams per API key" in (error.details() or ""), error.details()
                assert error_info(error)["limit"] == "max_streams_per_key"

                theirs = Subscription(second, other.id)  # another key: its own budget, but the server's is 3
                subs.append(theirs)
                await accepted(theirs)
                over = Subscription(second, other.id)
                subs.append(over)
                error = await refusal(over)
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "3 open log streams on this server" in (error.details() or ""), error.details()
                assert error_info(error)["limit"] == "max_streams"

                await mine[0].close()  # a closed stream gives its slot back
                deadline = time.monotonic() + 10
                while True:
                    retry = Subscription(first, app.id)
                    subs.append(retry)
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        await accepted(retry)
                        await asyncio.sleep(0.3)
                    if retry.error is None and not retry.call.done():
                        break
                    assert time.monotonic() < deadline, "the closed stream's slot was not given back"
                    await asyncio.sleep(0.2)
            finally:
                for sub in subs:
                    await sub.close()


async def test_revoking_a_key_ends_its_streams_within_the_recheck_period(
    loki: LokiDouble, log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    recheck = 1.0
    with server_with(log_dir, tmp_path, loki, stream_key_recheck_s=recheck) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenant = await new_tenant(channel)
            app = await tenant.add_app()
            before = tails_opened(loki)
            sub = Subscription(tenant, app.id)
            try:
                await first_tail(loki, before)
                loki.push([{"stream": labels(tenant, app.id), "values": [[time.time_ns(), "still allowed"]]}])
                await sub.lines_count(1)
                await revoke(tenant)
                revoked = time.monotonic()
                assert sub.task is not None
                await asyncio.wait_for(sub.task, recheck + 5)
                assert time.monotonic() - revoked <= recheck + 3
                assert sub.error is None
                end = sub.messages[-1]
                assert end.WhichOneof("event") == "end" and end.end.reason == "revoked_key"
                assert end.cursor == sub.messages[0].cursor
                again = Subscription(tenant, app.id)
                assert (await refusal(again)).code() == grpc.StatusCode.UNAUTHENTICATED
            finally:
                await sub.close()


async def revoke(tenant: Tenant) -> None:
    keys = await tenant.platform.ListApiKeys(ppb.ListApiKeysRequest(workspace_id=tenant.workspace_id), metadata=ADMIN)
    for key in keys.api_keys:
        request = ppb.RevokeApiKeyRequest(workspace_id=tenant.workspace_id, key_id=key.id)
        await tenant.platform.RevokeApiKey(request, metadata=ADMIN)


async def test_a_subscriber_that_stops_reading_is_dropped_after_the_stall_time(
    loki: LokiDouble, log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    stall = 2.0
    settings = {"stream_stalled_after_s": stall, "stream_buffer": 16, "max_streams_per_key": 1}
    with server_with(log_dir, tmp_path, loki, **settings) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenant = await new_tenant(channel)
            app = await tenant.add_app()
            # Without BDP probing the HTTP/2 window stays at 64 KiB: the server feels the client stop reading.
            slow_channel = grpc.aio.insecure_channel(server.addr, options=[("grpc.http2.bdp_probe", 0)])
            stub = monitoring_pb2_grpc.MonitoringServiceStub(slow_channel)
            before = tails_opened(loki)
            slow = Subscription(tenant, app.id, read=False, stub=stub)
            probes: list[Subscription] = []
            try:
                await first_tail(loki, before)
                now = time.time_ns()
                payload = "x" * 1000
                values = [[now + i, f"{i:04d} {payload}"] for i in range(400)]  # ~400 KB: window and buffer fill
                loki.push([{"stream": labels(tenant, app.id), "values": values}])
                pushed = time.monotonic()
                # Its one slot (max_streams_per_key = 1) is taken while it is open ...
                probe = Subscription(tenant, app.id)
                probes.append(probe)
                assert (await refusal(probe)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                # ... and given back once the server dropped it, without the client reading anything.
                while True:
                    probe = Subscription(tenant, app.id)
                    probes.append(probe)
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        await accepted(probe)
                        await asyncio.sleep(0.3)
                    if probe.error is None and not probe.call.done():
                        break
                    assert time.monotonic() - pushed < stall + 15, "the stalled subscriber was not dropped"
                    await asyncio.sleep(0.5)
                assert time.monotonic() - pushed >= stall - 0.5
                # When it reads again it finds what was in flight, then the end: a status, or the end message.
                slow.start()
                await slow.wait_for(lambda s: s.task is not None and s.task.done(), within=10)
                assert 0 < len(slow.lines) < 400
                if slow.error is not None:
                    assert slow.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    assert error_info(slow.error)["reason"] == "SLOW_CONSUMER"
                else:
                    assert slow.messages[-1].end.reason == "slow_consumer"
            finally:
                await slow.close()
                for probe in probes:
                    await probe.close()
                await slow_channel.close()


async def test_server_shutdown_ends_streams_with_an_end_message(
    loki: LokiDouble, log_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    with running_server(log_dir, tmp_path / "monitoring.db", loki_env(loki.url)) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            tenant = await new_tenant(channel)
            app = await tenant.add_app()
            before = tails_opened(loki)
            sub = Subscription(tenant, app.id)
            await first_tail(loki, before)
            loki.push([{"stream": labels(tenant, app.id), "values": [[time.time_ns(), "before shutdown"]]}])
            await sub.lines_count(1)
            server.popen.send_signal(signal.SIGTERM)
            assert sub.task is not None
            await asyncio.wait_for(sub.task, 15)
            assert sub.error is None and await sub.call.code() == grpc.StatusCode.OK
            end = sub.messages[-1]
            assert end.WhichOneof("event") == "end" and end.end.reason == "server_shutting_down"
            assert end.cursor == sub.messages[0].cursor
            assert server.popen.wait(15) == 0
