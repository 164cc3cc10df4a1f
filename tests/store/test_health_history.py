"""GetAppHealthHistory's two reads, on both backends, against what a plain walk of the crafted rows gives: the
transitions of a window (with the status before it and each transition's reasons) and the status counts of three
windows ending at one time."""

from __future__ import annotations

import pathlib
import random
from collections.abc import AsyncIterator

import pytest

from server.states import HealthStatus
from server.store import Store, open_store
from server.store.records import App, HealthSnapshot
from tests.store.backends import BACKENDS, fresh_database

pytestmark = pytest.mark.timeout(60)

S = 10**9
H, D, U, K = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY, HealthStatus.UNKNOWN


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[Store]:
    store = await open_store(fresh_database(request, tmp_path))
    await store.create_workspace("ws_a", "A", 1)
    for app_id in ("app_a", "app_b"):
        await store.upsert_app(App(app_id, "ws_a", app_id, app_id, 512, 1, 1))
    try:
        yield store
    finally:
        await store.close()


def snapshot(app_id: str, at_s: int, status: HealthStatus, reasons: tuple[str, ...] = ()) -> HealthSnapshot:
    return HealthSnapshot(app_id, "ws_a", at_s * S, status, None, 1, None, None, reasons)


def reasons_of(status: HealthStatus, at_s: int) -> tuple[str, ...]:
    # Reasons that differ from one evaluation to the next, so that a transition's must be its own evaluation's.
    return () if status is H else (f"{status} at {at_s}",)


async def test_transitions_are_the_status_changes_with_their_reasons_newest_first(store: Store) -> None:
    statuses = [H, H, D, D, D, U, K, K, H, H, U]  # at 100, 110, ..., 200
    await store.save_snapshots(
        [snapshot("app_a", 100 + 10 * i, s, reasons_of(s, 100 + 10 * i)) for i, s in enumerate(statuses)]
    )
    # Another app's evaluations at the same times are never mixed in.
    await store.save_snapshots([snapshot("app_b", 100 + 10 * i, U if i % 2 else H) for i in range(11)])

    whole = await store.health_transitions("app_a", 0, 1000 * S, 100)
    assert whole.status_at_start is None
    assert [(t.at_ns // S, t.status, t.previous, t.reasons) for t in whole.transitions] == [
        (200, U, H, ("unhealthy at 200",)),
        (180, H, K, ()),
        (160, K, U, ("unknown at 160",)),
        (150, U, D, ("unhealthy at 150",)),
        (120, D, H, ("degraded at 120",)),
        (100, H, None, ()),  # the first evaluation kept: no previous status
    ]

    # A window starting inside a run: the status before it is the last evaluation's before start; the window's
    # first evaluation is a transition only if it differs from that one. Start included, end excluded.
    inside = await store.health_transitions("app_a", 130 * S, 180 * S, 100)
    assert inside.status_at_start is D
    assert [(t.at_ns // S, t.status, t.previous) for t in inside.transitions] == [(160, K, U), (150, U, D)]
    edges = await store.health_transitions("app_a", 150 * S, 181 * S, 100)
    assert edges.status_at_start is D
    assert [(t.at_ns // S, t.previous) for t in edges.transitions] == [(180, K), (160, U), (150, D)]

    # The limit keeps the newest.
    limited = await store.health_transitions("app_a", 0, 1000 * S, 2)
    assert [t.at_ns // S for t in limited.transitions] == [200, 180]
    # A window with no evaluation.
    empty = await store.health_transitions("app_a", 500 * S, 600 * S, 10)
    assert (empty.status_at_start, list(empty.transitions)) == (U, [])
    assert list((await store.health_transitions("app_missing", 0, 1000 * S, 10)).transitions) == []


async def test_status_counts_of_three_windows_are_exact(store: Store) -> None:
    rng = random.Random(17)
    now_s = 10_000
    times = sorted(rng.sample(range(1, now_s + 50), 600))  # a few after "now": never counted
    rows = [(t, rng.choice([H, H, H, D, U, K])) for t in times]
    await store.save_snapshots([snapshot("app_a", t, s) for t, s in rows])
    await store.save_snapshots([snapshot("app_b", t, U) for t in range(1, now_s, 7)])
    after = (now_s - 1000, now_s - 4000, now_s - 9000)

    counts = await store.health_status_counts("app_a", (after[0] * S, after[1] * S, after[2] * S), now_s * S)

    for index, start in enumerate(after):
        expected: dict[HealthStatus, int] = {}
        for t, s in rows:
            if start < t <= now_s:  # (after, until]
                expected[s] = expected.get(s, 0) + 1
        assert {s: per_window[index] for s, per_window in counts.items() if per_window[index]} == expected
    assert await store.health_status_counts("app_missing", (1, 2, 3), now_s * S) == {}


async def test_window_bounds_are_exclusive_then_inclusive(store: Store) -> None:
    await store.save_snapshots([snapshot("app_a", t, H) for t in (100, 200, 300)])
    counts = await store.health_status_counts("app_a", (100 * S, 199 * S, 0), 300 * S)
    assert counts == {H: (2, 2, 3)}  # 100 is not after 100; 300 is at the end, included


async def test_transitions_of_random_histories_and_windows_match_a_plain_walk(store: Store) -> None:
    rng = random.Random(5)
    times = sorted(rng.sample(range(1, 5000), 400))
    rows = [(t, rng.choice([H, H, D, U, K])) for t in times]
    await store.save_snapshots([snapshot("app_a", t, s, reasons_of(s, t)) for t, s in rows])
    for _ in range(25):
        start, end = sorted(rng.sample(range(0, 5100), 2))
        limit = rng.choice([1, 3, 1000])
        expected = [
            (t, s, previous, reasons_of(s, t))
            for (t, s), previous in zip(rows, [None, *(s for _, s in rows)], strict=False)
            if start <= t < end and s is not previous
        ][::-1][:limit]
        before = [s for t, s in rows if t < start]
        found = await store.health_transitions("app_a", start * S, end * S, limit)
        assert found.status_at_start == (before[-1] if before else None)
        assert [(t.at_ns // S, t.status, t.previous, t.reasons) for t in found.transitions] == expected, (start, end)
