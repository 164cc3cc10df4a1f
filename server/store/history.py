"""GetAppHealthHistory's reads, the same on both backends: SQL text per backend, the walk over it here.

Both read the index ``health_snapshots_by_status`` (app_id, status, checked_ns), so that neither costs a pass
over the window's rows with the per-row work of a window function or an aggregate:

- **Transitions**, newest first, found by seeks whatever the window's length: from the newest evaluation before
  the window's end, the last evaluation before it with another status ends the previous run (one seek per
  status), and the first evaluation after that one starts the current run: a transition. Five seeks per
  transition, then the same from the previous run, until the limit or the window's start.
- **Status counts** of nested windows ending at one time: one range count per status over each disjoint
  segment between the windows' starts (the index holds each status's times in order, so a count steps through
  the matching entries only and never reads a row), summed from the newest segment outward.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from server.states import HealthStatus
from server.store.records import HealthTransition, HealthTransitions

# The statuses in the order the per-status statements list them.
STATUSES = tuple(HealthStatus)
_TABLE = "health_snapshots"


def latest_before_sql(p: Callable[[int], str]) -> str:
    """(checked_ns, status) of the app's newest evaluation before a time: a seek on the primary key."""
    return (
        f"SELECT checked_ns, status FROM {_TABLE} WHERE app_id = {p(1)} AND checked_ns < {p(2)}"
        " ORDER BY checked_ns DESC LIMIT 1"
    )


def last_of_each_status_sql(p: Callable[[int], str]) -> str:
    """The time of the app's newest evaluation before a time, of each status in STATUSES' order (NULL: none)."""
    return "SELECT " + ", ".join(
        f"(SELECT checked_ns FROM {_TABLE} WHERE app_id = {p(1)} AND status = '{status}' AND checked_ns < {p(2)}"
        " ORDER BY checked_ns DESC LIMIT 1)"
        for status in STATUSES
    )


def first_after_sql(p: Callable[[int], str]) -> str:
    """(checked_ns, reasons) of the app's oldest evaluation after a time: a seek on the primary key."""
    return (
        f"SELECT checked_ns, reasons FROM {_TABLE} WHERE app_id = {p(1)} AND checked_ns > {p(2)}"
        " ORDER BY checked_ns LIMIT 1"
    )


def segment_counts_sql(p: Callable[[int], str]) -> str:
    """The app's evaluations of each status (STATUSES' order) in three segments (after, until], one column per
    (segment, status), segment by segment. Parameters: the app, then each segment's after and until."""
    return "SELECT " + ", ".join(
        f"(SELECT count(*) FROM {_TABLE} WHERE app_id = {p(1)} AND status = '{status}'"
        f" AND checked_ns > {p(2 + 2 * segment)} AND checked_ns <= {p(3 + 2 * segment)})"
        for segment in range(3)
        for status in STATUSES
    )


Row = Sequence[Any]
Read = Callable[[int], Awaitable[Row | None]]


async def walk_transitions(
    latest_before: Read,
    last_of_each_status: Read,
    first_after: Callable[[int], Awaitable[tuple[int, tuple[str, ...]] | None]],
    start_ns: int,
    end_ns: int,
    limit: int,
) -> HealthTransitions:
    """The transitions in [start_ns, end_ns), newest first, at most ``limit``; each read is one statement."""
    before = await latest_before(start_ns)
    found: list[HealthTransition] = []
    current = await latest_before(end_ns)
    while current is not None and len(found) < limit:
        at_ns, status = current[0], HealthStatus(current[1])
        times = await last_of_each_status(at_ns)
        assert times is not None  # one row of scalar subqueries, always
        previous = max(
            ((t, other) for other, t in zip(STATUSES, times, strict=True) if other is not status and t is not None),
            default=None,
        )
        first = await first_after(-1 if previous is None else previous[0])
        if first is None or first[0] < start_ns:  # the run began before the window
            break
        found.append(HealthTransition(first[0], status, None if previous is None else previous[1], first[1]))
        current = previous
    return HealthTransitions(None if before is None else HealthStatus(before[1]), found)


def segments(after_ns: tuple[int, int, int], until_ns: int) -> tuple[list[int], list[int]]:
    """The statement's parameters after the app (each segment's after and until, newest segment first), and the
    index in ``after_ns`` of the window each segment completes."""
    order = sorted(range(3), key=lambda index: after_ns[index], reverse=True)
    params, upper = [], until_ns
    for index in order:
        lower = min(after_ns[index], upper)  # an empty segment when a window is not nested in the next
        params += [lower, upper]
        upper = lower
    return params, order


def window_counts(row: Row, order: list[int]) -> dict[HealthStatus, tuple[int, int, int]]:
    """Per status, the counts of the three windows (in the caller's order), from the segments' columns."""
    per_window: dict[HealthStatus, list[int]] = {status: [0, 0, 0] for status in STATUSES}
    running = dict.fromkeys(STATUSES, 0)
    for segment, index in enumerate(order):
        for position, status in enumerate(STATUSES):
            running[status] += int(row[segment * len(STATUSES) + position])
            per_window[status][index] = running[status]
    return {status: (c[0], c[1], c[2]) for status, c in per_window.items() if any(c)}
