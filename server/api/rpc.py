"""Decorators that turn domain errors raised by a handler into gRPC statuses with rich details."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from server.errors import ServiceError

log = logging.getLogger("server.api.rpc")

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Self = TypeVar("Self")


def unary(
    handler: Callable[[Self, Req, grpc.aio.ServicerContext], Awaitable[Resp]],
) -> Callable[[Self, Req, grpc.aio.ServicerContext], Awaitable[Resp]]:
    @functools.wraps(handler)
    async def wrapper(self: Self, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            return await handler(self, request, context)
        except ServiceError as error:
            await _abort(handler.__name__, error, context)
            raise  # unreachable: abort raises

    return wrapper


def stream(
    handler: Callable[[Self, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]],
) -> Callable[[Self, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]]:
    @functools.wraps(handler)
    async def wrapper(self: Self, request: Req, context: grpc.aio.ServicerContext) -> AsyncIterator[Resp]:
        try:
            async for message in handler(self, request, context):
                yield message
        except ServiceError as error:
            await _abort(handler.__name__, error, context)

    return wrapper


async def _abort(method: str, error: ServiceError, context: grpc.aio.ServicerContext) -> Any:
    log.info("%s -> %s: %s", method, error.code.name, error.message)
    await context.abort_with_status(error.to_status())
