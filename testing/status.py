"""Reading the rich details (google.rpc.*) that the server attaches to an error status."""

from __future__ import annotations

from typing import TypeVar

import grpc
from google.protobuf import message
from grpc_status import rpc_status

M = TypeVar("M", bound=message.Message)


def detail(error: grpc.aio.AioRpcError, kind: type[M]) -> M:
    """The error's detail of type ``kind`` (each type appears at most once); AssertionError when absent."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no rich status"
    for packed in status.details:
        if packed.Is(kind.DESCRIPTOR):
            found = kind()
            packed.Unpack(found)
            return found
    raise AssertionError(f"no {kind.DESCRIPTOR.full_name} detail in {error.details()!r}")
