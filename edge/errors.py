"""gRPC status → HTTP status and the AIP-193 error body, for upstream errors and the edge's own.

Body: ``{"error": {"code": <http>, "status": "<GRPC_CODE>", "message": "...", "details": [...]}}`` where
each detail is the ProtoJSON of a ``google.rpc`` message with its ``@type``. Details come from the rich
status the server attaches (``grpc-status-details-bin``); errors the edge raises itself carry
``ErrorInfo`` (and ``BadRequest`` for request-shape problems) the same way. A trace never reaches a body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from jsonmap import JSONValue, dumps

log = logging.getLogger("edge.errors")

DOMAIN = "monitoring.dooor.ai"
_DETAILS_KEY = "grpc-status-details-bin"
# How gRPC C-core describes a message over grpc.max_receive_message_length (grpcio 1.85:
# "Received message larger than max (5242880 vs. 4194304)").
_TOO_LARGE = "larger than max"

# google/rpc/code.proto's HTTP mapping, as grpc-gateway and Envoy apply it.
HTTP_STATUS: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


class ApiError(Exception):
    """An error on its way to the client: the gRPC code, a message, rich details, extra headers."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        details: Sequence[any_pb2.Any] = (),
        headers: Mapping[str, str] | None = None,
        http_status: int | None = None,
    ):
        super().__init__(message)
        self._http_status = http_status
        self.code = code
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})
        if code == grpc.StatusCode.UNAUTHENTICATED:
            self.headers.setdefault("www-authenticate", 'Bearer realm="monitoring"')
        retry_after = _retry_after(self.details)
        if retry_after is not None:
            self.headers.setdefault("retry-after", retry_after)

    @property
    def http_status(self) -> int:
        return self._http_status or HTTP_STATUS.get(self.code, 500)

    def to_json(self) -> JSONValue:
        return {
            "error": {
                "code": self.http_status,
                "status": self.code.name,
                "message": self.message,
                "details": [_detail_json(d) for d in self.details],
            }
        }

    def body(self) -> bytes:
        return dumps(self.to_json())


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _detail_json(detail: any_pb2.Any) -> JSONValue:
    try:
        return json_format.MessageToDict(detail)
    except (json_format.Error, TypeError):
        # A detail type this process does not know: still say what it was.
        return {"@type": detail.type_url}


def _retry_after(details: Sequence[any_pb2.Any]) -> str | None:
    """``Retry-After`` (whole seconds, rounded up) from a google.rpc.RetryInfo detail, as AIP-193 maps it."""
    for detail in details:
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(retry) and retry.HasField("retry_delay"):
            delay = retry.retry_delay
            return str(max(1, delay.seconds + (1 if delay.nanos > 0 else 0)))
    return None


def error_info(reason: str, **metadata: str) -> any_pb2.Any:
    return _pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata))


def invalid_argument(field: str, description: str) -> ApiError:
    """A request parameter the edge rejects before calling upstream; names the parameter."""
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
    details = [
        error_info("INVALID_ARGUMENT", field=field),
        _pack(error_details_pb2.BadRequest(field_violations=[violation])),
    ]
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {description}", details)


def route_not_found(method: str, path: str) -> ApiError:
    return ApiError(
        grpc.StatusCode.NOT_FOUND,
        f"no such endpoint: {method} {path}; see /api/v1/openapi.json",
        [error_info("ROUTE_NOT_FOUND", method=method, path=path)],
    )


def method_not_allowed(method: str, path: str, allowed: Sequence[str]) -> ApiError:
    return ApiError(
        grpc.StatusCode.UNIMPLEMENTED,
        f"method {method} is not allowed on {path}; allowed: {', '.join(allowed)}",
        [error_info("METHOD_NOT_ALLOWED", method=method, allowed=",".join(allowed))],
        {"allow": ", ".join(allowed)},
        http_status=405,
    )


def from_rpc_error(error: grpc.aio.AioRpcError, upstream: str, max_reply_bytes: int) -> ApiError:
    """The client-facing form of an upstream failure, with the server's rich details when present.

    ``max_reply_bytes`` is the channel's receive limit, named when a reply exceeded it.
    """
    status = _rich_status(error.trailing_metadata())
    code = error.code()
    if status is None and _reply_too_large(error):
        return _reply_too_large_error(error, upstream, max_reply_bytes)
    if status is None and code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN):
        # No rich status: the failure is the channel's, not the service's (refused, reset, no TLS, …).
        log.warning("upstream %s failed: %s %s", upstream, code.name, error.details())
        return ApiError(
            grpc.StatusCode.UNAVAILABLE,
            "the monitoring service is unreachable; try again shortly",
            [error_info("UPSTREAM_UNAVAILABLE")],
        )
    if status is None and code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ApiError(code, "the monitoring service did not answer within the deadline", [error_info("DEADLINE")])
    message = status.message if status is not None else (error.details() or code.name)
    return ApiError(code, message, list(status.details) if status is not None else [])


def _reply_too_large(error: grpc.aio.AioRpcError) -> bool:
    """The edge's own channel refused a reply over its receive limit (no rich status: gRPC said it, not the
    server, whose RESOURCE_EXHAUSTED always carries details)."""
    return error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and _TOO_LARGE in (error.details() or "")


def _reply_too_large_error(error: grpc.aio.AioRpcError, upstream: str, max_reply_bytes: int) -> ApiError:
    # Not 429 (RESOURCE_EXHAUSTED's mapping): the same request would fail the same way, so nothing invites a
    # retry. 502: the upstream answered with something this gateway does not pass on.
    log.warning("upstream %s sent a reply over the edge's limit: %s", upstream, error.details())
    return ApiError(
        grpc.StatusCode.INTERNAL,
        f"the reply is larger than the edge accepts ({max_reply_bytes} bytes); ask for less (a smaller limit)",
        [error_info("REPLY_TOO_LARGE", max_bytes=str(max_reply_bytes))],
        http_status=502,
    )


def _rich_status(metadata: Sequence[tuple[str, str | bytes]] | None) -> status_pb2.Status | None:
    for key, value in metadata or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except ValueError:
                return None
    return None
