from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
JSON_VALUE_FIELD_NUMBER: _ClassVar[int]
json_value: _descriptor.FieldDescriptor
OMIT_WHEN_UNSET_FIELD_NUMBER: _ClassVar[int]
omit_when_unset: _descriptor.FieldDescriptor
FROM_HEADER_FIELD_NUMBER: _ClassVar[int]
from_header: _descriptor.FieldDescriptor
SSE_EVENT_FIELD_NUMBER: _ClassVar[int]
sse_event: _descriptor.FieldDescriptor
SSE_ID_FIELD_NUMBER: _ClassVar[int]
sse_id: _descriptor.FieldDescriptor
ALLOW_QUERY_TOKEN_FIELD_NUMBER: _ClassVar[int]
allow_query_token: _descriptor.FieldDescriptor
