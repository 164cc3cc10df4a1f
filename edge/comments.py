"""The proto's comments, by the full name of what they document: the API's one written documentation.

protoc leaves comments out of the modules it generates, so ``make gen`` also writes a FileDescriptorSet with
source info (``gen/dooor/protos.binpb``). The OpenAPI document takes its descriptions from here. Anything
without a leading comment, or outside that set (a service built at run time), has no description.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Iterable, Iterator, Mapping

from google.protobuf import descriptor, descriptor_pb2

_RESOURCE = ("dooor", "protos.binpb")

# Field numbers of the descriptor protos that make up source-info paths (descriptor.proto).
_FILE_MESSAGES, _FILE_ENUMS, _FILE_SERVICES = 4, 5, 6
_MESSAGE_FIELDS, _MESSAGE_NESTED, _MESSAGE_ENUMS = 2, 3, 4
_ENUM_VALUES = 2
_SERVICE_METHODS = 2

# googleapis cross-references, `[Text][full.Name]`, read as plain `Text` outside protoc's tooling.
_REFERENCE = re.compile(r"\[([^\]]+)\]\[[\w.]*\]")


def of(element: descriptor.DescriptorBase) -> str | None:
    """The leading comment of a service, method, message, field, enum or enum value, if it has one."""
    return _generated().get(name(element))


def name(element: descriptor.DescriptorBase) -> str:
    """The key of ``element`` in :func:`index`."""
    if isinstance(element, descriptor.EnumValueDescriptor):
        # `full_name` scopes enum values like C++ (beside their enum); the index keeps the enum.
        return f"{element.type.full_name}.{element.name}"
    return element.full_name  # type: ignore[attr-defined]


def index(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    """Full name → leading comment, for everything in ``files`` that has one (files need source info)."""
    return {key: text for file in files for key, text in _file_comments(file)}


@functools.cache
def _generated() -> Mapping[str, str]:
    resource = importlib.resources.files(_RESOURCE[0]).joinpath(_RESOURCE[1])
    if not resource.is_file():
        return {}
    return index(descriptor_pb2.FileDescriptorSet.FromString(resource.read_bytes()).file)


def _file_comments(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[str, str]]:
    names = dict(_paths(file))
    for location in file.source_code_info.location:
        key = names.get(tuple(location.path))
        if key is not None and location.leading_comments.strip():
            yield key, _text(location.leading_comments)


def _paths(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[tuple[int, ...], str]]:
    prefix = f"{file.package}." if file.package else ""
    for i, message in enumerate(file.message_type):
        yield from _message_paths(message, (_FILE_MESSAGES, i), prefix + message.name)
    for i, enum in enumerate(file.enum_type):
        yield from _enum_paths(enum, (_FILE_ENUMS, i), prefix + enum.name)
    for i, service in enumerate(file.service):
        name = prefix + service.name
        yield (_FILE_SERVICES, i), name
        for j, method in enumerate(service.method):
            yield (_FILE_SERVICES, i, _SERVICE_METHODS, j), f"{name}.{method.name}"


def _message_paths(
    message: descriptor_pb2.DescriptorProto, path: tuple[int, ...], name: str
) -> Iterator[tuple[tuple[int, ...], str]]:
    yield path, name
    for i, field in enumerate(message.field):
        yield (*path, _MESSAGE_FIELDS, i), f"{name}.{field.name}"
    for i, nested in enumerate(message.nested_type):
        yield from _message_paths(nested, (*path, _MESSAGE_NESTED, i), f"{name}.{nested.name}")
    for i, enum in enumerate(message.enum_type):
        yield from _enum_paths(enum, (*path, _MESSAGE_ENUMS, i), f"{name}.{enum.name}")


def _enum_paths(
    enum: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...], name: str
) -> Iterator[tuple[tuple[int, ...], str]]:
    yield path, name
    for i, value in enumerate(enum.value):
        yield (*path, _ENUM_VALUES, i), f"{name}.{value.name}"


def _text(comment: str) -> str:
    # Lines keep their breaks (Markdown joins them); the one space after `//` goes.
    lines = [line[1:] if line.startswith(" ") else line for line in comment.strip("\n").split("\n")]
    return _REFERENCE.sub(r"\1", "\n".join(lines).strip())
