"""The rules engine's decisions as a table: thresholds, hold window, open alert and latch in, one verdict out.

The hold itself is in the window: ``low`` is the minimum over the hold window (every point at or above a
threshold means the breach held), ``high`` the maximum (every point below recovery means the recovery held;
None when it was not asked for, as when nothing is open or latched). tests/alerts/test_engine.py runs the
same rules end to end against a real Prometheus.
"""

from __future__ import annotations

import pytest

from server.alerts.engine import Verdict, Window, decide
from server.alerts.thresholds import Thresholds
from server.states import AlertSeverity

T = Thresholds(warning=80.0, critical=95.0, recovery=70.0, hold_seconds=300)
WARNING, CRITICAL = AlertSeverity.WARNING, AlertSeverity.CRITICAL


@pytest.mark.parametrize(
    ("case", "window", "open_severity", "latched", "verdict"),
    [
        # Nothing open, not latched: fire at the level the whole window held.
        ("quiet", Window(10.0, None), None, False, Verdict.NOTHING),
        ("breach did not hold the whole window", Window(79.9, None), None, False, Verdict.NOTHING),
        ("warning held", Window(80.0, None), None, False, Verdict.FIRE_WARNING),
        ("critical held", Window(95.0, None), None, False, Verdict.FIRE_CRITICAL),
        ("warning held, critical only touched", Window(90.0, 99.0), None, False, Verdict.FIRE_WARNING),
        # An open alert: recovery resolves, a held critical escalates a warning, anything else holds.
        ("open, recovery held", Window(10.0, 69.9), WARNING, False, Verdict.RESOLVE),
        ("open, one point at recovery", Window(10.0, 70.0), WARNING, False, Verdict.NOTHING),
        ("open, between recovery and warning", Window(71.0, 79.0), WARNING, False, Verdict.NOTHING),
        ("open warning, critical held", Window(95.0, 99.0), WARNING, False, Verdict.ESCALATE),
        ("open critical, critical held", Window(95.0, 99.0), CRITICAL, False, Verdict.NOTHING),
        ("open critical, recovery held", Window(1.0, 2.0), CRITICAL, False, Verdict.RESOLVE),
        ("open, no maximum asked", Window(10.0, None), WARNING, False, Verdict.NOTHING),
        # Resolved by hand and latched: only a held recovery re-arms; a breach never fires again meanwhile.
        ("latched, still breaching", Window(99.0, 99.0), None, True, Verdict.NOTHING),
        ("latched, between", Window(71.0, 75.0), None, True, Verdict.NOTHING),
        ("latched, recovery held", Window(10.0, 69.0), None, True, Verdict.REARM),
    ],
)
def test_decide(
    case: str, window: Window, open_severity: AlertSeverity | None, latched: bool, verdict: Verdict
) -> None:
    assert decide(T, window, open_severity, latched) is verdict, case


def test_equal_warning_and_critical_fire_critical() -> None:
    flat = Thresholds(warning=90.0, critical=90.0, recovery=50.0, hold_seconds=0)
    assert decide(flat, Window(90.0, 90.0), None, False) is Verdict.FIRE_CRITICAL
