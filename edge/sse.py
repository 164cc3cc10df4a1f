"""Server-Sent Events: framing (pure, no I/O) and the lifecycle of one stream (I/O, heartbeats, cancel).

Framing reads the stream's JSON rule from the descriptors: the member of the response's ``oneof`` that
is set picks the event type by its ``(sse_event)`` (``message`` lines are sent without ``event:``, as
``EventSource.onmessage`` expects) and becomes the ``data:``; the ``(sse_id)`` field becomes ``id:``.
A response type without those options is sent whole as a ``message`` event. ``data`` is compact JSON
and therefore always one line.

Lifecycle: ``retry:`` and a comment go out right after the headers (idle proxies see bytes at once);
a ``: keepalive`` comment follows every ``heartbeat_s`` of silence; an upstream error after the 200 is
an ``event: error`` whose data is the same error body a non-stream request gets, then the stream ends;
a client that goes away cancels the gRPC call at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from typing import Any

import grpc
from google.protobuf import descriptor
from google.protobuf.message import Message
from starlette.types import Receive, Send

import jsonmap
from edge.errors import ApiError, from_rpc_error

log = logging.getLogger("edge.sse")


HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]


# -- framing -----------------------------------------------------------------------------------------


def _clean(value: str) -> str | None:
    """A value safe on one SSE line (``id`` and ``event`` must not break the framing), else ``None``."""
    return None if any(c in value for c in "\r\n\0") else value


def frame(data: bytes, *, event: str | None = None, id: str | None = None) -> bytes:
    """One event. ``data`` must be a single line (compact JSON is)."""
    lines = []
    if id is not None and (clean := _clean(id)) is not None:
        lines.append(b"id: " + clean.encode())
    if event and event != "message" and (clean := _clean(event)) is not None:
        lines.append(b"event: " + clean.encode())
    lines.append(b"data: " + data)
    return b"\n".join(lines) + b"\n\n"


def comment(text: str) -> bytes:
    return b": " + text.replace("\n", " ").replace("\r", " ").encode() + b"\n\n"


def retry(ms: int) -> bytes:
    return f"retry: {ms}\n".encode()


def error_frame(error: ApiError) -> bytes:
    return frame(error.body(), event="error")


@dataclasses.dataclass(frozen=True)
class _Plan:
    id_field: str | None
    members: tuple[tuple[str, str], ...]  # (oneof member name, event type)


@functools.cache
def _plan(message: descriptor.Descriptor) -> _Plan:
    id_field = next((f.name for f in message.fields if jsonmap.is_sse_id(f)), None)
    members = tuple((f.name, e) for f in message.fields if (e := jsonmap.sse_event(f)) is not None)
    return _Plan(id_field, members)


def encode(message: Message) -> bytes:
    """The SSE frame for one streamed response message."""
    plan = _plan(message.DESCRIPTOR)
    cursor = getattr(message, plan.id_field) if plan.id_field else None
    for name, event in plan.members:
        if message.HasField(name):
            return frame(jsonmap.dumps(jsonmap.to_json(getattr(message, name))), event=event, id=cursor or None)
    if plan.members:  # nothing set: no event to dispatch, but an id-only block still moves Last-Event-ID
        clean = _clean(cursor or "")
        return b"id: " + clean.encode() + b"\n\n" if clean else b""
    return frame(jsonmap.dumps(jsonmap.to_json(message)), id=cursor or None)


# -- lifecycle ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    heartbeat_s: float
    retry_ms: int
    accept_wait_s: float
    upstream: str
    max_reply_bytes: int


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def accept(call: grpc.aio.UnaryStreamCall, settings: Settings) -> asyncio.Task[Any]:
    """Waits briefly for the upstream to accept or refuse the stream. Refusal → ApiError (a real status).

    Returns the pending (or finished) task reading the first message, for ``run`` to continue with.
    """
    first: asyncio.Task[Any] = asyncio.ensure_future(call.read())
    headers = asyncio.ensure_future(call.initial_metadata())
    try:
        await asyncio.wait({first, headers}, timeout=settings.accept_wait_s, return_when=asyncio.FIRST_COMPLETED)
        if not first.done() and call.done():
            # A trailers-only refusal resolves the (empty) headers too; the read holds the status.
            await asyncio.wait({first}, timeout=settings.accept_wait_s)
    finally:
        headers.cancel()
        with contextlib.suppress(BaseException):
            await headers
    refusal = first.exception() if first.done() else None
    if isinstance(refusal, grpc.aio.AioRpcError):
        raise from_rpc_error(refusal, settings.upstream, settings.max_reply_bytes)
    return first


async def run(
    call: grpc.aio.UnaryStreamCall, first: asyncio.Task[Any], send: Send, receive: Receive, settings: Settings
) -> None:
    """Sends the 200 and the events until the stream ends, fails, or the client leaves."""
    gone = asyncio.ensure_future(_disconnected(receive))
    reading = first
    try:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await _body(send, retry(settings.retry_ms) + comment("connected"))
        while True:
            done, _ = await asyncio.wait(
                {reading, gone}, timeout=settings.heartbeat_s, return_when=asyncio.FIRST_COMPLETED
            )
            if gone in done:
                log.debug("client went away; cancelling the upstream stream")
                return
            if not done:
                await _body(send, comment("keepalive"))
                continue
            chunk, more = _next_chunk(reading, settings)
            if chunk:
                await _body(send, chunk)
            if not more:
                return
            reading = asyncio.ensure_future(call.read())
    finally:
        call.cancel()
        for task in (reading, gone):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _next_chunk(reading: asyncio.Task[Any], settings: Settings) -> tuple[bytes, bool]:
    """The bytes for a finished read, and whether the stream goes on."""
    error = reading.exception()
    if isinstance(error, grpc.aio.AioRpcError):
        api_error = from_rpc_error(error, settings.upstream, settings.max_reply_bytes)
        log.info("stream ended upstream with %s: %s", api_error.code.name, api_error.message)
        return error_frame(api_error), False
    try:
        if error is not None:
            raise error
        message = reading.result()
        return (b"", False) if message is grpc.aio.EOF else (encode(message), True)
    except Exception:
        # A bug, after the 200: the trace goes to the log, the client gets an in-band error and the end.
        log.exception("stream failed in the edge")
        return error_frame(ApiError(grpc.StatusCode.INTERNAL, "internal error in the REST edge")), False


async def _body(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})
