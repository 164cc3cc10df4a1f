"""Decorators that turn domain errors raised by a handler into gRPC statuses with rich details.

A backend failure's detail (URL, query, backend body) never reaches the caller: the caller gets plain words
and a request id, and the detail is logged at WARNING under that id, so a caller's report leads to the cause.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from server.errors import Internal, ServiceError

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
        except grpc.aio.AbortError:
            raise
        except Exception as error:  # grpc.aio would send its text to the caller: an id instead, the text to the log
            await _abort(handler.__name__, _internal(error), context)
            raise

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
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await _abort(handler.__name__, _internal(error), context)

    return wrapper


def _internal(error: Exception) -> Internal:
    log.exception("unexpected error")
    return Internal(f"{type(error).__name__}: {error}")


async def _abort(method: str, error: ServiceError, context: grpc.aio.ServicerContext) -> Any:
    request_id = _log(method, error)
    await context.abort_with_status(error.to_status(request_id))


def _log(method: str, error: ServiceError) -> str | None:
    """Logs the failure; returns the request id it was logged under, for errors whose cause is hidden."""
    if not error.needs_request_id:
        log.info("%s -> %s: %s", method, error.code.name, error.message)
        return None
    # One id per failing call (errors may be shared between callers, e.g. a tail's failed connect).
    request_id = secrets.token_hex(8)
    log.warning(
        "%s -> %s (request id %s): %s; detail: %s",
        method,
        error.code.name,
        request_id,
        error.message,
        error.detail or "none",
    )
    return request_id
