"""A tenant's error shows which backend failed and why in plain words, and a request id, never internals.

The backends' URLs carry a user, a password, a host, a port and a path prefix; the backends that answer echo
the query back in their error bodies. None of it may reach a caller: it goes to the server log, under the
request id the caller was given.
"""

from __future__ import annotations

import asyncio
import pathlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing.platform import Tenant, new_tenant
from testing.procs import ServerProcess, free_port, running_server

pytestmark = pytest.mark.timeout(90)

TIMEOUT_S = 1.0
SECRET = "s3cret"
# Prometheus's and Loki's real habit: the error body quotes the query it could not run.
PROMQL_ECHO = (
    b'{"status":"error","errorType":"bad_data","error":"invalid parameter \\"query\\": 1:42: parse error: '
    b'unexpected \\"}\\" in sum(rate(http_requests_total{workspace_id=\\"ws_x\\"}[5m]))"}'
)
LOGQL_ECHO = b'parse error at line 1, col 18: syntax error: unexpected }, query: {workspace_id="ws_x",app_id="a"}'
# A 200 whose JSON is not the streams shape: a value without its line.
LOKI_WRONG_SHAPE = (
    b'{"status":"success","data":{"resultType":"streams","result":[{"stream":{"a":"b"},"values":[["1"]]}]}}'
)


def forbidden(port: int) -> list[str]:
    return [SECRET, "user:", "127.0.0.1", str(port), "/prom", "api/v1", "query", "{", "workspace_id"]


Answer = tuple[int, str, bytes]


class Backend:
    """A tiny HTTP/1.1 server on 127.0.0.1: one canned answer per path prefix, or a body trickled slowly."""

    def __init__(self) -> None:
        self.port = free_port()
        self.answers: dict[str, Answer] = {}
        self.trickle_s = 0.0  # > 0: send the body one byte at a time, this far apart
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _answer(self, path: str) -> Answer:
        for prefix, answer in self.answers.items():
            if path.startswith(prefix):
                return answer
        return 404, "text/plain", b"not found"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            path = head.split(b" ")[1].decode()
            status, kind, body = self._answer(path)
            header = f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            writer.write(header.encode() + b"Connection: close\r\n\r\n")
            await self._send(writer, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, body: bytes) -> None:
        if not self.trickle_s:
            writer.write(body)
            await writer.drain()
            return
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(self.trickle_s)


def backend_env(port: int) -> dict[str, str]:
    return {
        "MONITORING_PROMETHEUS_URL": f"http://user:{SECRET}@127.0.0.1:{port}/prom",
        "MONITORING_LOKI_URL": f"http://user:{SECRET}@127.0.0.1:{port}/loki",
        "MONITORING_BACKEND_TIMEOUT": str(TIMEOUT_S),
        "MONITORING_EVAL_INTERVAL": "0.5",
    }


def own_files(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[pathlib.Path, pathlib.Path]:
    """A log directory and a database of the server's own: its log is searched for request ids."""
    where = tmp_path_factory.mktemp(name)
    return where, where / "monitoring.db"


@pytest.fixture(scope="module")
async def backend() -> AsyncIterator[Backend]:
    server = Backend()
    await server.start()
    yield server
    await server.close()


@pytest.fixture(scope="module")
def closed_port() -> int:
    return free_port()  # nothing listens there: connections are refused


@pytest.fixture(scope="module")
def refused_server(closed_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(*own_files(tmp_path_factory, "refused"), backend_env(closed_port)) as process:
        yield process


@pytest.fixture(scope="module")
def echo_server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(*own_files(tmp_path_factory, "echo"), backend_env(backend.port)) as process:
        yield process


async def tenant_of(server: ServerProcess) -> tuple[grpc.aio.Channel, Tenant, str]:
    channel = grpc.aio.insecure_channel(server.addr)
    tenant = await new_tenant(channel)
    app = await tenant.add_app()
    return channel, tenant, app.id


Call = Callable[[Tenant, str], Awaitable[object]]


async def metrics(tenant: Tenant, app_id: str) -> object:
    request = pb.GetAppMetricsRequest(workspace_id=tenant.workspace_id, app_id=app_id, period=pb.PERIOD_1H)
    return await tenant.monitoring.GetAppMetrics(request, metadata=tenant.auth)


async def overview(tenant: Tenant, app_id: str) -> object:
    request = pb.GetWorkspaceOverviewRequest(workspace_id=tenant.workspace_id)
    return await tenant.monitoring.GetWorkspaceOverview(request, metadata=tenant.auth)


async def logs(tenant: Tenant, app_id: str) -> object:
    request = pb.ListAppLogsRequest(workspace_id=tenant.workspace_id, app_id=app_id)
    return await tenant.monitoring.ListAppLogs(request, metadata=tenant.auth)


async def failure(call: Call, tenant: Tenant, app_id: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(tenant, app_id)
    return caught.value


def texts(error: grpc.aio.AioRpcError) -> list[str]:
    """The message and every detail as the caller can read them."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no rich status"
    return [error.details() or "", *(str(packed) for packed in status.details)]


def request_id(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for packed in status.details:
        info = error_details_pb2.ErrorInfo()
        if packed.Unpack(info):
            return info.metadata["request_id"]
    raise AssertionError(f"no ErrorInfo in {error.details()!r}")


def assert_plain(error: grpc.aio.AioRpcError, backend: str, port: int) -> str:
    """Asserts the caller sees no internals, names ``backend`` and a request id; returns the id."""
    for text in texts(error):
        leaked = [word for word in forbidden(port) if word in text]
        assert not leaked, f"{leaked} in {text!r}"
    message = error.details() or ""
    rid = request_id(error)
    assert re.fullmatch(r"[0-9a-f]{16}", rid), rid
    assert backend in message and f"request id {rid}" in message, message
    return rid


def logged_under(server: ServerProcess, rid: str) -> str:
    lines = [line for line in server.log().splitlines() if rid in line]
    assert lines, f"request id {rid} not in the server log"
    return "\n".join(lines)


CALLS = [(metrics, "prometheus"), (overview, "prometheus"), (logs, "Loki")]


@pytest.mark.parametrize(("call", "backend_name"), CALLS, ids=["metrics", "overview", "logs"])
async def test_a_refused_backend_is_named_without_its_url_and_the_log_has_the_detail(
    refused_server: ServerProcess, closed_port: int, call: Call, backend_name: str
) -> None:
    channel, tenant, app_id = await tenant_of(refused_server)
    async with channel:
        error = await failure(call, tenant, app_id)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert f"{backend_name} unavailable: connection refused" in (error.details() or "")
    rid = assert_plain(error, backend_name, closed_port)
    logged = logged_under(refused_server, rid)
    assert f"http://user@127.0.0.1:{closed_port}/" in logged and SECRET not in logged, logged


async def test_health_after_a_failed_tick_names_the_backend_only(
    refused_server: ServerProcess, closed_port: int
) -> None:
    channel, tenant, app_id = await tenant_of(refused_server)
    async with channel:
        request = pb.GetAppHealthRequest(workspace_id=tenant.workspace_id, app_id=app_id)
        deadline = time.monotonic() + 15
        reply = await tenant.monitoring.GetAppHealth(request, metadata=tenant.auth)
        while list(reply.reasons) == ["not evaluated yet"] and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            reply = await tenant.monitoring.GetAppHealth(request, metadata=tenant.auth)
    assert reply.status == pb.HEALTH_STATUS_UNKNOWN
    assert list(reply.reasons) == ["no data this tick: prometheus unavailable"]


@pytest.mark.parametrize(
    ("call", "backend_name", "answer"),
    [
        (metrics, "prometheus", (400, "application/json", PROMQL_ECHO)),
        (overview, "prometheus", (400, "application/json", PROMQL_ECHO)),
        (logs, "Loki", (400, "text/plain; charset=utf-8", LOGQL_ECHO)),
    ],
    ids=["metrics", "overview", "logs"],
)
async def test_an_error_body_echoing_the_query_is_not_passed_on(
    echo_server: ServerProcess, backend: Backend, call: Call, backend_name: str, answer: Answer
) -> None:
    backend.answers = {"/prom/": answer, "/loki/": answer}
    channel, tenant, app_id = await tenant_of(echo_server)
    async with channel:
        error = await failure(call, tenant, app_id)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert f"{backend_name} unavailable: it answered HTTP 400 (bad request)" in (error.details() or "")
    rid = assert_plain(error, backend_name, backend.port)
    logged = logged_under(echo_server, rid)
    assert "parse error" in logged and "workspace_id" in logged and SECRET not in logged, logged


async def test_a_wrong_shape_loki_answer_is_malformed_not_unknown(echo_server: ServerProcess, backend: Backend) -> None:
    backend.answers = {"/loki/": (200, "application/json", LOKI_WRONG_SHAPE)}
    channel, tenant, app_id = await tenant_of(echo_server)
    async with channel:
        error = await failure(logs, tenant, app_id)
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    assert "malformed response from Loki" in (error.details() or "")
    assert_plain(error, "Loki", backend.port)


async def test_loki_answering_too_slowly_hits_the_total_deadline(echo_server: ServerProcess, backend: Backend) -> None:
    # Each byte comes well within httpx's per-read timeout; only a deadline on the whole exchange stops it.
    backend.answers = {"/loki/": (200, "application/json", LOKI_WRONG_SHAPE)}
    backend.trickle_s = TIMEOUT_S / 4
    try:
        channel, tenant, app_id = await tenant_of(echo_server)
        async with channel:
            started = time.monotonic()
            error = await failure(logs, tenant, app_id)
            elapsed = time.monotonic() - started
    finally:
        backend.trickle_s = 0.0
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error.details()
    assert f"Loki did not answer within {TIMEOUT_S:g} s" in (error.details() or "")
    assert elapsed < TIMEOUT_S + 2
    assert_plain(error, "Loki", backend.port)


async def test_an_unexpected_exception_reaches_the_caller_as_internal_with_a_request_id_only() -> None:
    """A bug (or a driver error no client maps) must not hand its text to a direct gRPC caller."""
    from server.api import rpc

    class _Context:
        status: grpc.Status | None = None

        async def abort_with_status(self, status: grpc.Status) -> None:
            self.status = status
            raise grpc.aio.AbortError()

    class _Servicer:
        @rpc.unary
        async def Broken(self, request: object, context: object) -> object:
            raise RuntimeError("relation secret_table at 10.0.0.7:5432 does not exist")

    context = _Context()
    with pytest.raises(grpc.aio.AbortError):
        await _Servicer().Broken(None, context)  # type: ignore[arg-type]
    assert context.status is not None and context.status.code == grpc.StatusCode.INTERNAL
    assert context.status.details.startswith("internal error (request id ")
    assert "secret" not in context.status.details and "10.0.0.7" not in context.status.details
