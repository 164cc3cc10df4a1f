"""Conversions between store values and protobuf: nanosecond times ↔ Timestamp, documented strings ↔ enums.

The documented strings are the enums' ``(json_value)`` options, so the store, the edge and the server
agree on them by construction.
"""

from __future__ import annotations

import functools
import time
import types
from collections.abc import Mapping

from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import EnumDescriptor

from dooor.monitoring.v1 import json_pb2

NS_PER_S = 1_000_000_000


def now_ns() -> int:
    return time.time_ns()


def timestamp(ns: int | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp for ``ns``, or None (so that a message field stays unset and renders as ``null``)."""
    if ns is None:
        return None
    seconds, nanos = divmod(ns, NS_PER_S)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def set_timestamp(field: timestamp_pb2.Timestamp, ns: int) -> None:
    """Writes ``ns`` into a message's Timestamp field in place (a Timestamp handed to a message is copied)."""
    field.seconds, field.nanos = divmod(ns, NS_PER_S)


def nanoseconds(ts: timestamp_pb2.Timestamp) -> int:
    return ts.seconds * NS_PER_S + ts.nanos


@functools.cache
def _json_table(enum: EnumDescriptor) -> tuple[dict[int, str], dict[str, int]]:
    to_json = {v.number: v.GetOptions().Extensions[json_pb2.json_value] for v in enum.values if v.number}
    return to_json, {text: number for number, text in to_json.items()}


@functools.cache
def json_numbers(enum: EnumDescriptor) -> Mapping[str, int]:
    """The enum's numbers by documented string, one read-only table per enum for the process, for the hot paths
    that convert many states: a state's StrEnum member is a key too (tests/server/test_states.py keeps
    server.states equal to the proto's values)."""
    return types.MappingProxyType(_json_table(enum)[1])


def enum_to_json(enum: EnumDescriptor, number: int) -> str:
    return _json_table(enum)[0][number]


def enum_from_json(enum: EnumDescriptor, text: str) -> int:
    return _json_table(enum)[1][text]
