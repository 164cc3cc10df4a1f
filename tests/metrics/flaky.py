"""A small HTTP server on 127.0.0.1 standing between a client and the real Prometheus.

Mode "proxy" forwards each request faithfully; other modes misbehave in one chosen way (canned answers,
"slow", "reset"); ``stop()`` closes the listening socket, so connections are refused as with Prometheus down.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from testing.procs import free_port

# Prometheus 2.42's real answer to a query_range over more than 11,000 points.
TOO_MANY_POINTS = (
    b'{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per'
    b' timeseries. Try decreasing the query resolution (?step=XX)"}'
)

# mode → (status, content type, body) served instead of Prometheus's answer; tests may add their own.
CANNED: dict[str, tuple[int, str, bytes]] = {
    "not_ready": (503, "text/plain; charset=utf-8", b"Service Unavailable"),
    "html": (200, "text/html", b"<html><body>502 Bad Gateway</body></html>"),
    "not_an_envelope": (200, "application/json", b'{"hello": "world"}'),
    "truncated": (200, "application/json", b'{"status":"success","data":{"resultType":"matrix","result":[{"metr'),
    "wrong_shape": (
        200,
        "application/json",
        b'{"status":"success","data":{"resultType":"matrix","result":[{"values":"x"}]}}',
    ),
    "bad_data": (400, "application/json", TOO_MANY_POINTS),
    "internal": (500, "application/json", b'{"status":"error","errorType":"internal","error":"disk on fire"}'),
    "query_timeout": (
        503,
        "application/json",
        b'{"status":"error","errorType":"timeout","error":"query timed out in query queue"}',
    ),
}


class Flaky:
    """Forwards to Prometheus (mode "proxy"), or misbehaves: canned answers, "slow", "reset", "down"."""

    def __init__(self, upstream: str, *, slow_s: float):
        self.slow_s = slow_s  # how long "slow" holds each request before answering
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = "proxy"
        self._upstream = httpx.AsyncClient(base_url=upstream, timeout=10)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def in_flight(self) -> int:
        """Requests received and not yet answered."""
        return sum(not handler.done() for handler in self._handlers)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Closes the listening socket: new connections are refused, as with Prometheus down."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def close(self) -> None:
        await self.stop()
        for handler in self._handlers:  # "slow" answers still sleeping
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._upstream.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
            body = await reader.readexactly(length)
            mode = self.mode
            if mode == "reset":
                writer.transport.abort()
                return
            if mode == "slow":
                await asyncio.sleep(self.slow_s)
            if mode in CANNED:
                status, kind, payload = CANNED[mode]
            else:
                answer = await self._upstream.request(
                    method, path, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
                )
                status, kind, payload = answer.status_code, answer.headers["content-type"], answer.content
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        writer.close()
