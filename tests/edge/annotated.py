"""A service that the edge has never seen, annotated with google.api.http, built at test time.

It proves that a new annotated RPC appears at the edge (routes, request parsing, JSON, OpenAPI)
without any edge code.
"""

from __future__ import annotations

import functools

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

FD = descriptor_pb2.FieldDescriptorProto


@functools.cache
def things_service() -> descriptor.ServiceDescriptor:
    """``edgetest.v1.Things``: ``GetThing`` (GET /v9/things/{name}, also /v9/items/{name}) and ``RenameThing``."""
    file = descriptor_pb2.FileDescriptorProto(
        name="edgetest/v1/things.proto",
        package="edgetest.v1",
        syntax="proto3",
        dependency=["google/api/annotations.proto"],
    )
    thing = file.message_type.add(name="Thing")
    thing.field.add(name="name", number=1, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL, json_name="name")
    thing.field.add(name="size_bytes", number=2, type=FD.TYPE_INT64, label=FD.LABEL_OPTIONAL, json_name="sizeBytes")
    thing.field.add(name="tags", number=3, type=FD.TYPE_STRING, label=FD.LABEL_REPEATED, json_name="tags")
    get = file.message_type.add(name="GetThingRequest")
    get.field.add(name="name", number=1, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL, json_name="name")
    get.field.add(name="min_size", number=2, type=FD.TYPE_INT64, label=FD.LABEL_OPTIONAL, json_name="minSize")
    get.field.add(name="tags", number=3, type=FD.TYPE_STRING, label=FD.LABEL_REPEATED, json_name="tags")
    rename = file.message_type.add(name="RenameThingRequest")
    rename.field.add(name="name", number=1, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL, json_name="name")
    rename.field.add(name="new_name", number=2, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL, json_name="newName")
    service = file.service.add(name="Things")
    get_rule = http_pb2.HttpRule(get="/v9/things/{name}")
    get_rule.additional_bindings.add(get="/v9/items/{name}")
    for method, rule in (
        ("GetThing", get_rule),
        ("RenameThing", http_pb2.HttpRule(post="/v9/things/{name}:rename", body="*")),
    ):
        added = service.method.add(
            name=method, input_type=f".edgetest.v1.{method}Request", output_type=".edgetest.v1.Thing"
        )
        added.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    pool = descriptor_pool.Default()
    pool.Add(file)
    return pool.FindServiceByName("edgetest.v1.Things")


def message(type_name: str, **fields: object) -> Message:
    cls = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(f"edgetest.v1.{type_name}"))
    return cls(**fields)
