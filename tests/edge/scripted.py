"""A small scripted MonitoringService upstream on 127.0.0.1, run inside the test's event loop.

It tests the edge as a generic proxy: each app id selects a behaviour of StreamAppLogs, and every call
records what the edge sent (request, authorization, deadline) and when it was cancelled. Methods it
does not script answer UNIMPLEMENTED, as grpc does for any unknown method.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import grpc
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from dooor.monitoring.v1 import monitoring_pb2 as pb

SERVICE = "dooor.monitoring.v1.MonitoringService"


@dataclasses.dataclass
class Seen:
    request: pb.StreamAppLogsRequest | pb.GetAppHealthRequest
    authorization: str | None
    deadline_s: float | None
    cancelled_at: float | None = None
    cancelled: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


def entry(n: int, severity: int = pb.SEVERITY_INFO) -> pb.StreamAppLogsResponse:
    stamp = timestamp_pb2.Timestamp(seconds=1737383401 + n, nanos=n * 1000)
    return pb.StreamAppLogsResponse(
        entry=pb.LogEntry(timestamp=stamp, severity=severity, message=f"line {n}"), cursor=f"c{n}"
    )


def rich(code: grpc.StatusCode, message: str, reason: str) -> grpc.Status:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="monitoring.dooor.ai"))
    return rpc_status.to_status(status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=[info]))


class Scripted:
    def __init__(self) -> None:
        self.calls: list[Seen] = []
        self.server = grpc.aio.server()
        self.addr = ""

    async def start(self) -> None:
        handlers = {
            "StreamAppLogs": grpc.unary_stream_rpc_method_handler(
                self._stream,
                request_deserializer=pb.StreamAppLogsRequest.FromString,
                response_serializer=pb.StreamAppLogsResponse.SerializeToString,
            ),
            "GetAppHealth": grpc.unary_unary_rpc_method_handler(
                self._health,
                request_deserializer=pb.GetAppHealthRequest.FromString,
                response_serializer=pb.GetAppHealthResponse.SerializeToString,
            ),
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        health = health_async.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.addr = f"127.0.0.1:{port}"
        await self.server.start()
        await health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self) -> None:
        await self.server.stop(None)

    def _record(self, request: object, context: grpc.aio.ServicerContext) -> Seen:
        auth = dict(context.invocation_metadata() or ()).get("authorization")
        remaining = context.time_remaining()
        seen = Seen(request, auth, remaining)  # type: ignore[arg-type]
        self.calls.append(seen)
        return seen

    def last(self, app_id: str) -> Seen:
        return next(s for s in reversed(self.calls) if s.request.app_id == app_id)

    async def _health(self, request: pb.GetAppHealthRequest, context: grpc.aio.ServicerContext) -> object:
        self._record(request, context)
        if request.app_id == "app_slow":
            await asyncio.sleep(3600)  # never answers: the edge's deadline must end the call
        return pb.GetAppHealthResponse(app_id=request.app_id, status=pb.HEALTH_STATUS_HEALTHY)

    async def _stream(
        self, request: pb.StreamAppLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamAppLogsResponse]:
        seen = self._record(request, context)
        try:
            async for message in self._script(request, context):
                yield message
        except asyncio.CancelledError:
            seen.cancelled_at = time.monotonic()
            seen.cancelled.set()
            raise

    async def _script(
        self, request: pb.StreamAppLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamAppLogsResponse]:
        app = request.app_id
        if app == "app_denied":
            await context.abort_with_status(
                rich(grpc.StatusCode.PERMISSION_DENIED, "this API key does not grant access", "PERMISSION_DENIED")
            )
        start = int(request.cursor[1:]) + 1 if request.cursor.startswith("c") else 1
        if app in ("app_steady", "app_resume"):
            for n in range(start, start + 3):
                yield entry(n)
        if app == "app_gap":
            yield entry(1)
            yield pb.StreamAppLogsResponse(gap=pb.StreamGap(dropped_entries=7, reason="slow_consumer"), cursor="c8")
            yield entry(9, pb.SEVERITY_ERROR)
        if app == "app_fail":
            yield entry(1)
            await context.abort_with_status(rich(grpc.StatusCode.UNAVAILABLE, "loki unavailable: reset", "BACKEND"))
        if app.startswith("app_end"):
            yield entry(1)
            return
        await asyncio.sleep(3600)  # an idle live tail: stays open until the client goes away
