"""MonitoringService: validate → authenticate/authorize → call a capability → reply.

Each capability lives in its own module and is injected; one that is not wired to its data source
answers UNIMPLEMENTED with the reason, never invented data.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf import timestamp_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from dooor.monitoring.v1 import monitoring_pb2_grpc
from server import validation
from server.alerts.book import AlertBook
from server.alerts.silences import Silences
from server.api import rpc
from server.api.auth import Authenticator
from server.api.ratelimit import KeyRateLimiter
from server.config import NotifySettings
from server.convert import enum_to_json, now_ns
from server.errors import InvalidArgument, NotFound, ResourceExhausted, ServiceError, Unauthenticated, Unimplemented
from server.notify.channels import Channels, delivery_message
from server.states import DeliveryStatus, SilenceState
from server.store import Store
from server.store.records import ApiKey, App, Channel, Delivery

log = logging.getLogger("server.api.monitoring")

# How long a stream's client gets to take the end message before the call is closed without it.
END_GRACE_S = 2.0
# AcknowledgeAlert's note: at most this many characters.
MAX_NOTE = 1024


# What a metrics capability makes of a request once validated (its own type: api does not import metrics).
Q = TypeVar("Q")


class MetricsReader(Protocol[Q]):
    # InvalidArgument naming the field when the request's window or include is not one a call may ask for.
    def check_request(self, request: pb.GetAppMetricsRequest) -> Q: ...

    async def app_metrics(self, app: App, query: Q) -> pb.GetAppMetricsResponse: ...


class HealthReader(Protocol):
    # NotFound when the app is not in the workspace: the existence check is the capability's own read.
    async def health_of(self, workspace_id: str, app_id: str) -> pb.GetAppHealthResponse: ...

    async def workspace_apps(self, workspace_id: str) -> pb.ListWorkspaceAppsResponse: ...


class HistoryReader(Protocol):
    # InvalidArgument naming start_time or end_time when the request's window is not one a call may ask for.
    def check_window(self, request: pb.GetAppHealthHistoryRequest) -> None: ...

    async def app_history(
        self, app: App, request: pb.GetAppHealthHistoryRequest, limit: int
    ) -> pb.GetAppHealthHistoryResponse: ...


class LogReader(Protocol):
    async def list_logs(self, app: App, request: pb.ListAppLogsRequest) -> pb.ListAppLogsResponse: ...


class LogStreamer(Protocol):
    async def open_stream(
        self, app: App, request: pb.StreamAppLogsRequest, caller: StreamCaller
    ) -> AsyncIterator[pb.StreamAppLogsResponse]: ...


class OverviewReader(Protocol):
    async def overview(self, workspace_id: str) -> pb.GetWorkspaceOverviewResponse: ...


class ChannelTester(Protocol):
    # Sends a `test` event to the channel once (no retries) and returns the delivery as recorded in its log.
    async def send_test(self, channel: Channel, now_ns: int) -> Delivery: ...


@dataclasses.dataclass
class Capabilities:
    """What answers each RPC. ``None`` means not wired yet: the RPC answers UNIMPLEMENTED."""

    metrics: MetricsReader[Any] | None = None
    health: HealthReader | None = None
    logs: LogReader | None = None
    tail: LogStreamer | None = None
    overview: OverviewReader | None = None
    history: HistoryReader | None = None
    # The per-API-key token bucket on every call; None: no limit.
    rate_limit: KeyRateLimiter | None = None


C = TypeVar("C")


def _wired(capability: C | None, what: str) -> C:
    if capability is None:
        raise Unimplemented(f"{what} is not wired to its data source in this server build")
    return capability


class MonitoringServicer(monitoring_pb2_grpc.MonitoringServiceServicer):
    """``notify``: the caps and destination rule of silences and channels; ``tester``: what sends
    TestNotificationChannel's event (None: that call answers UNIMPLEMENTED)."""

    def __init__(
        self,
        store: Store,
        auth: Authenticator,
        capabilities: Capabilities,
        *,
        notify: NotifySettings | None = None,
        tester: ChannelTester | None = None,
    ):
        self._store = store
        self._auth = auth
        self._cap = capabilities
        self._alerts = AlertBook(store)
        notify = notify or NotifySettings()
        self._silences = Silences(store, notify)
        self._channels = Channels(store, notify)
        self._tester = tester

    async def _key(self, context: grpc.aio.ServicerContext) -> ApiKey:
        """The caller's API key, once it is authenticated and has a token left in its bucket."""
        key = await self._auth.workspace_key(context)
        if self._cap.rate_limit is not None:
            try:
                self._cap.rate_limit.take(key.id)
            except ResourceExhausted as refused:
                # Aborted here rather than by rpc.unary, which logs each refusal: a flood would log a line a call.
                await context.abort_with_status(refused.to_status())
        return key

    def _app_ids(self, key: ApiKey, request: _AppRequest) -> tuple[str, str]:
        """The request's workspace and app ids, once valid and in the key's workspace."""
        workspace_id = validation.require_id("workspace_id", request.workspace_id)
        app_id = validation.require_id("app_id", request.app_id)
        self._auth.check_workspace(key, workspace_id)
        return workspace_id, app_id

    async def _app(self, key: ApiKey, request: _AppRequest) -> App:
        workspace_id, app_id = self._app_ids(key, request)
        app = await self._store.get_app(workspace_id, app_id)
        if app is None:
            raise NotFound("app", app_id)
        return app

    def _workspace(self, key: ApiKey, workspace_id: str) -> str:
        validation.require_id("workspace_id", workspace_id)
        self._auth.check_workspace(key, workspace_id)
        return workspace_id

    @rpc.unary
    async def GetAppMetrics(
        self, request: pb.GetAppMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAppMetricsResponse:
        key = await self._key(context)
        metrics = _wired(self._cap.metrics, "GetAppMetrics (Prometheus metrics)")
        query = metrics.check_request(request)  # period or custom window, include: before the app is read
        app = await self._app(key, request)
        return await metrics.app_metrics(app, query)

    @rpc.unary
    async def GetAppHealth(
        self, request: pb.GetAppHealthRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAppHealthResponse:
        key = await self._key(context)
        if self._cap.health is None:
            await self._app(key, request)  # a missing app is NOT_FOUND first, as on the other calls
        health = _wired(self._cap.health, "GetAppHealth (the health evaluator over Prometheus)")
        workspace_id, app_id = self._app_ids(key, request)
        return await health.health_of(workspace_id, app_id)  # reads the app with its health: one store call

    @rpc.unary
    async def GetAppHealthHistory(
        self, request: pb.GetAppHealthHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAppHealthHistoryResponse:
        key = await self._key(context)
        history = _wired(self._cap.history, "GetAppHealthHistory (the health snapshots)")
        limit = validation.limit("limit", request.limit, default=100, maximum=1000)
        history.check_window(request)
        app = await self._app(key, request)
        return await history.app_history(app, request, limit)

    @rpc.unary
    async def ListAppLogs(
        self, request: pb.ListAppLogsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAppLogsResponse:
        key = await self._key(context)
        validation.optional_enum("severity", request.severity, pb.Severity.DESCRIPTOR)
        app = await self._app(key, request)
        return await _wired(self._cap.logs, "ListAppLogs (Loki logs)").list_logs(app, request)

    @rpc.stream
    async def StreamAppLogs(
        self, request: pb.StreamAppLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamAppLogsResponse]:
        key = await self._key(context)
        validation.optional_enum("severity", request.severity, pb.Severity.DESCRIPTOR)
        app = await self._app(key, request)
        caller = StreamCaller(key, self._auth, context)
        stream = await _wired(self._cap.tail, "StreamAppLogs (Loki live tail)").open_stream(app, request, caller)
        try:
            # Headers now: the call is accepted (the edge answers 200 at once) though no entry may come for a while.
            await context.send_initial_metadata(())
            async for message in stream:
                yield message
            if caller.end_message is not None:
                yield caller.end_message  # then the call completes with OK
        finally:
            caller.done()

    @rpc.unary
    async def ListWorkspaceApps(
        self, request: pb.ListWorkspaceAppsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWorkspaceAppsResponse:
        key = await self._key(context)
        workspace_id = self._workspace(key, request.workspace_id)
        return await _wired(self._cap.health, "ListWorkspaceApps (the health snapshots)").workspace_apps(workspace_id)

    @rpc.unary
    async def GetWorkspaceOverview(
        self, request: pb.GetWorkspaceOverviewRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetWorkspaceOverviewResponse:
        key = await self._key(context)
        workspace_id = self._workspace(key, request.workspace_id)
        return await _wired(self._cap.overview, "GetWorkspaceOverview (store and Prometheus summary)").overview(
            workspace_id
        )

    @rpc.unary
    async def ListAlerts(
        self, request: pb.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAlertsResponse:
        key = await self._key(context)
        workspace_id = self._workspace(key, request.workspace_id)
        app_id = validation.optional_id("app_id", request.app_id)
        limit = validation.limit("limit", request.limit, default=50, maximum=500)
        resolved = request.resolved if request.HasField("resolved") else None
        return await self._alerts.list(workspace_id, app_id=app_id, resolved=resolved, limit=limit)

    @rpc.unary
    async def ResolveAlert(self, request: pb.ResolveAlertRequest, context: grpc.aio.ServicerContext) -> pb.Alert:
        key = await self._key(context)
        workspace_id = self._workspace(key, request.workspace_id)
        alert_id = validation.require_id("alert_id", request.alert_id)
        return await self._alerts.resolve(workspace_id, alert_id, key.id)

    @rpc.unary
    async def AcknowledgeAlert(
        self, request: pb.AcknowledgeAlertRequest, context: grpc.aio.ServicerContext
    ) -> pb.Alert:
        key = await self._key(context)
        workspace_id = self._workspace(key, request.workspace_id)
        alert_id = validation.require_id("alert_id", request.alert_id)
        note = validation.max_length("note", request.note, MAX_NOTE)
        until = _future_ns("until", request.until) if request.HasField("until") else None
        return await self._alerts.acknowledge(workspace_id, alert_id, key.id, note, until)

    @rpc.unary
    async def CreateSilence(self, request: pb.CreateSilenceRequest, context: grpc.aio.ServicerContext) -> pb.Silence:
        key = await self._key(context)
        workspace_id = self._workspace(key, request.workspace_id)
        return await self._silences.create(workspace_id, key.id, request.silence)

    @rpc.unary
    async def ListSilences(
        self, request: pb.ListSilencesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSilencesResponse:
        key = await self._key(context)
        workspace_id = self._workspace(key, request.workspace_id)
        limit = validation.limit("limit", request.limit, default=100, maximum=500)
        state = None
        if request.HasField("state"):
            number = validation.require_enum("state", request.state, pb.SilenceState.DESCRIPTOR)
            state = SilenceState(enum_to_json(pb.SilenceState.DESCRIPTOR, number))
        return await self._silences.list(workspace_id, state=state, limit=limit)

    @rpc.unary
    async def GetSilence(self, request: pb.GetSilenceRequest, context: grpc.aio.ServicerContext) -> pb.Silence:
        key = await self._key(context)
        workspace_id = self._workspace(key, request.workspace_id)
        silence_id = validation.require_id("silence_id", request.silence_id)
        return await self._silences.get(workspace_id, silence_id)

    @rpc.unary
    async def UpdateSilence(self, request: pb.UpdateSilenceRequest, context: grpc.aio.ServicerContext) -> pb.Silence:
        key = await self._key(context)
        workspace_id = self._workspace(key, request.workspace_id)
        silence_id = validation.require_id("silence_id", request.silence_id)
        return await self._silences.update(workspace_id, silence_id, request.silence)

    @rpc.unary
    async def ExpireSilence(self, request: pb.ExpireSilenceRequest, context: grpc.aio.ServicerContext) -> pb.Silence:
        key = await self._key(context)
        workspace_id = self._workspace(key, request.workspace_id)
        silence_id = validation.require_id("silence_id", request.silence_id)
        return await self._silences.expire(workspace_id, silence_id)

    @rpc.unary
    async def CreateNotificationChannel(
        self, request: pb.CreateNotificationChannelRequest, context: grpc.aio.ServicerContext
    ) -> pb.NotificationChannel:
        key = await self._key(context)
        workspace_id = self._workspace(key, request.workspace_id)
        return await self._channels.create(workspace_id, request.channel)

    @rpc.unary
    async def ListNotificationChannels(
        self, request: pb.ListNotificationChannelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListNotificationChannelsResponse:
        key = await self._key(context)
        workspace_id = self._workspace(key, request.workspace_id)
        return await self._channels.list(workspace_id)

    @rpc.unary
    async def GetNotificationChannel(
        self, request: pb.GetNotificationChannelRequest, context: grpc.aio.ServicerContext
    ) -> pb.NotificationChannel:
        key = await self._key(context)
        workspace_id, channel_id = self._channel_ids(key, request)
        return await self._channels.get(workspace_id, channel_id)

    @rpc.unary
    async def UpdateNotificationChannel(
        self, request: pb.UpdateNotificationChannelRequest, context: grpc.aio.ServicerContext
    ) -> pb.NotificationChannel:
        key = await self._key(context)
        workspace_id, channel_id = self._channel_ids(key, request)
        return await self._channels.update(workspace_id, channel_id, request.channel)

    @rpc.unary
    async def DeleteNotificationChannel(
        self, request: pb.DeleteNotificationChannelRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteNotificationChannelResponse:
        key = await self._key(context)
        workspace_id, channel_id = self._channel_ids(key, request)
        return await self._channels.delete(workspace_id, channel_id)

    @rpc.unary
    async def TestNotificationChannel(
        self, request: pb.TestNotificationChannelRequest, context: grpc.aio.ServicerContext
    ) -> pb.Delivery:
        key = await self._key(context)
        workspace_id, channel_id = self._channel_ids(key, request)
        channel = await self._channels.record(workspace_id, channel_id)
        tester = _wired(self._tester, "TestNotificationChannel (the notification sender)")
        return delivery_message(await tester.send_test(channel, now_ns()))

    @rpc.unary
    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeliveriesResponse:
        key = await self._key(context)
        workspace_id, channel_id = self._channel_ids(key, request)
        limit = validation.limit("limit", request.limit, default=50, maximum=500)
        status = None
        if request.HasField("status"):
            number = validation.require_enum("status", request.status, pb.DeliveryStatus.DESCRIPTOR)
            status = DeliveryStatus(enum_to_json(pb.DeliveryStatus.DESCRIPTOR, number))
        return await self._channels.deliveries(workspace_id, channel_id, status=status, limit=limit)

    def _channel_ids(self, key: ApiKey, request: _ChannelRequest) -> tuple[str, str]:
        workspace_id = self._workspace(key, request.workspace_id)
        return workspace_id, validation.require_id("channel_id", request.channel_id)


class StreamCaller:
    """One StreamAppLogs call as the log stream hub sees it: its key, a re-check of that key, and its end.

    When the hub ends the stream, the servicer sends ``end_message`` after the last message. A client that
    reads nothing cannot receive it: after ``END_GRACE_S`` the call is closed with a status instead (queued
    behind what the client has not read) and the server's side of it is released at once.
    """

    def __init__(self, key: ApiKey, auth: Authenticator, context: grpc.aio.ServicerContext):
        self.key_id = key.id
        self._auth = auth
        self._context = context
        self._task = asyncio.current_task()
        self.end_message: pb.StreamAppLogsResponse | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    async def key_valid(self) -> bool:
        try:
            await self._auth.workspace_key(self._context, fresh=True)  # the store's answer, not this process's cache
        except Unauthenticated:
            return False
        return True

    def end(self, reason: str, cursor: str) -> None:
        self.end_message = pb.StreamAppLogsResponse(end=pb.StreamEnd(reason=reason), cursor=cursor)
        if self._close_timer is None:
            self._close_timer = asyncio.get_running_loop().call_later(END_GRACE_S, self._close, reason, cursor)

    def done(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()

    def _close(self, reason: str, cursor: str) -> None:
        log.info(
            "StreamAppLogs: the client did not take its end (%s) within %g s; closing the call", reason, END_GRACE_S
        )
        status = StreamClosed(reason, cursor).to_status()
        sending = asyncio.create_task(_send_status(self._context, status))
        _CLOSING.add(sending)
        sending.add_done_callback(_CLOSING.discard)
        if self._task is not None:
            self._task.cancel()  # frees the handler (and the hub's stream) now, whatever the client does


_CLOSED_BY_REASON: dict[str, tuple[grpc.StatusCode, str, str]] = {
    "slow_consumer": (grpc.StatusCode.RESOURCE_EXHAUSTED, "SLOW_CONSUMER", "the client read nothing for too long"),
    "revoked_key": (grpc.StatusCode.UNAUTHENTICATED, "KEY_REVOKED", "the API key was revoked"),
    "lifetime": (grpc.StatusCode.UNAVAILABLE, "STREAM_LIFETIME", "the stream reached its maximum lifetime"),
    "server_shutting_down": (grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN", "the server is shutting down"),
}


class StreamClosed(ServiceError):
    """The status of a stream the server ended whose client did not take the end message (it reads nothing)."""

    def __init__(self, end_reason: str, cursor: str):
        code, reason, words = _CLOSED_BY_REASON.get(
            end_reason, (grpc.StatusCode.UNAVAILABLE, "STREAM_ENDED", "the server ended the stream")
        )
        self.code = code
        super().__init__(
            f"the log stream ended: {words}; a new call with the last cursor received resumes",
            reason=reason,
            metadata={"end_reason": end_reason, "cursor": cursor},
        )


_CLOSING: set[asyncio.Task[None]] = set()


async def _send_status(context: grpc.aio.ServicerContext, status: grpc.Status) -> None:
    """Sends the status (it leaves once the client has read what is queued before it); the call may be gone."""
    # Aborting raises by design once the status is sent; a call the client cancelled refuses the batch.
    with contextlib.suppress(Exception):
        await context.abort_with_status(status)


class _AppRequest(Protocol):
    workspace_id: str
    app_id: str


class _ChannelRequest(Protocol):
    workspace_id: str
    channel_id: str


def _future_ns(field: str, value: timestamp_pb2.Timestamp) -> int:
    """A request's time that must be in the future, as nanoseconds."""
    ns = validation.timestamp_ns(field, value)
    if ns <= now_ns():
        raise InvalidArgument(field, "must be in the future")
    return ns
