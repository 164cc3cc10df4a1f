"""Answers from Prometheus and Loki are read up to a byte cap, never whole into memory.

A tiny HTTP/1.1 server on 127.0.0.1 answers valid JSON padded to any size: streamed until the connection ends,
announced by a Content-Length, or gzipped to a few KiB on the wire. The caps are lowered to 1 MiB so the tests
stay fast; over it, a call fails UNAVAILABLE in plain words and the server sees its writes cut off.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from server.errors import Unavailable
from server.logs import loki
from server.metrics import prometheus
from testing.procs import free_port

pytestmark = pytest.mark.timeout(60)

CAP = 2**20
CHUNK = 64 * 2**10
HUGE = 64 * 2**20  # what a runaway backend sends: 64 times the (lowered) cap
TIMEOUT_S = 10.0


@dataclasses.dataclass
class Served:
    """What the server wrote of one answer's body, and whether it has finished with the connection."""

    sent: int = 0
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class Backend:
    """Answers every request with ``size`` bytes of a valid success envelope, in the way ``mode`` says.

    ``stream``: no Content-Length, the body until the connection closes, written in 64 KiB chunks.
    ``length``: a Content-Length first; the body only if the client is still there a few seconds later.
    ``gzip``: the whole body gzipped (a few KiB on the wire), with its compressed Content-Length.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "stream"
        self.size = 0
        self.served: list[Served] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = Served()
        self.served.append(served)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":")[1]))
            kind = b"streams" if b"/loki/" in head.split(b"\r\n")[0] else b"vector"
            prefix = b'{"status":"success","data":{"resultType":"' + kind + b'","result":[]},"pad":"'
            suffix = b'"}'
            pad = self.size - len(prefix) - len(suffix)
            status = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            if self.mode == "gzip":
                body = gzip.compress(prefix + b" " * pad + suffix)
                writer.write(status + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
                served.sent = len(body)
                return
            if self.mode == "length":
                writer.write(status + b"Content-Length: %d\r\n\r\n" % self.size)
                await writer.drain()
                try:  # a client that refuses the length closes now; one that waits for the body gets it
                    if await asyncio.wait_for(reader.read(1), 3.0) == b"":
                        return
                except TimeoutError:
                    pass
            else:
                writer.write(status + b"\r\n")
            await self._write(writer, served, prefix)
            blank = b" " * CHUNK
            while pad > 0:
                await self._write(writer, served, blank[: min(pad, CHUNK)])
                pad -= CHUNK
            await self._write(writer, served, suffix)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            served.done.set()

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, served: Served, data: bytes) -> None:
        if writer.transport.is_closing():
            raise ConnectionResetError
        writer.write(data)
        await writer.drain()
        served.sent += len(data)


@pytest.fixture
async def backend(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Backend]:
    monkeypatch.setattr(prometheus, "MAX_RESPONSE_BYTES", CAP)
    monkeypatch.setattr(loki, "MAX_RESPONSE_BYTES", CAP)
    server = Backend()
    await server.start()
    yield server
    await server.close()


Call = Callable[[Backend], Awaitable[list[object]]]


async def ask_prometheus(backend: Backend) -> list[object]:
    client = prometheus.PrometheusClient(f"http://127.0.0.1:{backend.port}/prom", TIMEOUT_S)
    try:
        return list(await client.query("up"))
    finally:
        await client.close()


async def ask_loki(backend: Backend) -> list[object]:
    client = loki.LokiClient(f"http://127.0.0.1:{backend.port}/loki", timeout_s=TIMEOUT_S)
    try:
        return list(
            await client.query_range('{app="a"}', start_ns=10**18, end_ns=10**18 + 10**9, limit=10, forward=False)
        )
    finally:
        await client.close()


CLIENTS = [
    pytest.param(ask_prometheus, "prometheus unavailable: the answer is larger than 1 MiB", id="prometheus"),
    pytest.param(ask_loki, "Loki unavailable: the answer is larger than 1 MiB; ask for fewer lines", id="loki"),
]


async def refused(call: Call, backend: Backend, message: str) -> Unavailable:
    with pytest.raises(Unavailable) as caught:
        await call(backend)
    error = caught.value
    assert error.message == message
    assert error.to_status().code == grpc.StatusCode.UNAVAILABLE
    assert "127.0.0.1" not in error.message and str(backend.port) not in error.message
    assert error.detail  # the log learns what was refused
    return error


@pytest.mark.parametrize(("call", "message"), CLIENTS)
async def test_a_body_under_the_cap_is_read(backend: Backend, call: Call, message: str) -> None:
    backend.size = CAP - 1024
    assert await call(backend) == []
    backend.mode = "gzip"
    assert await call(backend) == []


@pytest.mark.parametrize(("call", "message"), CLIENTS)
async def test_a_streamed_body_over_the_cap_is_cut_off(backend: Backend, call: Call, message: str) -> None:
    backend.size = HUGE
    await refused(call, backend, message)
    [served] = backend.served
    await asyncio.wait_for(served.done.wait(), 10)
    # The client stopped reading near the cap: what the server got out is the cap plus the sockets' buffers.
    assert served.sent < HUGE // 4


@pytest.mark.parametrize(("call", "message"), CLIENTS)
async def test_a_content_length_over_the_cap_is_refused_before_the_body(
    backend: Backend, call: Call, message: str
) -> None:
    backend.mode, backend.size = "length", HUGE
    started = time.monotonic()
    error = await refused(call, backend, message)
    assert time.monotonic() - started < 2.5  # not waiting for the body the server holds back for 3 s
    assert f"Content-Length {HUGE}" in error.detail
    [served] = backend.served
    await asyncio.wait_for(served.done.wait(), 10)
    assert served.sent == 0


@pytest.mark.parametrize(("call", "message"), CLIENTS)
async def test_a_gzipped_body_is_capped_by_its_decoded_size(backend: Backend, call: Call, message: str) -> None:
    backend.mode, backend.size = "gzip", HUGE
    await refused(call, backend, message)
    assert backend.served[0].sent < CAP  # small on the wire: only the decoded count can catch it
