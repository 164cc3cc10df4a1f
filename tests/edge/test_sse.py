"""SSE framing, lifecycle and errors through a real edge process in front of a scripted upstream."""

from __future__ import annotations

import asyncio
import json
import pathlib
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from httpx_sse import aconnect_sse

from testing.edge import EdgeProcess, running_edge
from testing.procs import free_port
from tests.edge.scripted import Scripted

pytestmark = pytest.mark.timeout(60)

KEY = "dor_sk_" + "S" * 43
AUTH = {"authorization": f"Bearer {KEY}"}
SETTINGS = {
    "MONITORING_EDGE_HEARTBEAT": "0.3",
    "MONITORING_EDGE_SSE_RETRY_MS": "1500",
    "MONITORING_EDGE_DEADLINE": "1",
}


def stream_path(app: str) -> str:
    return f"/api/v1/workspaces/ws_1/monitoring/apps/{app}/logs/stream"


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    await scripted.start()
    yield scripted
    await scripted.stop()


@pytest.fixture(scope="module")
def edge(upstream: Scripted, log_dir: pathlib.Path) -> Iterator[EdgeProcess]:
    with running_edge(log_dir, upstream.addr, SETTINGS) as process:
        yield process


@pytest.fixture
async def client(edge: EdgeProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=edge.url, timeout=10) as c:
        yield c


async def read_until(response: httpx.Response, marker: bytes, limit: float = 5.0) -> bytes:
    """The raw body up to and including the first block containing ``marker`` (bounded in time)."""
    buffer = b""
    async with asyncio.timeout(limit):
        async for chunk in response.aiter_raw():
            buffer += chunk
            if marker in buffer and buffer.endswith(b"\n\n"):
                return buffer
    return buffer


async def test_events_carry_id_and_one_line_of_documented_json(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", stream_path("app_steady"), headers=AUTH) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-accel-buffering"] == "no"
        body = await read_until(response, b"id: c3")
    assert body.startswith(b"retry: 1500\n: connected\n\n")
    events = body.split(b"\n\n")[1:4]
    assert events[0] == (
        b'id: c1\ndata: {"timestamp":"2025-01-20T14:30:02.000001Z","severity":"INFO","message":"line 1"}'
    )
    for n, event in enumerate(events, start=1):
        id_line, data_line = event.split(b"\n")
        assert id_line == f"id: c{n}".encode()
        assert set(json.loads(data_line.removeprefix(b"data: "))) == {"timestamp", "severity", "message"}


async def test_a_standard_sse_client_reads_messages_and_gaps(client: httpx.AsyncClient) -> None:
    seen = []
    async with aconnect_sse(client, "GET", stream_path("app_gap"), headers=AUTH) as source:
        async with asyncio.timeout(5):
            async for event in source.aiter_sse():
                if not event.data:
                    continue  # the opening retry/comment block: a browser dispatches nothing for it
                seen.append((event.event, event.id, json.loads(event.data)))
                if len(seen) == 3:
                    break
    assert seen[1] == ("gap", "c8", {"droppedEntries": 7, "reason": "slow_consumer"})
    assert seen[2][0:2] == ("message", "c9")
    assert seen[2][2]["severity"] == "ERROR"


async def test_idle_streams_get_heartbeat_comments(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", stream_path("app_quiet"), headers=AUTH) as response:
        body = await read_until(response, b": keepalive", limit=3.0)
    assert b": keepalive\n\n" in body


async def test_client_disconnect_cancels_the_upstream_call_within_a_second(
    client: httpx.AsyncClient, upstream: Scripted
) -> None:
    async with client.stream("GET", stream_path("app_quiet"), headers=AUTH) as response:
        await read_until(response, b": connected")
        call = upstream.last("app_quiet")
        closed = time.monotonic()
    await asyncio.wait_for(call.cancelled.wait(), timeout=1.0)  # TimeoutError: not cancelled within 1 s
    assert call.cancelled_at is not None and call.cancelled_at - closed < 1.0


async def test_last_event_id_resumes_after_that_event(client: httpx.AsyncClient, upstream: Scripted) -> None:
    headers = {**AUTH, "last-event-id": "c2"}
    async with client.stream("GET", stream_path("app_resume"), headers=headers) as response:
        body = await read_until(response, b"id: c3")
    assert upstream.last("app_resume").request.cursor == "c2"
    assert b"id: c1\n" not in body and b"id: c2\n" not in body


async def test_an_error_after_the_200_travels_in_band_and_ends_the_stream(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", stream_path("app_fail"), headers=AUTH) as response:
        assert response.status_code == 200
        async with asyncio.timeout(5):
            body = b"".join([chunk async for chunk in response.aiter_raw()])  # ends: the edge closes it
    last = body.rstrip(b"\n").split(b"\n\n")[-1]
    event_line, data_line = last.split(b"\n")
    assert event_line == b"event: error"
    error = json.loads(data_line.removeprefix(b"data: "))["error"]
    assert (error["code"], error["status"], error["message"]) == (503, "UNAVAILABLE", "loki unavailable: reset")
    assert error["details"][0]["reason"] == "BACKEND"


async def test_a_finished_upstream_stream_ends_the_response(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", stream_path("app_end"), headers=AUTH) as response:
        async with asyncio.timeout(5):
            body = b"".join([chunk async for chunk in response.aiter_raw()])
    assert body.endswith(b"id: c1\ndata: " + body.split(b"data: ")[-1])


async def test_a_refusal_before_any_event_is_a_real_http_status(client: httpx.AsyncClient) -> None:
    response = await client.get(stream_path("app_denied"), headers=AUTH)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"


@pytest.mark.parametrize("how", ["query", "cookie"])
async def test_the_stream_accepts_the_key_as_access_token_and_never_logs_it(
    client: httpx.AsyncClient, upstream: Scripted, edge: EdgeProcess, how: str
) -> None:
    secret = "dor_sk_" + ("Q" if how == "query" else "C") * 43
    app = f"app_end_{how}"
    params = {"access_token": secret} if how == "query" else {}
    cookies = {"access_token": secret} if how == "cookie" else {}
    client.cookies.update(cookies)
    try:
        response = await client.get(stream_path(app), params=params)
    finally:
        client.cookies.clear()
    assert response.status_code == 200
    assert upstream.last(app).authorization == f"Bearer {secret}"
    log = await edge.logged(stream_path(app))
    assert secret not in log
    if how == "query":
        assert f"{stream_path(app)}?access_token=REDACTED" in log


async def test_the_authorization_header_wins_over_access_token(client: httpx.AsyncClient, upstream: Scripted) -> None:
    await client.get(stream_path("app_end_both"), params={"access_token": "dor_sk_other"}, headers=AUTH)
    assert upstream.last("app_end_both").authorization == f"Bearer {KEY}"


async def test_a_percent_encoded_access_token_name_is_accepted_and_still_redacted(
    client: httpx.AsyncClient, upstream: Scripted, edge: EdgeProcess
) -> None:
    secret = "dor_sk_" + "E" * 43
    response = await client.get(f"{stream_path('app_end_encoded')}?access%5Ftoken={secret}")
    assert response.status_code == 200
    assert upstream.last("app_end_encoded").authorization == f"Bearer {secret}"
    log = await edge.logged(stream_path("app_end_encoded"))
    assert secret not in log
    assert f"{stream_path('app_end_encoded')}?access_token=REDACTED" in log


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v1/workspaces/ws_1/monitoring/apps/app_bad_key_unary/health", {"authorization": b"Bearer caf\xe9"}),
        (stream_path("app_bad_key_header"), {"authorization": b"Bearer dor_sk_a\tb"}),
        (stream_path("app_bad_key_query") + "?access_token=caf%C3%A9", {}),
    ],
    ids=["unary-header", "stream-header", "stream-query"],
)
async def test_a_credential_grpc_cannot_carry_is_401_before_any_call(
    client: httpx.AsyncClient, upstream: Scripted, path: str, headers: dict[str, bytes]
) -> None:
    calls = len(upstream.calls)
    response = await client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="monitoring", error="invalid_token"'
    error = response.json()["error"]
    assert error["status"] == "UNAUTHENTICATED"
    assert "malformed credential" in error["message"] and "visible ASCII" in error["message"]
    assert len(upstream.calls) == calls


async def test_curl_n_prints_the_events(edge: EdgeProcess) -> None:
    argv = ["curl", "-sN", "--max-time", "2", "-H", f"Authorization: Bearer {KEY}", "-H", "Accept: text/event-stream"]
    done = await asyncio.to_thread(subprocess.run, [*argv, edge.url + stream_path("app_steady")], capture_output=True)
    assert b'data: {"timestamp":"2025-01-20T14:30:02.000001Z","severity":"INFO","message":"line 1"}' in done.stdout


async def test_grpc_timeout_header_sets_the_upstream_deadline(client: httpx.AsyncClient, upstream: Scripted) -> None:
    started = time.monotonic()
    response = await client.get(
        "/api/v1/workspaces/ws_1/monitoring/apps/app_slow/health", headers={**AUTH, "grpc-timeout": "200m"}
    )
    assert response.status_code == 504
    assert response.json()["error"]["status"] == "DEADLINE_EXCEEDED"
    assert time.monotonic() - started < 0.9
    deadline = upstream.last("app_slow").deadline_s
    assert deadline is not None and deadline <= 0.25  # 200 ms, rounded up on the wire


async def test_unary_calls_get_the_default_deadline(client: httpx.AsyncClient, upstream: Scripted) -> None:
    response = await client.get("/api/v1/workspaces/ws_1/monitoring/apps/app_slow/health", headers=AUTH)
    assert response.status_code == 504
    deadline = upstream.last("app_slow").deadline_s
    assert deadline is not None and 0.5 < deadline <= 1.05  # grpc-timeout travels rounded up


async def test_a_malformed_grpc_timeout_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/workspaces/ws_1/monitoring/apps/app_1/health", headers={**AUTH, "grpc-timeout": "soon"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Grpc-Timeout: ")


async def test_an_rpc_the_upstream_does_not_implement_is_501(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/workspaces/ws_1/monitoring/overview", headers=AUTH)
    assert response.status_code == 501
    assert response.json()["error"]["status"] == "UNIMPLEMENTED"


async def test_readyz_reports_the_upstream_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "SERVING"})


def test_an_unreachable_upstream_is_503_with_a_message_never_a_trace(log_dir: pathlib.Path) -> None:
    with running_edge(log_dir, f"127.0.0.1:{free_port()}") as dead:
        response = httpx.get(f"{dead.url}/api/v1/workspaces/ws_1/monitoring/overview", headers=AUTH)
        ready = httpx.get(f"{dead.url}/readyz")
        healthy = httpx.get(f"{dead.url}/healthz")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["message"] == "the monitoring service is unreachable; try again shortly"
    assert error["details"][0]["reason"] == "UPSTREAM_UNAVAILABLE"
    assert "Traceback" not in response.text and "Traceback" not in dead.log()
    assert ready.status_code == 503 and healthy.status_code == 200


async def test_sigterm_ends_open_streams_after_the_grace_and_cancels_them_upstream(
    upstream: Scripted, log_dir: pathlib.Path
) -> None:
    with running_edge(log_dir, upstream.addr, {"MONITORING_EDGE_SHUTDOWN_GRACE": "1"}) as own:
        client = httpx.AsyncClient(base_url=own.url, timeout=10)
        async with client, client.stream("GET", stream_path("app_quiet_sigterm"), headers=AUTH) as response:
            await read_until(response, b": connected")
            call = upstream.last("app_quiet_sigterm")
            started = time.monotonic()
            code = await asyncio.to_thread(own.stop, signal.SIGTERM, 10.0)
            stopped = time.monotonic() - started
    assert code == 0
    assert stopped < 4.0
    await asyncio.wait_for(call.cancelled.wait(), timeout=2.0)
