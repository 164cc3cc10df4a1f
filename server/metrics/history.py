"""GetAppHealthHistory: an app's health transitions over a window, and its uptime over 24 h, 7 d and 30 d.

Both come from the health snapshots the evaluator writes on every tick (:mod:`server.metrics.health`), kept for
``[health] snapshot_retention_s`` (31 days by default, so that the 30-day window is whole). Nothing is sampled or
estimated: every evaluation in a window counts once.

- A **transition** is an evaluation whose status differs from the app's evaluation before it (the first kept
  evaluation is one too, without a previous status). Its reasons are that evaluation's.
- **Uptime** over a window ending now is the share of the window's evaluations in which the app was
  ``healthy`` or ``degraded``, among those with a known status: ``unknown`` evaluations (no data: Prometheus
  unavailable, or no ``up`` sample) are counted apart and left out of the share.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import validation
from server.convert import NS_PER_S, json_numbers, now_ns, set_timestamp
from server.errors import InvalidArgument
from server.states import HealthStatus
from server.store import Store
from server.store.records import App

HOUR_NS = 3600 * NS_PER_S
DAY_NS = 24 * HOUR_NS
# The window a call reads when it gives no start_time.
DEFAULT_WINDOW_NS = DAY_NS
# The longest window a call may ask for: the retention's default. It bounds the index range a call walks.
MAX_WINDOW_NS = 31 * DAY_NS
# The uptime windows, in the reply's order.
UPTIME_WINDOWS: tuple[tuple[pb.Period.ValueType, int], ...] = (
    (pb.PERIOD_24H, DAY_NS),
    (pb.PERIOD_7D, 7 * DAY_NS),
    (pb.PERIOD_30D, 30 * DAY_NS),
)
_UP = (HealthStatus.HEALTHY, HealthStatus.DEGRADED)
_STATUS_NUMBERS = json_numbers(pb.HealthStatus.DESCRIPTOR)


@dataclasses.dataclass(frozen=True)
class Window:
    """A call's window of transitions, [start_ns, end_ns), and the time the uptime windows end at (included)."""

    start_ns: int
    end_ns: int
    now_ns: int


def window_of(request: pb.GetAppHealthHistoryRequest, at_ns: int) -> Window:
    """The request's window, checked: ``end_time`` defaults to ``at_ns``, ``start_time`` to a day before it."""
    end = validation.timestamp_ns("end_time", request.end_time) if request.HasField("end_time") else at_ns
    if not request.HasField("start_time"):
        return Window(max(end - DEFAULT_WINDOW_NS, 0), end, at_ns)
    start = validation.timestamp_ns("start_time", request.start_time)
    if start >= end:
        raise InvalidArgument("start_time", "must be before end_time (which defaults to now)")
    if end - start > MAX_WINDOW_NS:
        raise InvalidArgument("start_time", f"may be at most {MAX_WINDOW_NS // DAY_NS} days before end_time")
    return Window(start, end, at_ns)


def uptime_percent(counts: dict[HealthStatus, int]) -> float | None:
    """The documented share, in percent; None when no evaluation had a known status."""
    up = sum(counts.get(status, 0) for status in _UP)
    known = up + counts.get(HealthStatus.UNHEALTHY, 0)
    return None if known == 0 else 100 * up / known


class HealthHistory:
    """The ``HistoryReader`` capability: two store reads of the app's snapshots per call (both on indexes)."""

    def __init__(self, store: Store, *, clock: Callable[[], int] = now_ns):
        self._store = store
        self._clock = clock

    def check_window(self, request: pb.GetAppHealthHistoryRequest) -> None:
        """Raises InvalidArgument naming the field when the request's window is not one a call may ask for (before
        the app is looked up: a bad request is refused whether or not the app exists)."""
        window_of(request, self._clock())

    async def app_history(
        self, app: App, request: pb.GetAppHealthHistoryRequest, limit: int
    ) -> pb.GetAppHealthHistoryResponse:
        """The reply for an app of the caller's workspace; ``limit`` transitions at most (checked by the caller)."""
        window = window_of(request, self._clock())
        found = await self._store.health_transitions(app.id, window.start_ns, window.end_ns, limit + 1)
        reply = pb.GetAppHealthHistoryResponse(app_id=app.id, truncated=len(found.transitions) > limit)
        set_timestamp(reply.start_time, window.start_ns)
        set_timestamp(reply.end_time, window.end_ns)
        if found.status_at_start is not None:
            reply.status_at_start = _STATUS_NUMBERS[found.status_at_start]  # type: ignore[assignment]
        for transition in found.transitions[:limit]:
            item = reply.transitions.add(status=_STATUS_NUMBERS[transition.status], reasons=transition.reasons)
            set_timestamp(item.at, transition.at_ns)
            if transition.previous is not None:
                item.previous_status = _STATUS_NUMBERS[transition.previous]  # type: ignore[assignment]
        await self._add_uptime(reply, app.id, window.now_ns)
        return reply

    async def _add_uptime(self, reply: pb.GetAppHealthHistoryResponse, app_id: str, now: int) -> None:
        starts = tuple(now - length for _, length in UPTIME_WINDOWS)
        counts = await self._store.health_status_counts(app_id, (starts[0], starts[1], starts[2]), now)
        for index, (period, _) in enumerate(UPTIME_WINDOWS):
            in_window = {status: per_window[index] for status, per_window in counts.items()}
            item = reply.uptime.add(
                period=period,
                evaluations=sum(in_window.values()),
                healthy=in_window.get(HealthStatus.HEALTHY, 0),
                degraded=in_window.get(HealthStatus.DEGRADED, 0),
                unhealthy=in_window.get(HealthStatus.UNHEALTHY, 0),
                unknown=in_window.get(HealthStatus.UNKNOWN, 0),
            )
            percent = uptime_percent(in_window)
            if percent is not None:
                item.uptime_percent = percent
