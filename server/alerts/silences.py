"""Silences, the workspace-facing side: CreateSilence, ListSilences, GetSilence, UpdateSilence, ExpireSilence.

A silence's state is never stored: it is read off its window and the clock (:func:`state_at`). Silences are kept
after they end, for the record; expiring one ends its window now.

Decisions (docs/notifications.md):

* ``app_id`` must name an app of the workspace: otherwise INVALID_ARGUMENT naming ``silence.app_id``, the same
  answer for an app of another workspace and for no app at all (a silence of an app that was deleted since
  keeps its ``app_id`` through an update that leaves it unchanged).
* The cap on live (pending or active) silences answers FAILED_PRECONDITION, not RESOURCE_EXHAUSTED: waiting
  does not help (that status carries a Retry-After); expiring silences does. Replicas creating at once may pass
  it by a few.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import validation
from server.config import NotifySettings
from server.convert import enum_to_json, json_numbers, now_ns, timestamp
from server.errors import FailedPrecondition, InvalidArgument, NotFound
from server.ids import new_id
from server.states import AlertType, SilenceState
from server.store import Store
from server.store.records import Silence

MAX_COMMENT = 1024
MAX_DAYS = 366
_MAX_LENGTH_NS = MAX_DAYS * 86_400 * 1_000_000_000
_STATES = json_numbers(pb.SilenceState.DESCRIPTOR)
_TYPES = json_numbers(pb.AlertType.DESCRIPTOR)


class ActiveSilences:
    """The silences in effect at one moment (``Store.active_silences``), by workspace: which one matches an alert.
    The rules engine asks when an alert fires and before releasing it; the sender, before a reminder."""

    def __init__(self, silences: Iterable[Silence]):
        self._by_workspace: dict[str, list[Silence]] = {}
        for silence in silences:
            self._by_workspace.setdefault(silence.workspace_id, []).append(silence)

    def matching(self, workspace_id: str, app_id: str, alert_type: AlertType) -> str | None:
        """The id of a silence matching (app, type), the first found; None when none does."""
        for silence in self._by_workspace.get(workspace_id, ()):
            if silence.matches(app_id, alert_type):
                return silence.id
        return None


def state_at(silence: Silence, now: int) -> SilenceState:
    if now >= silence.ends_ns:
        return SilenceState.EXPIRED
    return SilenceState.PENDING if now < silence.starts_ns else SilenceState.ACTIVE


def silence_message(silence: Silence, now: int) -> pb.Silence:
    return pb.Silence(
        id=silence.id,
        app_id=silence.app_id or "",
        alert_types=[_TYPES[t] for t in silence.alert_types],  # type: ignore[misc]
        starts_at=timestamp(silence.starts_ns),
        ends_at=timestamp(silence.ends_ns),
        comment=silence.comment,
        created_by_key_id=silence.created_by,
        created_at=timestamp(silence.created_ns),
        state=_STATES[state_at(silence, now)],  # type: ignore[arg-type]
    )


@dataclasses.dataclass(frozen=True)
class _Matchers:
    """What a request's Silence asks for once checked (the window's start None: keep or now)."""

    app_id: str | None
    alert_types: tuple[AlertType, ...]
    starts_ns: int | None
    ends_ns: int
    comment: str


def _checked(message: pb.Silence) -> _Matchers:
    """The request's silence, its fields checked one by one (the window against the clock comes later)."""
    app_id = validation.optional_id("silence.app_id", message.app_id) or None
    numbers = validation.enum_list("silence.alert_types", message.alert_types, pb.AlertType.DESCRIPTOR)
    types = tuple(AlertType(enum_to_json(pb.AlertType.DESCRIPTOR, n)) for n in numbers)
    starts = validation.timestamp_ns("silence.starts_at", message.starts_at) if message.HasField("starts_at") else None
    if not message.HasField("ends_at"):
        raise InvalidArgument("silence.ends_at", "is required: when the silence ends")
    ends = validation.timestamp_ns("silence.ends_at", message.ends_at)
    comment = validation.max_length("silence.comment", message.comment, MAX_COMMENT)
    return _Matchers(app_id, types, starts, ends, comment)


def _check_window(starts_ns: int, ends_ns: int, now: int) -> None:
    if ends_ns <= now:
        raise InvalidArgument("silence.ends_at", "must be in the future")
    if ends_ns <= starts_ns:
        raise InvalidArgument("silence.ends_at", "must be after starts_at")
    if ends_ns - starts_ns > _MAX_LENGTH_NS:
        raise InvalidArgument("silence.ends_at", f"must be at most {MAX_DAYS} days after starts_at")


class Silences:
    """A workspace's silences: the checks, the live-silence cap, and the messages."""

    def __init__(self, store: Store, settings: NotifySettings):
        self._store = store
        self._max_live = settings.max_live_silences_per_workspace

    async def create(self, workspace_id: str, key_id: str, message: pb.Silence) -> pb.Silence:
        asked = _checked(message)
        now = now_ns()
        starts = now if asked.starts_ns is None else asked.starts_ns
        _check_window(starts, asked.ends_ns, now)
        await self._check_app(workspace_id, asked.app_id)
        if await self._store.count_live_silences(workspace_id, now) >= self._max_live:
            raise FailedPrecondition(
                f"the workspace has {self._max_live} pending or active silences, the most it may have;"
                " expire one (ExpireSilence) before creating another",
                reason="SILENCE_LIMIT",
                metadata={"limit": str(self._max_live)},
            )
        silence = Silence(
            id=new_id("sil", now),
            workspace_id=workspace_id,
            app_id=asked.app_id,
            alert_types=asked.alert_types,
            starts_ns=starts,
            ends_ns=asked.ends_ns,
            comment=asked.comment,
            created_by=key_id,
            created_ns=now,
        )
        return silence_message(await self._store.create_silence(silence), now)

    async def list(self, workspace_id: str, *, state: SilenceState | None, limit: int) -> pb.ListSilencesResponse:
        now = now_ns()
        found = await self._candidates(workspace_id, state, limit, now)
        if state is not None:
            found = [s for s in found if state_at(s, now) is state]
        return pb.ListSilencesResponse(silences=[silence_message(s, now) for s in found[:limit]])

    async def get(self, workspace_id: str, silence_id: str) -> pb.Silence:
        return silence_message(await self._existing(workspace_id, silence_id), now_ns())

    async def update(self, workspace_id: str, silence_id: str, message: pb.Silence) -> pb.Silence:
        asked = _checked(message)
        current = await self._existing(workspace_id, silence_id)
        now = now_ns()
        if state_at(current, now) is SilenceState.EXPIRED:
            raise FailedPrecondition(
                f"silence {silence_id!r} has expired and cannot be changed; create a new one",
                reason="SILENCE_EXPIRED",
                metadata={"id": silence_id},
            )
        starts = current.starts_ns if asked.starts_ns is None else asked.starts_ns
        _check_window(starts, asked.ends_ns, now)
        if asked.app_id != current.app_id:
            await self._check_app(workspace_id, asked.app_id)
        changed = dataclasses.replace(
            current,
            app_id=asked.app_id,
            alert_types=asked.alert_types,
            starts_ns=starts,
            ends_ns=asked.ends_ns,
            comment=asked.comment,
        )
        saved = await self._store.update_silence(changed)
        if saved is None:
            raise NotFound("silence", silence_id)
        return silence_message(saved, now)

    async def expire(self, workspace_id: str, silence_id: str) -> pb.Silence:
        """Ends the window now (a pending silence's start moves to now too); an expired one is left as it is."""
        current = await self._existing(workspace_id, silence_id)
        now = now_ns()
        if state_at(current, now) is SilenceState.EXPIRED:
            return silence_message(current, now)
        ended = dataclasses.replace(current, starts_ns=min(current.starts_ns, now), ends_ns=now)
        saved = await self._store.update_silence(ended)
        if saved is None:
            raise NotFound("silence", silence_id)
        return silence_message(saved, now)

    async def _existing(self, workspace_id: str, silence_id: str) -> Silence:
        silence = await self._store.get_silence(workspace_id, silence_id)
        if silence is None:
            raise NotFound("silence", silence_id)
        return silence

    async def _check_app(self, workspace_id: str, app_id: str | None) -> None:
        if app_id is not None and await self._store.get_app(workspace_id, app_id) is None:
            raise InvalidArgument("silence.app_id", f"{app_id!r} is not an app of this workspace")

    async def _candidates(self, workspace_id: str, state: SilenceState | None, limit: int, now: int) -> list[Silence]:
        """Enough of the workspace's silences, newest start first, to hold the first ``limit`` in ``state``.

        The store lists by start only. Pending silences start latest, so they lead that order; expired ones
        follow among at most the live count of others. Active ones can sit behind any number of expired ones
        that started later: they come from the store's silences in effect now instead.
        """
        if state is None:
            return await self._store.list_silences(workspace_id, limit=limit)
        if state is SilenceState.ACTIVE:
            active = [s for s in await self._store.active_silences(now) if s.workspace_id == workspace_id]
            return sorted(active, key=lambda s: (s.starts_ns, s.id), reverse=True)
        live = await self._store.count_live_silences(workspace_id, now)
        return await self._store.list_silences(workspace_id, limit=live + limit)
