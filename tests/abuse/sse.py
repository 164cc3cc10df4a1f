"""A small Server-Sent Events reader for the abuse suite: a stream opened through the edge, read event by event."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx


@dataclasses.dataclass(frozen=True)
class Event:
    """One SSE event: ``kind`` is its ``event:`` field (``message`` when absent), ``data`` its JSON."""

    kind: str
    data: Any
    id: str | None


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """The response's events in order; comment lines (heartbeats) are skipped."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield Event(fields.get("event", "message"), json.loads(fields["data"]), fields.get("id"))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


@contextlib.asynccontextmanager
async def opened(
    client: httpx.AsyncClient, path: str, key: str, *, last_event_id: str | None = None
) -> AsyncIterator[httpx.Response]:
    """The stream's response once its headers arrived (an error answer is returned as it is, not raised)."""
    headers = {"authorization": f"Bearer {key}"}
    if last_event_id is not None:
        headers["last-event-id"] = last_event_id
    request = client.build_request("GET", path, headers=headers)
    response = await asyncio.wait_for(client.send(request, stream=True), 15)
    try:
        yield response
    finally:
        await response.aclose()


async def next_event(stream: AsyncIterator[Event], within: float = 10.0) -> Event:
    return await asyncio.wait_for(anext(stream), within)
