"""Domain errors, and their translation to gRPC status with rich details, in one place.

Hierarchy::

    ServiceError
    ├── InvalidArgument      a request field is malformed (BadRequest.field_violations)
    ├── Unauthenticated      no key, a malformed key, or an unknown or revoked key
    ├── PermissionDenied     a valid key used outside its workspace
    ├── NotFound             the resource does not exist in the caller's workspace
    ├── AlreadyExists        the resource to create exists already
    ├── FailedPrecondition   the request is valid but the state does not allow it
    ├── Unimplemented        the capability is not wired to its data source
    ├── Unavailable          a backend (Prometheus, Loki, the store) cannot answer
    └── DeadlineExceeded     a backend did not answer in time

Every status carries ``google.rpc.ErrorInfo`` (reason, domain, metadata), as AIP-193 asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "monitoring.dooor.ai"


class ServiceError(Exception):
    """Base class: raised by any layer, turned into a gRPC status by the servicer."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    reason: str = "UNKNOWN"

    def __init__(self, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = dict(metadata or {})

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata)
        packed = any_pb2.Any()
        packed.Pack(info)
        return [packed]

    def to_status(self) -> grpc.Status:
        code_value = getattr(code_pb2, self.code.name)
        proto = status_pb2.Status(code=code_value, message=self.message, details=self.details())
        return rpc_status.to_status(proto)


class InvalidArgument(ServiceError):
    """A request field is malformed or out of range. Names the field and what is allowed."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, description: str, *, allowed: Sequence[str] = ()):
        if allowed:
            description = f"{description}; allowed: {', '.join(allowed)}"
        super().__init__(f"{field}: {description}", metadata={"field": field})
        self.field = field
        self.description = description

    def details(self) -> list[any_pb2.Any]:
        violation = error_details_pb2.BadRequest.FieldViolation(field=self.field, description=self.description)
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
        return [*super().details(), packed]


class Unauthenticated(ServiceError):
    """The call carries no API key, a malformed one, or one that is unknown or revoked."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(ServiceError):
    """A valid key asks about a workspace other than its own."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class NotFound(ServiceError):
    """The resource does not exist in the caller's workspace (whether or not it exists elsewhere)."""

    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"

    def __init__(self, kind: str, resource_id: str):
        super().__init__(f"{kind} {resource_id!r} not found", metadata={"kind": kind, "id": resource_id})


class AlreadyExists(ServiceError):
    """The resource a create call names exists already (update it instead)."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(ServiceError):
    """The request is well formed but the current state does not allow it."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Unimplemented(ServiceError):
    """The RPC exists in the contract but is not wired to its data source yet."""

    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "NOT_WIRED"


class Unavailable(ServiceError):
    """A backend cannot answer: refused, closed, or answered with an error. Says which and why."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "BACKEND_UNAVAILABLE"

    def __init__(self, backend: str, cause: str):
        super().__init__(f"{backend} unavailable: {cause}", metadata={"backend": backend, "cause": cause})
        self.backend = backend


class DeadlineExceeded(ServiceError):
    """A backend did not answer within the configured timeout."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "BACKEND_TIMEOUT"

    def __init__(self, backend: str, timeout_s: float):
        super().__init__(
            f"{backend} did not answer within {timeout_s:g} s",
            metadata={"backend": backend, "timeout_s": f"{timeout_s:g}"},
        )
        self.backend = backend
