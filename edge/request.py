"""Path variables, query parameters, headers and body → the request message of a route.

Names: a query parameter is a leaf field's ``json_name`` or proto name, dotted for nested messages
(``pageToken`` or ``page_token``). Values: enums by their ``(json_value)``, RFC 3339 timestamps, ``true``
/ ``false``, decimal integers within the field's range, finite floats. A field declared with
``(from_header)`` is also read from that header when the query does not give it. Every problem — an
unknown parameter, a malformed value, a repeated singular parameter, a parameter that the path
already sets — is an INVALID_ARGUMENT naming the parameter and saying what is allowed.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import dataclasses
import functools
import json
import math
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import descriptor, json_format, message_factory, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor as FD
from google.protobuf.message import Message

import jsonmap
from edge.errors import ApiError, invalid_argument
from edge.routes import Route

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
# What a `+hh:mm` offset becomes when the `+` was not percent-encoded: a space.
_PLUS_AS_SPACE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})? \d{2}:\d{2}")
_INTEGER = re.compile(r"[+-]?\d{1,20}")
_INT_RANGES = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}


class _BadValue(ValueError):
    """A value that does not parse; the message says what was expected."""


# -- scalar values -----------------------------------------------------------------------------------


def parse_timestamp(text: str) -> timestamp_pb2.Timestamp:
    m = _RFC3339.fullmatch(text)
    if m is None:
        if _PLUS_AS_SPACE.fullmatch(text):
            raise _BadValue(
                f"{text!r} has a space where its UTC offset's '+' was: in a query string '+' means a space, "
                "so encode it as %2B (or use Z)"
            )
        raise _BadValue(f"expected an RFC 3339 timestamp such as 2025-01-20T14:30:00Z, got {text!r}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = m.groups()
    fields = tuple(int(x) for x in (year, month, day, hour, minute, second))
    # Checked here because timegm would silently normalise them (Feb 31 → Mar 3); second 60 is a leap second.
    valid_date = (
        fields[0] >= 1  # year 0 does not exist (a Timestamp starts at 0001-01-01)
        and 1 <= fields[1] <= 12
        and 1 <= fields[2] <= calendar.monthrange(fields[0], fields[1])[1]
    )
    valid_offset = zulu or (int(off_h) <= 23 and int(off_m) <= 59)
    if not (valid_date and valid_offset and fields[3] <= 23 and fields[4] <= 59 and fields[5] <= 60):
        raise _BadValue(
            f"{text!r} is not a valid date and time; expected an RFC 3339 timestamp such as 2025-01-20T14:30:00Z"
        )
    seconds = calendar.timegm((*fields, 0, 0, 0))
    if not zulu:
        offset = (int(off_h) * 60 + int(off_m)) * 60
        seconds -= offset if sign == "+" else -offset
    nanos = int((fraction or "").ljust(9, "0"))
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _parse_int(field: FD, text: str) -> int:
    low, high = _INT_RANGES[field.type]
    if not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
        raise _BadValue(f"expected an integer from {low} to {high}, got {text!r}")
    return int(text)


def _parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _BadValue(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise _BadValue(f"expected a finite number, got {text!r}")
    return value


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise _BadValue(f"expected true or false, got {text!r}")
    return lowered == "true"


def _parse_enum(field: FD, text: str) -> int:
    numbers = jsonmap.enum_numbers(field.enum_type)
    if text not in numbers:
        raise _BadValue(f"{text!r} is not one of the allowed values: {', '.join(numbers)}")
    return numbers[text]


def _parse_bytes(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _BadValue("expected base64") from None


def _parse_scalar(field: FD, text: str) -> Any:
    if field.type == FD.TYPE_STRING:
        return text
    if text == "":
        raise _BadValue("the value is empty")
    if field.type == FD.TYPE_ENUM:
        return _parse_enum(field, text)
    if field.type == FD.TYPE_BOOL:
        return _parse_bool(text)
    if field.type in _INT_RANGES:
        return _parse_int(field, text)
    if field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return _parse_float(text)
    if field.type == FD.TYPE_BYTES:
        return _parse_bytes(text)
    if field.message_type.full_name == jsonmap.TIMESTAMP:
        return parse_timestamp(text)
    message = _message_class(field.message_type)()
    try:  # the other well-known types take their ProtoJSON string form, e.g. a Duration "90s"
        json_format.Parse(json.dumps(text), message)
    except json_format.ParseError as error:
        raise _BadValue(str(error)) from None
    return message


@functools.cache
def _message_class(message: descriptor.Descriptor) -> type[Message]:
    cls: type[Message] = message_factory.GetMessageClass(message)
    return cls


# -- which names address which fields ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class QueryField:
    """A request field that the query string may set."""

    name: str  # the documented (json) name, dotted
    path: tuple[FD, ...]

    @property
    def leaf(self) -> FD:
        return self.path[-1]

    @property
    def repeated(self) -> bool:
        return bool(self.leaf.is_repeated)


def _queryable(field: FD) -> bool:
    if field.message_type is None:
        return True
    return field.message_type.full_name.startswith("google.protobuf.") and not field.message_type.GetOptions().map_entry


def _walk(message: descriptor.Descriptor, prefix: tuple[FD, ...], depth: int) -> Iterable[tuple[FD, ...]]:
    for field in message.fields:
        path = (*prefix, field)
        if _queryable(field):
            yield path
        elif not field.is_repeated and depth < 8:  # dotted names into nested messages
            yield from _walk(field.message_type, path, depth + 1)


@functools.cache
def query_fields(message: descriptor.Descriptor, bound: frozenset[tuple[str, ...]]) -> dict[str, QueryField]:
    """Name (json and proto spellings) → field, for every leaf the query may set; ``bound`` are path-set."""
    names: dict[str, QueryField] = {}
    for path in _walk(message, (), 0):
        proto_path = tuple(f.name for f in path)
        if any(proto_path[:depth] in bound for depth in range(1, len(proto_path) + 1)):
            continue
        qf = QueryField(".".join(jsonmap.json_name(f) for f in path), path)
        names[qf.name] = qf
        names.setdefault(".".join(proto_path), qf)
    return names


def documented_query_fields(message: descriptor.Descriptor, bound: frozenset[tuple[str, ...]]) -> list[QueryField]:
    """One entry per field (the json spelling), in declaration order: for OpenAPI and error messages."""
    seen: dict[str, QueryField] = {}
    for qf in query_fields(message, bound).values():
        seen.setdefault(qf.name, qf)
    return list(seen.values())


# -- assembling the message ------------------------------------------------------------------------------


def _set(message: Message, path: tuple[FD, ...], value: Any) -> None:
    for field in path[:-1]:
        message = getattr(message, field.name)
    leaf = path[-1]
    if leaf.is_repeated and isinstance(value, Message):
        getattr(message, leaf.name).add().CopyFrom(value)
    elif leaf.is_repeated:
        getattr(message, leaf.name).append(value)
    elif isinstance(value, Message):
        getattr(message, leaf.name).CopyFrom(value)
    else:
        setattr(message, leaf.name, value)


@functools.cache
def field_path(message: descriptor.Descriptor, names: tuple[str, ...]) -> tuple[FD, ...]:
    """The fields that ``names`` (a dotted path, split) walks through from ``message``, leaf last."""
    path = []
    for name in names:
        field = message.fields_by_name[name]
        path.append(field)
        message = field.message_type
    return tuple(path)


@functools.cache
def _display(path: tuple[FD, ...]) -> str:
    return ".".join(jsonmap.json_name(f) for f in path)


def parse_query(raw: str) -> list[tuple[str, str]]:
    try:
        return urllib.parse.parse_qsl(raw, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise invalid_argument("query", "the query string is not valid percent-encoded UTF-8") from None


def build(
    route: Route,
    path_params: Mapping[tuple[str, ...], str],
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    *,
    system_params: frozenset[str] = frozenset(),
) -> Message:
    """The request message for ``route``; raises ApiError (400) naming the offending parameter."""
    descriptor_ = route.method.input_type
    request = _message_class(descriptor_)()
    for names, text in path_params.items():
        path = field_path(descriptor_, names)
        _assign(request, path, _display(path), text)
    fields = query_fields(descriptor_, bound_fields(route, path_params))
    seen: set[str] = set()
    for name, text in query:
        if name in system_params:
            continue
        qf = fields.get(name)
        if qf is None:
            raise _unknown(name, descriptor_, path_params, bound_fields(route, path_params))
        if qf.name in seen and not qf.repeated:
            raise invalid_argument(qf.name, "given more than once; it takes a single value")
        seen.add(qf.name)
        _assign(request, qf.path, qf.name, text)
    _from_headers(request, headers, seen)
    if route.body:
        _apply_body(request, route.body, body)
    return request


def _assign(request: Message, path: tuple[FD, ...], name: str, text: str) -> None:
    try:
        _set(request, path, _parse_scalar(path[-1], text))
    except _BadValue as error:
        raise invalid_argument(name, str(error)) from None


def bound_fields(route: Route, path_params: Iterable[tuple[str, ...]]) -> frozenset[tuple[str, ...]]:
    """The request fields the path and the body set (``body: "*"``: every field), which no query parameter may."""
    bound = set(path_params)
    if route.body == "*":
        bound.update((f.name,) for f in route.method.input_type.fields)
    elif route.body:
        bound.add(tuple(route.body.split(".")))
    return frozenset(bound)


def _unknown(
    name: str,
    message: descriptor.Descriptor,
    path_params: Mapping[tuple[str, ...], str],
    bound: frozenset[tuple[str, ...]],
) -> ApiError:
    if name.split(".")[0] in {n for names in path_params for n in (names[0], _camel(names[0]))}:
        return invalid_argument(name, "is set by the URL path and cannot be given as a query parameter")
    allowed = [qf.name for qf in documented_query_fields(message, bound)]
    listed = ", ".join(allowed) if allowed else "none"
    return invalid_argument(name, f"unknown query parameter; this endpoint accepts: {listed}")


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


@functools.cache
def _header_fields(message: descriptor.Descriptor) -> tuple[tuple[FD, str], ...]:
    """The ``(from_header)`` fields of ``message`` with their header, read from the options once per type."""
    return tuple((f, header) for f in message.fields if (header := jsonmap.from_header(f)) is not None)


def _from_headers(request: Message, headers: Mapping[str, str], seen: set[str]) -> None:
    for field, header in _header_fields(request.DESCRIPTOR):
        if jsonmap.json_name(field) in seen:
            continue
        value = headers.get(header.lower())
        if value:
            _assign(request, (field,), header, value)


# -- body (rules with `body: "*"` or `body: "<field>"`) --------------------------------------------------------


def _apply_body(request: Message, body_field: str, body: bytes) -> None:
    try:
        value = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise invalid_argument("body", "the request body is not valid JSON") from None
    if body_field == "*":
        _assign_json(request, value, "body")
    else:
        field = request.DESCRIPTOR.fields_by_name[body_field]
        _assign_json_field(request, field, value, jsonmap.json_name(field))


def _assign_json(message: Message, value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise invalid_argument(where, "expected a JSON object")
    by_name = {jsonmap.json_name(f): f for f in message.DESCRIPTOR.fields}
    by_name.update({f.name: f for f in message.DESCRIPTOR.fields})
    for key, item in value.items():
        field = by_name.get(key)
        name = key if where == "body" else f"{where}.{key}"
        if field is None:
            raise invalid_argument(
                name, f"unknown field; allowed: {', '.join(sorted(f.json_name for f in message.DESCRIPTOR.fields))}"
            )
        _assign_json_field(message, field, item, name)


def _assign_json_field(message: Message, field: FD, value: Any, name: str) -> None:
    if value is None:
        return
    items = value if field.is_repeated else [value]
    if field.is_repeated and not isinstance(value, list):
        raise invalid_argument(name, "expected a JSON array")
    for item in items:
        if field.message_type is not None and not _queryable(field):
            child = _message_class(field.message_type)()
            _assign_json(child, item, name)
            _set(message, (field,), child)
        elif isinstance(item, (dict, list)):
            raise invalid_argument(name, "expected a scalar value")
        else:
            text = json.dumps(item) if isinstance(item, bool) else str(item)
            _assign(message, (field,), name, text)
