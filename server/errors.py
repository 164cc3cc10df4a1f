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

What a caller reads is the ``message``: plain words, never a URL, host, port, credential, query or backend
body. What an operator needs to find the cause is the ``detail``, which only the server log sees; a backend
failure's status carries a request id under which that detail is logged (see ``server/api/rpc.py``).
"""

from __future__ import annotations

import http
import socket
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "monitoring.dooor.ai"


class ServiceError(Exception):
    """Base class: raised by any layer, turned into a gRPC status by the servicer."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    reason: str = "UNKNOWN"
    # A failure whose cause the caller cannot see: its status gets a request id, its detail a log line.
    needs_request_id: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        detail: str = "",
    ):
        super().__init__(message)
        self.message = message
        # For the server log only: may name URLs, queries and backend bodies.
        self.detail = detail
        if reason is not None:
            self.reason = reason
        self.metadata = dict(metadata or {})

    def details(self, request_id: str | None = None) -> list[any_pb2.Any]:
        metadata = self.metadata if request_id is None else {**self.metadata, "request_id": request_id}
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=metadata)
        packed = any_pb2.Any()
        packed.Pack(info)
        return [packed]

    def to_status(self, request_id: str | None = None) -> grpc.Status:
        """The status a caller receives; ``request_id`` (when given) goes into the message and ErrorInfo."""
        code_value = getattr(code_pb2, self.code.name)
        message = self.message if request_id is None else f"{self.message} (request id {request_id})"
        proto = status_pb2.Status(code=code_value, message=message, details=self.details(request_id))
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

    def details(self, request_id: str | None = None) -> list[any_pb2.Any]:
        violation = error_details_pb2.BadRequest.FieldViolation(field=self.field, description=self.description)
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
        return [*super().details(request_id), packed]


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


class Internal(ServiceError):
    """A bug or an unexpected failure: the caller learns nothing of it but a request id."""

    code = grpc.StatusCode.INTERNAL
    reason = "INTERNAL"
    needs_request_id = True

    def __init__(self, detail: str):
        super().__init__("internal error", detail=detail)


class ResourceExhausted(ServiceError):
    """A limit is reached (streams per key, say). ``retry_after_s`` goes out as google.rpc.RetryInfo, which
    the edge turns into ``Retry-After``."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, reason: str, retry_after_s: int, metadata: Mapping[str, str]):
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after_s = retry_after_s

    def details(self, request_id: str | None = None) -> list[any_pb2.Any]:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromSeconds(self.retry_after_s)
        packed = any_pb2.Any()
        packed.Pack(retry)
        return [*super().details(request_id), packed]


class Unimplemented(ServiceError):
    """The RPC exists in the contract but is not wired to its data source yet."""

    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "NOT_WIRED"


class Unavailable(ServiceError):
    """A backend cannot answer: refused, closed, or answered with an error. Says which and why, in plain words.

    ``cause`` reaches the caller, so it names no URL, query or backend text; those go into ``detail``.
    """

    code = grpc.StatusCode.UNAVAILABLE
    reason = "BACKEND_UNAVAILABLE"
    needs_request_id = True

    def __init__(self, backend: str, cause: str, *, detail: str = "", message: str | None = None):
        super().__init__(
            message or f"{backend} unavailable: {cause}",
            metadata={"backend": backend, "cause": cause},
            detail=detail,
        )
        self.backend = backend

    @classmethod
    def malformed(cls, backend: str, detail: str) -> Unavailable:
        """The backend answered, but not in the shape its API promises."""
        return cls(backend, "malformed response", detail=detail, message=f"malformed response from {backend}")


class DeadlineExceeded(ServiceError):
    """A backend did not answer within the configured timeout."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "BACKEND_TIMEOUT"
    needs_request_id = True

    def __init__(self, backend: str, timeout_s: float, *, detail: str = ""):
        super().__init__(
            f"{backend} did not answer within {timeout_s:g} s",
            metadata={"backend": backend, "timeout_s": f"{timeout_s:g}"},
            detail=detail,
        )
        self.backend = backend


# Plain words for the network failures a backend call meets, most specific first (subclasses before OSError).
_NETWORK_CAUSES: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset"),
    (BrokenPipeError, "connection reset"),
    (socket.gaierror, "host name not resolved"),
    (OSError, "network error"),
)


def network_cause(error: BaseException) -> str | None:
    """Plain words for the OS-level failure behind ``error`` (HTTP clients wrap it), or None if there is none.

    The most specific anywhere in the chain wins: a generic OSError ("All connection attempts failed") often
    wraps the ConnectionRefusedError that says what happened.
    """
    chain = list(_chain(error))
    for kind, words in _NETWORK_CAUSES:
        if any(isinstance(link, kind) for link in chain):
            return words
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def http_cause(status: int) -> str:
    """``it answered HTTP 400 (bad request)``: the status and its standard phrase, never the body."""
    try:
        phrase = http.HTTPStatus(status).phrase.lower()
    except ValueError:
        return f"it answered HTTP {status}"
    return f"it answered HTTP {status} ({phrase})"


def without_password(url: str) -> str:
    """``url`` for a log line: the user stays (it tells which credentials were used), the password goes."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}@{host}"))
