"""A crafted month of one app's health snapshots at a 30 s tick, and what GetAppHealthHistory must answer for it
(the counts and percentages worked out by hand from the phases, not by the code under test)."""

from __future__ import annotations

from server.states import HealthStatus
from server.store.records import HealthSnapshot

S = 10**9
MINUTE, HOUR, DAY = 60, 3600, 86400
TICK_S = 30
H, D, U, K = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY, HealthStatus.UNKNOWN
REASONS = {
    H: (),
    D: ("error rate 7.2% ≥ 5%",),
    U: ("no instance up (0 of 2)",),
    K: ("no data this tick: prometheus unavailable",),
}
# (from age, to age, status): the snapshot taken `age` seconds before NOW has `status` when from <= age < to.
PHASES = (
    (0, 6 * HOUR, H),
    (6 * HOUR, 7 * HOUR, D),
    (7 * HOUR, 8 * HOUR, K),
    (8 * HOUR, 10 * HOUR, U),
    (10 * HOUR, 3 * DAY, H),
    (3 * DAY, 3 * DAY + 12 * HOUR, U),
    (3 * DAY + 12 * HOUR, 20 * DAY, H),
    (20 * DAY, 21 * DAY, K),
    (21 * DAY, 31 * DAY, U),  # the last day of it is older than the 30-day window
)
# Counts per window ending at NOW (ages 0 to the length, the length itself excluded): 2,880 ticks a day.
EXPECTED = {
    "24h": {H: 2400, D: 120, U: 240, K: 120},
    "7d": {H: 18240, D: 120, U: 240 + 1440, K: 120},
    "30d": {H: 55680, D: 120, U: 240 + 1440 + 9 * 2880, K: 120 + 2880},
}
EXPECTED_PERCENT = {
    "24h": 100 * 2520 / 2760,
    "7d": 100 * 18360 / 20040,
    "30d": 100 * 55800 / 83400,
}


def status_at(age_s: int) -> HealthStatus:
    return next(status for start, end, status in PHASES if start <= age_s < end)


def month(app_id: str, workspace_id: str, now_s: int) -> list[HealthSnapshot]:
    """One snapshot per tick, from 31 days before ``now_s`` to ``now_s`` itself, oldest first."""
    ages = range(31 * DAY - TICK_S, -1, -TICK_S)
    return [
        HealthSnapshot(
            app_id, workspace_id, (now_s - age) * S, status_at(age), None, None, None, None, REASONS[status_at(age)]
        )
        for age in ages
    ]
