"""Request validation: ids, enums and limits. Everything that can reach PromQL or LogQL passes here first."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar

from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import EnumDescriptor

from dooor.monitoring.v1 import json_pb2
from server.convert import NS_PER_S, nanoseconds
from server.errors import InvalidArgument

# Letters, digits, '_' and '-', starting with a letter or digit, at most 64 characters. No quotes,
# backslashes, braces or whitespace, so an id can never change the shape of a query.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
ID_RULE = "1 to 64 characters from A-Z a-z 0-9 _ -, starting with a letter or digit"

E = TypeVar("E", bound=int)


def require_id(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    if not ID_PATTERN.fullmatch(value):
        raise InvalidArgument(field, f"{value[:80]!r} is not a valid id ({ID_RULE})")
    return value


def optional_id(field: str, value: str) -> str:
    return require_id(field, value) if value else value


def json_values(enum: EnumDescriptor) -> list[str]:
    """The documented strings of an enum's values, in declaration order, without the zero value."""
    return [v.GetOptions().Extensions[json_pb2.json_value] for v in enum.values if v.number != 0]


def require_enum(field: str, value: int, enum: EnumDescriptor, *, default: int | None = None) -> int:
    """Checks a (possibly unknown) enum number; the zero value becomes ``default`` when given."""
    if value == 0 and default is not None:
        return default
    if value == 0 or enum.values_by_number.get(value) is None:
        raise InvalidArgument(field, f"unknown value {value}", allowed=json_values(enum))
    return value


def optional_enum(field: str, value: int, enum: EnumDescriptor) -> int:
    """Like :func:`require_enum`, but 0 (unspecified) stays 0: 'no filter'."""
    return value if value == 0 else require_enum(field, value, enum)


def limit(field: str, value: int, *, default: int, maximum: int) -> int:
    if value < 0:
        raise InvalidArgument(field, f"must be between 1 and {maximum}, got {value}")
    if value > maximum:
        raise InvalidArgument(field, f"must be at most {maximum}, got {value}")
    return value or default


def one_of(field: str, value: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    if value not in allowed:
        raise InvalidArgument(field, f"unknown value {value!r}", allowed=allowed)
    return value


_MAX_SECONDS = 9_223_372_035  # 2262-04-11T23:47:15Z: nanoseconds since the epoch fit in a signed 64-bit int


def timestamp_ns(field: str, value: timestamp_pb2.Timestamp) -> int:
    """A request's Timestamp as integer nanoseconds since the epoch, checked to fit where they are stored."""
    if not 0 <= value.nanos < NS_PER_S:
        raise InvalidArgument(field, f"nanos must be between 0 and 999999999, got {value.nanos}")
    if not 0 <= value.seconds <= _MAX_SECONDS:
        raise InvalidArgument(field, "must be between 1970-01-01T00:00:00Z and 2262-04-11T23:47:15Z")
    return nanoseconds(value)


def max_length(field: str, value: str, maximum: int) -> str:
    """``value`` when it has at most ``maximum`` characters, else InvalidArgument naming ``field``."""
    if len(value) > maximum:
        raise InvalidArgument(field, f"must be at most {maximum} characters, got {len(value)}")
    return value


def enum_list(field: str, values: Iterable[int], enum: EnumDescriptor) -> list[int]:
    """Known, non-zero enum numbers without repeats, in the order given."""
    checked: list[int] = []
    for value in values:
        require_enum(field, value, enum)
        if value in checked:
            name = enum.values_by_number[value].GetOptions().Extensions[json_pb2.json_value]
            raise InvalidArgument(field, f"{name!r} is listed twice; list each value once")
        checked.append(value)
    return checked
