"""Messages → the documented JSON, by the rule declared in ``protos/dooor/monitoring/v1/json.proto``.

The rule is read from the descriptors (``json_name``, field presence, ``(json_value)``,
``(omit_when_unset)``) and nowhere else: the request parser, the SSE encoder and the OpenAPI generator
use the accessors below, so the three cannot disagree. Rendering is compiled once per message type:
into a list of field plans, and the plans into one straight-line Python function (``_compiled``).

Decisions where json.proto is silent:

* ``(omit_when_unset)`` on a field without presence (an enum such as ``ActivityItem.status``) omits the
  key when the field holds its default value.
* An enum value without ``(json_value)`` (only ``*_UNSPECIFIED``, which the server never returns) is
  rendered as ``null`` rather than failing the whole response.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import functools
import json
import keyword
import math
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor, json_format, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor as FD
from google.protobuf.message import Message

from dooor.monitoring.v1 import json_pb2

TIMESTAMP = "google.protobuf.Timestamp"
JSONValue = Any  # the result of json.loads: dict, list, str, int, float, bool or None

_INTEGER_TYPES = frozenset(
    {FD.TYPE_INT32, FD.TYPE_INT64, FD.TYPE_UINT32, FD.TYPE_UINT64, FD.TYPE_SINT32, FD.TYPE_SINT64}
    | {FD.TYPE_FIXED32, FD.TYPE_FIXED64, FD.TYPE_SFIXED32, FD.TYPE_SFIXED64}
)
_FLOAT_TYPES = frozenset({FD.TYPE_DOUBLE, FD.TYPE_FLOAT})


# -- the rule, as accessors ------------------------------------------------------------------------


def json_name(field: FD) -> str:
    return str(field.json_name)


def enum_json_value(value: descriptor.EnumValueDescriptor) -> str | None:
    return value.GetOptions().Extensions[json_pb2.json_value] or None


@functools.cache
def enum_json_values(enum: descriptor.EnumDescriptor) -> dict[int, str]:
    """Enum number → documented string, for every value that has one (so never ``*_UNSPECIFIED``)."""
    return {v.number: s for v in enum.values if (s := enum_json_value(v)) is not None}


@functools.cache
def enum_numbers(enum: descriptor.EnumDescriptor) -> dict[str, int]:
    return {s: n for n, s in enum_json_values(enum).items()}


def omit_when_unset(field: FD) -> bool:
    return bool(field.GetOptions().Extensions[json_pb2.omit_when_unset])


def nullable(field: FD) -> bool:
    """Whether the key can be ``null``: an unset field with presence that is not omitted instead."""
    return field.has_presence and not _is_repeated(field) and not omit_when_unset(field)


def from_header(field: FD) -> str | None:
    return field.GetOptions().Extensions[json_pb2.from_header] or None


def sse_event(field: FD) -> str | None:
    return field.GetOptions().Extensions[json_pb2.sse_event] or None


def is_sse_id(field: FD) -> bool:
    return bool(field.GetOptions().Extensions[json_pb2.sse_id])


def allow_query_token(method: descriptor.MethodDescriptor) -> bool:
    return bool(method.GetOptions().Extensions[json_pb2.allow_query_token])


def format_timestamp(ts: timestamp_pb2.Timestamp) -> str:
    """RFC 3339 in UTC with ``Z``, and 0, 3, 6 or 9 fractional digits: as many as needed to be exact.

    This is protobuf's canonical form (``Timestamp.ToJsonString``, which tests/edge/test_jsonmap.py compares it
    with), without building a datetime per call: that was a tenth of the edge's CPU on ListAlerts.
    """
    return _timestamp_text(ts.seconds, ts.nanos)


# The range protobuf accepts: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_TIMESTAMP_SECONDS = range(-62_135_596_800, 253_402_300_800)
_EPOCH = datetime.datetime(1970, 1, 1)


@functools.lru_cache(maxsize=8192)
def _timestamp_text(seconds: int, nanos: int) -> str:
    # Cached: the same rows (alerts, activity) come back request after request.
    if seconds not in _TIMESTAMP_SECONDS or not 0 <= nanos < 1_000_000_000:
        # protobuf's own ValueError (an exception is not cached)
        return str(timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos).ToJsonString())
    text = (_EPOCH + datetime.timedelta(seconds=seconds)).isoformat()
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if nanos % 1_000 == 0:
        return f"{text}.{nanos // 1_000:06d}Z"
    return f"{text}.{nanos:09d}Z"


# -- rendering -------------------------------------------------------------------------------------


def _is_repeated(field: FD) -> bool:
    return bool(field.is_repeated)


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    key: str
    value: Callable[[Any], JSONValue]
    repeated: bool
    is_map: bool
    presence: bool
    omit: bool


def _float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _identity(value: Any) -> Any:
    return value


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _enum_renderer(enum: descriptor.EnumDescriptor) -> Callable[[int], str | None]:
    table = enum_json_values(enum)
    return table.get


def _scalar_renderer(field: FD) -> Callable[[Any], JSONValue]:
    if field.type == FD.TYPE_MESSAGE:
        return _message_renderer(field.message_type)
    if field.type == FD.TYPE_ENUM:
        return _enum_renderer(field.enum_type)
    if field.type in _FLOAT_TYPES:
        return _float
    if field.type == FD.TYPE_BYTES:
        return _bytes
    return _identity  # strings, bools and every integer width (as JSON numbers)


def _message_renderer(message: descriptor.Descriptor) -> Callable[[Message], JSONValue]:
    if message.full_name == TIMESTAMP:
        return format_timestamp
    if message.full_name.startswith("google.protobuf."):
        return _wkt
    return _compiled(message, None)


def _wkt(message: Message) -> JSONValue:
    """Other well-known types (Duration, wrappers, Struct …) in their canonical ProtoJSON form."""
    return json_format.MessageToDict(message)


@functools.cache
def _plan(message: descriptor.Descriptor) -> tuple[_FieldPlan, ...]:
    plans = []
    for field in message.fields:
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        value = _scalar_renderer(field.message_type.fields_by_name["value"]) if is_map else _scalar_renderer(field)
        plans.append(
            _FieldPlan(
                name=field.name,
                key=json_name(field),
                value=value,
                repeated=_is_repeated(field),
                is_map=bool(is_map),
                presence=field.has_presence and not _is_repeated(field),
                omit=omit_when_unset(field),
            )
        )
    return tuple(plans)


@functools.cache
def _compiled(message: descriptor.Descriptor, only: str | None) -> Callable[[Message], dict[str, JSONValue]]:
    """The renderer of ``message`` (of its field ``only``, if given) as one Python function, built once.

    A loop over the plans, deciding per field and per request what the plan already says, cost 65 µs for
    20 alerts; straight-line code costs about a third of that. The source holds only names made here and
    ``repr`` of the descriptors' strings; the conversions are passed in, not written out.
    """
    plans = [p for p in _plan(message) if only is None or p.name == only]
    namespace: dict[str, Any] = {}
    lines = ["def render(m):", "    out = {}"]
    for index, plan in enumerate(plans):
        namespace[f"f{index}"] = plan.value
        lines += [f"    {line}" for line in _field_lines(plan, f"f{index}")]
    lines.append("    return out")
    exec(compile("\n".join(lines), f"<jsonmap {message.full_name}>", "exec"), namespace)
    render: Callable[[Message], dict[str, JSONValue]] = namespace["render"]
    return render


def _field_lines(p: _FieldPlan, convert: str) -> list[str]:
    """The statements that put one field in ``out``, with the rule of the plan (see the module's decisions)."""
    attr = f"m.{p.name}" if p.name.isidentifier() and not keyword.iskeyword(p.name) else f"getattr(m, {p.name!r})"
    key = repr(p.key)

    def value(of: str) -> str:
        return of if p.value is _identity else f"{convert}({of})"

    if p.is_map:
        return [f"out[{key}] = {{str(k): {value('v')} for k, v in {attr}.items()}}"]
    if p.repeated:
        return [f"out[{key}] = [{value('v')} for v in {attr}]"]
    if p.presence and p.omit:
        return [f"if m.HasField({p.name!r}):", f"    out[{key}] = {value(attr)}"]
    if p.presence:
        return [f"out[{key}] = {value(attr)} if m.HasField({p.name!r}) else None"]
    if p.omit:  # omit_when_unset without presence: the default value counts as unset
        return [f"v = {attr}", "if v:", f"    out[{key}] = {value('v')}"]
    return [f"out[{key}] = {value(attr)}"]


def to_json(message: Message) -> JSONValue:
    """The documented JSON value of one message (a dict, or a string for a Timestamp)."""
    return _message_renderer(message.DESCRIPTOR)(message)


def field_to_json(message: Message, field_name: str) -> JSONValue:
    """The JSON of one top-level field, as ``response_body`` selects it (a repeated field is an array)."""
    field = message.DESCRIPTOR.fields_by_name[field_name]
    return _compiled(message.DESCRIPTOR, field_name)(message).get(json_name(field))


# What json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False) builds on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(value: JSONValue) -> bytes:
    """Compact UTF-8 JSON on one line (SSE ``data:`` relies on it: string newlines stay escaped)."""
    return _ENCODER.encode(value).encode()
