"""Notification channels, the workspace-facing side: create, read, update and delete them, and read their delivery
log (CreateNotificationChannel … ListDeliveries).

Decisions (docs/notifications.md):

* The signing secret (``whsec_`` + 32 random bytes, URL-safe base64) is made for every channel and shown once, in
  the create call's response; every other response carries ``null``.
* An Alertmanager channel takes no ``format`` (it is stored as ``alertmanager``, which is what it is sent), no
  reminders (Alertmanager repeats by itself), and only the ``fired`` and ``resolved`` events; asking for more is
  INVALID_ARGUMENT naming the field.
* ``events`` empty means every event an alert can have; ``test`` is not one to subscribe to: TestNotificationChannel
  sends it whatever the channel's events.
* The cap on channels per workspace answers FAILED_PRECONDITION (delete one first); waiting does not help.
"""

from __future__ import annotations

import dataclasses
import secrets

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import validation
from server.config import NotifySettings
from server.convert import enum_to_json, json_numbers, now_ns, timestamp
from server.errors import FailedPrecondition, InvalidArgument, NotFound
from server.ids import new_id
from server.notify.destinations import check_url
from server.states import ChannelKind, DeliveryStatus, NotificationEvent, PayloadFormat
from server.store import Store
from server.store.records import Channel, Delivery

MAX_NAME = 100
MIN_REMINDER_S = 60
MAX_REMINDER_S = 604_800
SECRET_PREFIX = "whsec_"

# Every event an alert can have, in the order of the proto; an Alertmanager is told only of these two.
ALERT_EVENTS = (
    NotificationEvent.FIRED,
    NotificationEvent.ACKNOWLEDGED,
    NotificationEvent.RESOLVED,
    NotificationEvent.REMINDER,
)
ALERTMANAGER_EVENTS = (NotificationEvent.FIRED, NotificationEvent.RESOLVED)

_KINDS = json_numbers(pb.ChannelKind.DESCRIPTOR)
_FORMATS = json_numbers(pb.PayloadFormat.DESCRIPTOR)
_EVENTS = json_numbers(pb.NotificationEvent.DESCRIPTOR)
_STATUSES = json_numbers(pb.DeliveryStatus.DESCRIPTOR)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def channel_message(channel: Channel, *, with_secret: bool = False) -> pb.NotificationChannel:
    message = pb.NotificationChannel(
        id=channel.id,
        name=channel.name,
        kind=_KINDS[channel.kind],  # type: ignore[arg-type]
        url=channel.url,
        format=_FORMATS[channel.format],  # type: ignore[arg-type]
        events=[_EVENTS[e] for e in channel.events],  # type: ignore[misc]
        reminder_interval_seconds=channel.reminder_s,
        created_at=timestamp(channel.created_ns),
    )
    if with_secret:
        message.signing_secret = channel.secret
    return message


def delivery_message(delivery: Delivery) -> pb.Delivery:
    message = pb.Delivery(
        id=delivery.id,
        channel_id=delivery.channel_id,
        event=_EVENTS[delivery.event],  # type: ignore[arg-type]
        created_at=timestamp(delivery.created_ns),
        status=_STATUSES[delivery.status],  # type: ignore[arg-type]
        attempts=delivery.attempts,
        last_attempt_at=timestamp(delivery.last_attempt_ns),
    )
    if delivery.alert_id is not None:
        message.alert_id = delivery.alert_id
    if delivery.status is DeliveryStatus.PENDING and delivery.next_attempt_ns is not None:
        message.next_attempt_at.CopyFrom(timestamp(delivery.next_attempt_ns))
    if delivery.last_status_code is not None:
        message.last_status_code = delivery.last_status_code
    if delivery.last_error is not None:
        message.last_error = delivery.last_error
    return message


@dataclasses.dataclass(frozen=True)
class _Settings:
    """What a request's NotificationChannel asks for once checked against its kind."""

    name: str
    url: str
    format: PayloadFormat
    events: tuple[NotificationEvent, ...]
    reminder_s: int


def _kind(number: int) -> ChannelKind:
    validation.require_enum("channel.kind", number, pb.ChannelKind.DESCRIPTOR)
    return ChannelKind(enum_to_json(pb.ChannelKind.DESCRIPTOR, number))


def _name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidArgument("channel.name", f"is required: 1 to {MAX_NAME} characters")
    return validation.max_length("channel.name", name, MAX_NAME)


def _format(kind: ChannelKind, number: int) -> PayloadFormat:
    if kind is ChannelKind.ALERTMANAGER:
        if number:
            raise InvalidArgument(
                "channel.format", "is for webhook channels only; leave it unset for an alertmanager channel"
            )
        return PayloadFormat.ALERTMANAGER
    number = validation.require_enum(
        "channel.format", number, pb.PayloadFormat.DESCRIPTOR, default=_FORMATS[PayloadFormat.SERVICE]
    )
    return PayloadFormat(enum_to_json(pb.PayloadFormat.DESCRIPTOR, number))


def _events(kind: ChannelKind, numbers: list[int]) -> tuple[NotificationEvent, ...]:
    allowed = ALERTMANAGER_EVENTS if kind is ChannelKind.ALERTMANAGER else ALERT_EVENTS
    checked = validation.enum_list("channel.events", numbers, pb.NotificationEvent.DESCRIPTOR)
    events = tuple(NotificationEvent(enum_to_json(pb.NotificationEvent.DESCRIPTOR, n)) for n in checked)
    for event in events:
        if event is NotificationEvent.TEST:
            raise InvalidArgument(
                "channel.events", "'test' is not subscribed to: TestNotificationChannel sends it to any channel"
            )
        if event not in allowed:
            raise InvalidArgument(
                "channel.events",
                f"{event.value!r} is not sent to {kind.value} channels",
                allowed=[e.value for e in allowed],
            )
    return events or allowed


def _reminder(kind: ChannelKind, seconds: int) -> int:
    if seconds == 0:
        return 0
    if kind is ChannelKind.ALERTMANAGER:
        raise InvalidArgument(
            "channel.reminder_interval_seconds",
            "must be 0 for an alertmanager channel: Alertmanager repeats notifications by itself",
        )
    if not MIN_REMINDER_S <= seconds <= MAX_REMINDER_S:
        raise InvalidArgument(
            "channel.reminder_interval_seconds",
            f"must be 0 (no reminders) or between {MIN_REMINDER_S} and {MAX_REMINDER_S}, got {seconds}",
        )
    return seconds


class Channels:
    """A workspace's notification channels and their delivery logs."""

    def __init__(self, store: Store, settings: NotifySettings):
        self._store = store
        self._allow_private = settings.allow_private_destinations
        self._max_channels = settings.max_channels_per_workspace

    def _settings(self, kind: ChannelKind, message: pb.NotificationChannel) -> _Settings:
        return _Settings(
            name=_name(message.name),
            url=check_url(message.url, field="channel.url", allow_private=self._allow_private),
            format=_format(kind, message.format),
            events=_events(kind, list(message.events)),
            reminder_s=_reminder(kind, message.reminder_interval_seconds),
        )

    async def create(self, workspace_id: str, message: pb.NotificationChannel) -> pb.NotificationChannel:
        kind = _kind(message.kind)
        asked = self._settings(kind, message)
        if len(await self._store.list_channels(workspace_id)) >= self._max_channels:
            raise FailedPrecondition(
                f"the workspace has {self._max_channels} notification channels, the most it may have;"
                " delete one before creating another",
                reason="CHANNEL_LIMIT",
                metadata={"limit": str(self._max_channels)},
            )
        now = now_ns()
        channel = Channel(
            id=new_id("chn", now),
            workspace_id=workspace_id,
            kind=kind,
            secret=new_secret(),
            created_ns=now,
            **dataclasses.asdict(asked),
        )
        return channel_message(await self._store.create_channel(channel), with_secret=True)

    async def list(self, workspace_id: str) -> pb.ListNotificationChannelsResponse:
        channels = await self._store.list_channels(workspace_id)
        return pb.ListNotificationChannelsResponse(channels=[channel_message(c) for c in channels])

    async def get(self, workspace_id: str, channel_id: str) -> pb.NotificationChannel:
        return channel_message(await self.record(workspace_id, channel_id))

    async def record(self, workspace_id: str, channel_id: str) -> Channel:
        """The channel, or NotFound (the same for another workspace's channel as for none)."""
        channel = await self._store.get_channel(workspace_id, channel_id)
        if channel is None:
            raise NotFound("channel", channel_id)
        return channel

    async def update(
        self, workspace_id: str, channel_id: str, message: pb.NotificationChannel
    ) -> pb.NotificationChannel:
        validation.optional_enum("channel.kind", message.kind, pb.ChannelKind.DESCRIPTOR)
        current = await self.record(workspace_id, channel_id)
        if message.kind and message.kind != _KINDS[current.kind]:
            raise InvalidArgument(
                "channel.kind", f"cannot be changed (the channel is {current.kind.value}); leave it unset"
            )
        asked = self._settings(current.kind, message)
        saved = await self._store.update_channel(dataclasses.replace(current, **dataclasses.asdict(asked)))
        if saved is None:
            raise NotFound("channel", channel_id)
        return channel_message(saved)

    async def delete(self, workspace_id: str, channel_id: str) -> pb.DeleteNotificationChannelResponse:
        if not await self._store.delete_channel(workspace_id, channel_id):
            raise NotFound("channel", channel_id)
        return pb.DeleteNotificationChannelResponse()

    async def deliveries(
        self, workspace_id: str, channel_id: str, *, status: DeliveryStatus | None, limit: int
    ) -> pb.ListDeliveriesResponse:
        await self.record(workspace_id, channel_id)  # a missing channel is NOT_FOUND, not an empty log
        found = await self._store.list_deliveries(workspace_id, channel_id, status=status, limit=limit)
        return pb.ListDeliveriesResponse(deliveries=[delivery_message(d) for d in found])
