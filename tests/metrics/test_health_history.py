"""GetAppHealthHistory's capability over a crafted month of snapshots on both store backends: exact uptime
percentages and counts for 24 h, 7 d and 30 d, the transitions with their reasons, the limit, and the window's
checks (INVALID_ARGUMENT naming the field)."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest
from google.protobuf import timestamp_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.errors import InvalidArgument
from server.metrics.history import _STATUS_NUMBERS, HealthHistory, uptime_percent, window_of
from server.states import HealthStatus
from server.store import Store, open_store
from server.store.records import App
from tests.metrics.history_data import DAY, EXPECTED, EXPECTED_PERCENT, HOUR, REASONS, TICK_S, D, H, K, S, U, month
from tests.store.backends import BACKENDS, fresh_database

pytestmark = pytest.mark.timeout(120)

NOW_S = 1_764_720_000  # 2025-12-03T00:00:00Z: the last crafted tick
CLOCK_NS = (NOW_S + 1) * S  # the call runs a second after it
APP = App("app_h", "ws_h", "api", "api", 512, 1, 1)
_NUMBERS = {
    H: pb.HEALTH_STATUS_HEALTHY,
    D: pb.HEALTH_STATUS_DEGRADED,
    U: pb.HEALTH_STATUS_UNHEALTHY,
    K: pb.HEALTH_STATUS_UNKNOWN,
}


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[Store]:
    store = await open_store(fresh_database(request, tmp_path))
    await store.create_workspace(APP.workspace_id, "H", 1)
    await store.upsert_app(APP)
    snapshots = month(APP.id, APP.workspace_id, NOW_S)
    for day in range(0, len(snapshots), 2880):  # a day a transaction, as ticks would write them over time
        await store.save_snapshots(snapshots[day : day + 2880])
    try:
        yield store
    finally:
        await store.close()


def ts(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


def request(**fields: object) -> pb.GetAppHealthHistoryRequest:
    return pb.GetAppHealthHistoryRequest(**{"workspace_id": APP.workspace_id, "app_id": APP.id, **fields})  # type: ignore[arg-type]


async def test_uptime_over_24h_7d_and_30d_is_the_documented_share_exactly(store: Store) -> None:
    reply = await HealthHistory(store, clock=lambda: CLOCK_NS).app_history(APP, request(), 100)
    got = {
        pb.Period.Name(w.period): (w.uptime_percent, w.evaluations, w.healthy, w.degraded, w.unhealthy, w.unknown)
        for w in reply.uptime
    }
    assert [w.period for w in reply.uptime] == [pb.PERIOD_24H, pb.PERIOD_7D, pb.PERIOD_30D]
    for name, period in (("24h", "PERIOD_24H"), ("7d", "PERIOD_7D"), ("30d", "PERIOD_30D")):
        counts = EXPECTED[name]
        assert got[period] == (
            EXPECTED_PERCENT[name],
            sum(counts.values()),
            counts[H],
            counts[D],
            counts[U],
            counts[K],
        ), name
    assert got["PERIOD_24H"][0] == pytest.approx(91.304347826)  # 2,520 of 2,760 known evaluations


async def test_the_default_window_is_the_last_24_hours_with_the_changes_and_their_reasons(store: Store) -> None:
    reply = await HealthHistory(store, clock=lambda: CLOCK_NS).app_history(APP, request(), 100)
    assert (reply.start_time.seconds, reply.end_time.seconds) == (NOW_S + 1 - DAY, NOW_S + 1)
    assert reply.status_at_start == pb.HEALTH_STATUS_HEALTHY and not reply.truncated
    # Newest first; each at the first tick (oldest) of its phase.
    assert [(NOW_S - t.at.seconds, t.status, t.previous_status, list(t.reasons)) for t in reply.transitions] == [
        (6 * HOUR - TICK_S, pb.HEALTH_STATUS_HEALTHY, pb.HEALTH_STATUS_DEGRADED, []),
        (7 * HOUR - TICK_S, pb.HEALTH_STATUS_DEGRADED, pb.HEALTH_STATUS_UNKNOWN, list(REASONS[D])),
        (8 * HOUR - TICK_S, pb.HEALTH_STATUS_UNKNOWN, pb.HEALTH_STATUS_UNHEALTHY, list(REASONS[K])),
        (10 * HOUR - TICK_S, pb.HEALTH_STATUS_UNHEALTHY, pb.HEALTH_STATUS_HEALTHY, list(REASONS[U])),
    ]


async def test_a_month_window_with_a_limit_is_truncated_and_continues_from_the_oldest(store: Store) -> None:
    history = HealthHistory(store, clock=lambda: CLOCK_NS)
    start = NOW_S - 31 * DAY  # the window may span 31 days; the first crafted tick is 30 s after it
    first = await history.app_history(APP, request(start_time=ts(start), end_time=ts(NOW_S), limit=3), 3)
    assert first.truncated and len(first.transitions) == 3
    assert first.status_at_start == 0  # no evaluation before it: absent in JSON
    rest = await history.app_history(APP, request(start_time=ts(start), end_time=first.transitions[-1].at), 100)
    assert not rest.truncated
    ages = [NOW_S - t.at.seconds for t in [*first.transitions, *rest.transitions]]
    changes = [6 * HOUR, 7 * HOUR, 8 * HOUR, 10 * HOUR, 3 * DAY, 3 * DAY + 12 * HOUR, 20 * DAY, 21 * DAY, 31 * DAY]
    assert ages == [age - TICK_S for age in changes]
    oldest = rest.transitions[-1]
    assert (oldest.status, oldest.previous_status) == (pb.HEALTH_STATUS_UNHEALTHY, 0)  # the first kept: no previous


def test_the_share_leaves_unknown_out_and_is_null_without_a_known_evaluation() -> None:
    assert uptime_percent({H: 1, D: 1, U: 2, K: 1000}) == 50.0
    assert uptime_percent({K: 5}) is None
    assert uptime_percent({}) is None
    assert uptime_percent({U: 3}) == 0.0


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"start_time": ts(NOW_S), "end_time": ts(NOW_S)}, "start_time", "must be before end_time"),
        ({"start_time": ts(NOW_S + 10)}, "start_time", "must be before end_time"),
        ({"start_time": ts(NOW_S - 31 * DAY - 1), "end_time": ts(NOW_S)}, "start_time", "at most 31 days"),
        ({"end_time": timestamp_pb2.Timestamp(seconds=NOW_S, nanos=-1)}, "end_time", "nanos"),
        ({"start_time": ts(-5)}, "start_time", "1970-01-01"),
    ],
)
def test_a_bad_window_is_invalid_argument_naming_the_field(fields: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        window_of(request(**fields), NOW_S * S)
    assert caught.value.field == field and words in caught.value.description


def test_the_longest_window_and_the_defaults_are_accepted() -> None:
    window = window_of(request(start_time=ts(NOW_S - 31 * DAY), end_time=ts(NOW_S)), 5)
    assert (window.start_ns, window.end_ns, window.now_ns) == ((NOW_S - 31 * DAY) * S, NOW_S * S, 5)
    window = window_of(request(end_time=ts(NOW_S)), 5)
    assert (window.start_ns, window.end_ns) == ((NOW_S - DAY) * S, NOW_S * S)
    window = window_of(request(start_time=ts(NOW_S - HOUR)), NOW_S * S)
    assert (window.start_ns, window.end_ns) == ((NOW_S - HOUR) * S, NOW_S * S)


async def test_an_app_without_snapshots_has_empty_windows_and_null_shares(store: Store) -> None:
    other = App("app_new", APP.workspace_id, "new", "new", 512, 1, 1)
    await store.upsert_app(other)
    reply = await HealthHistory(store, clock=lambda: CLOCK_NS).app_history(other, request(app_id=other.id), 100)
    assert list(reply.transitions) == [] and reply.status_at_start == 0
    assert [(w.HasField("uptime_percent"), w.evaluations) for w in reply.uptime] == [(False, 0)] * 3


def test_statuses_map_to_the_proto() -> None:
    assert _STATUS_NUMBERS == _NUMBERS and set(_NUMBERS) == set(HealthStatus)
