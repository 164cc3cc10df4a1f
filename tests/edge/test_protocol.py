"""One write per response: what is written in one event-loop turn reaches the socket as one write."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from edge.protocol import GatheringHttpToolsProtocol, GatheringTransport


class RecordingTransport(asyncio.Transport):
    """The real transport's side: records each write and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0


async def _next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_the_start_and_the_body_of_a_response_leave_as_one_write() -> None:
    real = RecordingTransport()
    gathering = GatheringTransport(real, asyncio.get_running_loop())
    gathering.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    gathering.write(memoryview(b"{}"))
    assert real.writes == []
    assert gathering.get_write_buffer_size() == 40
    await _next_turn()
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


async def test_each_turn_sends_what_it_wrote_so_a_stream_event_is_not_held_back() -> None:
    real = RecordingTransport()
    gathering = GatheringTransport(real, asyncio.get_running_loop())
    gathering.write(b"data: 1\n\n")
    await _next_turn()
    gathering.write(b"data: 2\n\n")
    await _next_turn()
    assert real.writes == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_close_sends_what_was_written_first_and_nothing_goes_to_a_closed_transport() -> None:
    real = RecordingTransport()
    gathering = GatheringTransport(real, asyncio.get_running_loop())
    gathering.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    gathering.close()
    assert real.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and real.closed
    gathering.write(b"late")
    await _next_turn()
    assert real.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"]
    assert gathering.is_closing() and gathering.get_extra_info("peername") == ("127.0.0.1", 5)


async def test_a_bytearray_is_copied_when_written_as_a_transport_must() -> None:
    real = RecordingTransport()
    gathering = GatheringTransport(real, asyncio.get_running_loop())
    buffer = bytearray(b"abc")
    gathering.write(buffer)
    buffer[:] = b"xyz"
    await _next_turn()
    assert real.writes == [b"abc"]


async def test_uvicorn_answers_a_request_with_one_write_sent_before_the_app_returns() -> None:
    real = RecordingTransport()
    written_when_the_app_returned: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})
        written_when_the_app_returned.append(len(real.writes))  # where the edge writes its access log line

    config = uvicorn.Config(app, http=GatheringHttpToolsProtocol, lifespan="off", log_config=None)
    config.load()
    protocol = GatheringHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(real)
    protocol.data_received(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n")
    for _ in range(10):
        await asyncio.sleep(0)
    assert written_when_the_app_returned == [1]
    assert len(real.writes) == 1
    assert real.writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and real.writes[0].endswith(b"\r\n\r\n{}")
