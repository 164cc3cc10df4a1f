"""The HTTP/1.1 protocol the edge runs under uvicorn: uvicorn's httptools protocol, one write per response.

uvicorn writes a response's status line and headers, then its body, as two ``transport.write`` calls, and
uvloop sends each at once: two TCP segments per response. On loopback the kernel work of each send (and of
waking the client twice) is charged to the edge, and it was the largest single cost of uvicorn itself:
a fixed 186-byte reply cost 0.038–0.059 ms of CPU per request with two writes, 0.011–0.015 ms with the
writes gathered (bench/bench_gateway.py, issue 14 item 3). Go's net/http, in grpc-gateway, also sends one
buffer per response.

:class:`GatheringTransport` keeps what is written during one turn of the event loop and sends it as one
write at the end of that turn (``call_soon``): the start and the body of a reply go out together, and an
SSE event still leaves in the same loop turn it was written in; a complete response leaves at once, when
uvicorn marks it complete. Everything else is the real transport's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GatheringTransport(asyncio.Transport):
    """A transport whose writes within one event-loop turn leave as one ``write`` on ``transport``."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()  # what was written before close() is still sent, as by any transport
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(data) for data in self._pending)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)


class GatheringHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`GatheringTransport` (``uvicorn.Config(http=…)``)."""

    transport: GatheringTransport

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(GatheringTransport(transport, self.loop))

    def on_response_complete(self) -> None:
        # A complete response leaves now, not at the end of the loop turn: the access log line and whatever
        # else the app does after its last send stay out of the client's wait.
        self.transport.flush()
        super().on_response_complete()
