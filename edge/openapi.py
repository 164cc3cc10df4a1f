"""The OpenAPI 3.1 document of the edge, generated from the routes and the JSON rule of ``jsonmap``.

Nothing here is written per endpoint: paths come from the ``google.api.http`` routes, parameters from
the request fields the query may set (``request.documented_query_fields``) and the ``(from_header)``
fields, schemas from the response descriptors with exactly the keys, nullability and enum strings
that ``jsonmap`` renders, descriptions from the proto's comments (``comments``). A server-streaming
method is documented as ``text/event-stream`` with its event types and their data schemas under
``x-sse-events``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor
from google.protobuf.descriptor import FieldDescriptor as FD

import jsonmap
from edge import comments, request
from edge.routes import Route

Schema = dict[str, Any]

_INTEGER_FORMATS = {
    FD.TYPE_INT32: "int32",
    FD.TYPE_SINT32: "int32",
    FD.TYPE_SFIXED32: "int32",
    FD.TYPE_INT64: "int64",
    FD.TYPE_SINT64: "int64",
    FD.TYPE_SFIXED64: "int64",
    FD.TYPE_UINT32: "int64",
    FD.TYPE_FIXED32: "int64",
    FD.TYPE_UINT64: "int64",
    FD.TYPE_FIXED64: "int64",
}

ERROR_SCHEMA: Schema = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "status", "message", "details"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "integer", "description": "The HTTP status code."},
                "status": {"type": "string", "enum": [c.name for c in grpc.StatusCode if c != grpc.StatusCode.OK]},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {"type": "object", "required": ["@type"], "properties": {"@type": {"type": "string"}}},
                },
            },
        }
    },
}


class _Schemas:
    """Collects component schemas for the message types the document refers to."""

    def __init__(self) -> None:
        self.components: dict[str, Schema] = {"Error": ERROR_SCHEMA}
        self._names: dict[str, str] = {}

    def ref(self, message: descriptor.Descriptor) -> Schema:
        name = self._names.get(message.full_name)
        if name is None:
            name = message.name if message.name not in self.components else message.full_name
            self._names[message.full_name] = name
            self.components[name] = {}  # reserve first: recursive types refer to themselves
            self.components[name] = self.message(message)
        return {"$ref": f"#/components/schemas/{name}"}

    def message(self, message: descriptor.Descriptor) -> Schema:
        properties = {jsonmap.json_name(f): _described(self.field(f), f) for f in message.fields}
        required = [jsonmap.json_name(f) for f in message.fields if not jsonmap.omit_when_unset(f)]
        schema = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
        return _described(schema, message)

    def field(self, field: FD) -> Schema:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.value(field.message_type.fields_by_name["value"])}
        if field.is_repeated:
            return {"type": "array", "items": self.value(field)}
        schema = self.value(field)
        return _nullable(schema) if jsonmap.nullable(field) else schema

    def value(self, field: FD) -> Schema:
        if field.type == FD.TYPE_MESSAGE:
            if field.message_type.full_name == jsonmap.TIMESTAMP:
                return {"type": "string", "format": "date-time"}
            if field.message_type.full_name.startswith("google.protobuf."):
                return {}
            return self.ref(field.message_type)
        return scalar_schema(field)


def scalar_schema(field: FD) -> Schema:
    if field.type == FD.TYPE_ENUM:
        strings = jsonmap.enum_json_values(field.enum_type)
        schema: Schema = {"type": "string", "enum": list(strings.values())}
        meanings = [(text, comments.of(field.enum_type.values_by_number[n])) for n, text in strings.items()]
        if any(meaning for _, meaning in meanings):
            schema["description"] = "\n".join(f"- `{text}`: {meaning or ''}" for text, meaning in meanings)
        return schema
    if field.type == FD.TYPE_BOOL:
        return {"type": "boolean"}
    if field.type in _INTEGER_FORMATS:
        return {"type": "integer", "format": _INTEGER_FORMATS[field.type]}
    if field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return {"type": "number"}
    if field.type == FD.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    if field.type == FD.TYPE_MESSAGE and field.message_type.full_name == jsonmap.TIMESTAMP:
        return {"type": "string", "format": "date-time"}
    return {"type": "string"}


def _described(schema: Schema, element: descriptor.DescriptorBase) -> Schema:
    """``schema`` with the element's comment first in its description (an enum's own list of values after)."""
    text = "\n\n".join(t for t in (comments.of(element), schema.get("description")) if t)
    return {**schema, "description": text} if text else schema


def _nullable(schema: Schema) -> Schema:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def _parameters(route: Route, schemas: _Schemas) -> list[Schema]:
    params: list[Schema] = []
    for variable in route.template.variables:
        name = ".".join(variable.field_path)
        field = request.field_path(route.method.input_type, variable.field_path)[-1]
        params.append(_described({"name": name, "in": "path", "required": True, "schema": {"type": "string"}}, field))
    bound = request.bound_fields(route, (v.field_path for v in route.template.variables))
    for qf in request.documented_query_fields(route.method.input_type, bound):
        schema = {"type": "array", "items": scalar_schema(qf.leaf)} if qf.repeated else scalar_schema(qf.leaf)
        param = {"name": qf.name, "in": "query", "required": False, "schema": schema}
        if "description" in schema:  # an enum's list of values reads best in the parameter's own text
            param["description"] = schema.pop("description")
        params.append(_described(param, qf.leaf))
    for field in route.method.input_type.fields:
        header = jsonmap.from_header(field)
        if header is not None:
            param = {"name": header, "in": "header", "required": False, "schema": scalar_schema(field)}
            params.append(_described(param, field))
    params.append(
        {
            "name": "Grpc-Timeout",
            "in": "header",
            "required": False,
            "description": "Deadline for the call: up to 8 digits (not zero) and a unit H, M, S, m (ms), u (µs) "
            "or n (ns). A call that outlives it answers 504.",
            "schema": {"type": "string", "pattern": "^[0-9]{1,8}[HMSmun]$"},
        }
    )
    return params


def _success(route: Route, schemas: _Schemas) -> Schema:
    output = route.method.output_type
    if route.method.server_streaming:
        events = {
            event: schemas.value(output.fields_by_name[name])
            for name, event in ((f.name, jsonmap.sse_event(f)) for f in output.fields)
            if event is not None
        } or {"message": schemas.ref(output)}
        return {
            "description": "A stream of Server-Sent Events. Each event's `data` is one line of JSON; its "
            "schema per event type is under `x-sse-events`. `id` is a resume cursor; send it back as "
            "`Last-Event-ID`. An error after the stream started arrives as `event: error` with an Error body.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "x-sse-events": {**events, "error": {"$ref": "#/components/schemas/Error"}},
        }
    if route.response_body:
        field = output.fields_by_name[route.response_body]
        schema = schemas.field(field)
    else:
        schema = schemas.ref(output)
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _operation(route: Route, schemas: _Schemas, operation_id: str) -> Schema:
    operation: Schema = {
        "operationId": operation_id,
        "summary": f"{route.method.containing_service.name}.{route.method.name}",
        "tags": [route.method.containing_service.name],
        "parameters": _parameters(route, schemas),
        "responses": {
            "200": _success(route, schemas),
            "default": {
                "description": "An error: the HTTP status of the gRPC code (code.proto table).",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                "headers": {"WWW-Authenticate": {"description": "On 401.", "schema": {"type": "string"}}},
            },
        },
    }
    if route.body:
        operation["requestBody"] = _request_body(route)
    if jsonmap.allow_query_token(route.method):
        operation["security"] = [{"bearer": []}, {"queryToken": []}, {"cookieToken": []}]
    return _described(operation, route.method)


def _request_body(route: Route) -> Schema:
    """The JSON body of a ``body`` rule: the request's fields the path does not set (``*``), or the named field's
    message. Output-only fields are accepted (and ignored by the service); none is required (the service names a
    missing one)."""
    message = route.method.input_type
    if route.body == "*":
        path = {v.field_path[0] for v in route.template.variables}
        schema = _input_schema(message, skip=path)
    else:
        field = request.field_path(message, tuple(route.body.split(".")))[-1]
        schema = _described(_input_schema(field.message_type), field)
    return {"required": route.body != "*", "content": {"application/json": {"schema": schema}}}


def _input_schema(message: descriptor.Descriptor, skip: Iterable[str] = (), depth: int = 0) -> Schema:
    properties = {
        jsonmap.json_name(f): _described(_input_field(f, depth), f) for f in message.fields if f.name not in set(skip)
    }
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _input_field(field: FD, depth: int) -> Schema:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return {
            "type": "object",
            "additionalProperties": _input_value(field.message_type.fields_by_name["value"], depth),
        }
    value = _input_value(field, depth)
    return {"type": "array", "items": value} if field.is_repeated else value


def _input_value(field: FD, depth: int) -> Schema:
    if field.type != FD.TYPE_MESSAGE or field.message_type.full_name == jsonmap.TIMESTAMP:
        return scalar_schema(field)
    if field.message_type.full_name.startswith("google.protobuf.") or depth >= 8:
        return {}
    return _input_schema(field.message_type, depth=depth + 1)


def _openapi_path(route: Route) -> str:
    """The template with each variable as ``{dotted.field.path}`` (OpenAPI has no multi-segment form)."""
    text = route.template.text.split(":", 1)[0] if route.template.verb else route.template.text
    out, depth, name = [], 0, ""
    for char in text:
        if char == "{":
            depth, name = 1, ""
        elif char == "}":
            depth = 0
            out.append("{" + name.split("=", 1)[0] + "}")
        elif depth:
            name += char
        else:
            out.append(char)
    return "".join(out) + (f":{route.template.verb}" if route.template.verb else "")


def document(routes: Iterable[Route], *, title: str, version: str) -> Schema:
    schemas = _Schemas()
    paths: dict[str, Schema] = {}
    seen: dict[str, int] = {}
    services: dict[str, descriptor.ServiceDescriptor] = {}
    for route in routes:
        services.setdefault(route.method.containing_service.name, route.method.containing_service)
        # additional_bindings share a method: the first keeps its name, the others get _2, _3 …
        seen[route.method.full_name] = count = seen.get(route.method.full_name, 0) + 1
        operation_id = route.method.name if count == 1 else f"{route.method.name}_{count}"
        paths.setdefault(_openapi_path(route), {})[route.http_method.lower()] = _operation(route, schemas, operation_id)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "tags": [_described({"name": name}, service) for name, service in services.items()],
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key: dor_sk_…"},
                "queryToken": {"type": "apiKey", "in": "query", "name": "access_token"},
                "cookieToken": {"type": "apiKey", "in": "cookie", "name": "access_token"},
            },
        },
        "security": [{"bearer": []}],
    }
