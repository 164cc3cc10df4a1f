"""The backends' HTTP transport (server/backend_body.py) maps aiohttp's failures to httpx's, on real sockets.

httpx-aiohttp alone reports a server that closes the connection as ``ConnectTimeout`` (a deadline, in our plain
words) and lets other aiohttp errors through unmapped; and aiohttp refuses a URL with credentials once httpx has
put them in the Authorization header. Each test runs a tiny HTTP/1.1 server on 127.0.0.1 that misbehaves in one
way, and checks both the httpx error and what the Prometheus client makes of it.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from server.backend_body import Transport, http_client
from server.errors import DeadlineExceeded, ServiceError, Unavailable
from server.metrics.prometheus import PrometheusClient

pytestmark = pytest.mark.timeout(30)

ENVELOPE = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
SECRET = "s3cr3t-pw"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Backend:
    """One loopback HTTP server whose ``handler`` answers (or not) each connection; remembers request heads."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.heads: list[bytes] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            lengths = [int(line[15:]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
            await reader.readexactly(sum(lengths))
            await self._handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away first: what some tests cause on purpose
        finally:
            writer.close()


async def closes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the request and closes the connection without a byte of answer."""


async def half_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Announces the whole envelope, sends half of it, closes."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(ENVELOPE))
    writer.write(ENVELOPE[: len(ENVELOPE) // 2])
    await writer.drain()


async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Keeps the connection open and silent until the client leaves."""
    await reader.read()


async def stalls_in_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Sends the head and a few bytes of the body, then nothing until the client leaves."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(ENVELOPE))
    writer.write(ENVELOPE[:10])
    await writer.drain()
    await reader.read()


async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(ENVELOPE))
    writer.write(ENVELOPE)
    await writer.drain()


async def sets_a_cookie(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nSet-Cookie: session=abc; Path=/\r\nContent-Length: %d\r\n\r\n"
        % len(ENVELOPE)
    )
    writer.write(head + ENVELOPE)
    await writer.drain()


@pytest.fixture
async def serving(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    backend = Backend(request.param)
    await backend.start()
    yield backend
    await backend.close()


def refused_port() -> int:
    """A loopback port that nobody listens on: bound, then closed, so connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def post(url: str, timeout_s: float = 5.0) -> httpx.Response:
    client = http_client(url, timeout_s, 4)
    try:
        response = await client.post("/api/v1/query", data={"query": "up"})
        await response.aread()
        return response
    finally:
        await client.aclose()


async def prometheus_error(url: str, timeout_s: float = 5.0) -> ServiceError:
    client = PrometheusClient(url, timeout_s)
    try:
        with pytest.raises(ServiceError) as caught:
            await client.query("up")
        return caught.value
    finally:
        await client.close()


def chain(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None:
        found.append(seen)
        seen = seen.__cause__ or seen.__context__
    return found


@pytest.mark.parametrize("serving", [closes], indirect=True)
async def test_a_connection_closed_before_the_answer_is_a_protocol_error_not_a_deadline(serving: Backend) -> None:
    url = f"http://127.0.0.1:{serving.port}"
    with pytest.raises(httpx.RemoteProtocolError):
        await post(url)
    error = await prometheus_error(url)
    assert isinstance(error, Unavailable) and not isinstance(error, DeadlineExceeded)
    assert error.message == "prometheus unavailable: connection closed without a complete answer"


@pytest.mark.parametrize("serving", [half_body], indirect=True)
async def test_a_body_cut_short_is_a_protocol_error(serving: Backend) -> None:
    url = f"http://127.0.0.1:{serving.port}"
    with pytest.raises(httpx.RemoteProtocolError):
        await post(url)
    error = await prometheus_error(url)
    assert isinstance(error, Unavailable)
    assert error.message == "prometheus unavailable: connection closed without a complete answer"


async def test_a_refused_connection_is_a_connect_error_in_plain_words() -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    with pytest.raises(httpx.ConnectError) as caught:
        await post(url)
    assert any(isinstance(link, ConnectionRefusedError) for link in chain(caught.value))
    error = await prometheus_error(url)
    assert isinstance(error, Unavailable)
    assert error.message == "prometheus unavailable: connection refused"


@pytest.mark.parametrize("serving", [never_answers, stalls_in_body], indirect=True)
async def test_a_silent_backend_is_a_read_timeout_and_a_deadline(serving: Backend) -> None:
    url = f"http://127.0.0.1:{serving.port}"
    with pytest.raises(httpx.ReadTimeout):
        await post(url, timeout_s=0.3)
    error = await prometheus_error(url, timeout_s=0.3)
    assert isinstance(error, DeadlineExceeded)
    assert error.message == "prometheus did not answer within 0.3 s"


@pytest.mark.parametrize("serving", [answers], indirect=True)
async def test_credentials_in_the_url_go_only_in_the_authorization_header(serving: Backend) -> None:
    response = await post(f"http://monitor:{SECRET}@127.0.0.1:{serving.port}")
    assert response.status_code == 200 and response.content == ENVELOPE
    [head] = serving.heads
    expected = base64.b64encode(f"monitor:{SECRET}".encode()).decode()
    assert f"\r\nauthorization: Basic {expected}\r\n".encode() in head
    assert head.startswith(b"POST /api/v1/query HTTP/1.1\r\n")
    assert SECRET.encode() not in head.replace(expected.encode(), b"")


@pytest.mark.parametrize("serving", [answers], indirect=True)
async def test_the_prometheus_client_sends_url_credentials_as_basic_auth(serving: Backend) -> None:
    client = PrometheusClient(f"http://monitor:{SECRET}@127.0.0.1:{serving.port}", 5.0)
    try:
        assert await client.query("up") == []
    finally:
        await client.close()
    [head] = serving.heads
    expected = base64.b64encode(f"monitor:{SECRET}".encode()).decode()
    assert head.startswith(b"POST /api/v1/query HTTP/1.1\r\n")
    assert f"\r\nauthorization: Basic {expected}\r\n".encode() in head
    # The client's own headers, on the request the Prometheus client builds itself.
    assert b"\r\ncontent-type: application/x-www-form-urlencoded\r\n" in head.lower()
    assert b"\r\naccept-encoding: identity\r\n" in head.lower()


async def test_no_error_repeats_the_password_in_the_url() -> None:
    url = f"http://monitor:{SECRET}@127.0.0.1:{refused_port()}"
    with pytest.raises(httpx.ConnectError) as caught:
        await post(url)
    assert all(SECRET not in str(link) for link in chain(caught.value))
    error = await prometheus_error(url)
    assert error.message == "prometheus unavailable: connection refused"
    assert SECRET not in error.message and SECRET not in error.detail
    assert "monitor@127.0.0.1" in error.detail  # the user stays: it tells which credentials were used


@pytest.mark.parametrize("serving", [answers], indirect=True)
async def test_the_prometheus_client_goes_through_the_proxy_the_environment_names(
    serving: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{serving.port}")
    client = PrometheusClient("http://prometheus.invalid:9090", 5.0)  # a name that resolves nowhere
    try:
        assert await client.query("up") == []
    finally:
        await client.close()
    [head] = serving.heads
    assert head.startswith(b"POST http://prometheus.invalid:9090/api/v1/query HTTP/1.1\r\n")


def test_direct_and_proxied_pools_are_both_the_mapping_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx builds one pool per proxy it finds in the environment, beside the direct one.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    client = http_client("http://127.0.0.1:9", 1.0, 4)
    pools = [client._transport, *(pool for pool in client._mounts.values() if pool is not None)]
    assert len(pools) == 2 and all(type(pool) is Transport for pool in pools)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])  # aiohttp's own jar keeps a named host's cookies
@pytest.mark.parametrize("serving", [sets_a_cookie], indirect=True)
async def test_cookies_a_backend_sets_are_not_sent_back(serving: Backend, host: str) -> None:
    if "127.0.0.1" not in {info[4][0] for info in socket.getaddrinfo(host, serving.port)}:
        pytest.skip(f"{host} does not resolve to 127.0.0.1 here, where the backend listens")
    client = http_client(f"http://{host}:{serving.port}", 5.0, 4)
    try:
        for _ in range(2):
            assert (await client.post("/api/v1/query", data={"query": "up"})).status_code == 200
    finally:
        await client.aclose()
    assert len(serving.heads) == 2 and b"\r\ncookie:" not in serving.heads[1].lower()
