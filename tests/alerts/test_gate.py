"""What holds a fired alert back from the channels (server/alerts/engine.py's _Gate and _Decisions.release):
pure, so tested as a table of silences, deploy holds and open alerts."""

from __future__ import annotations

from server.alerts.engine import Window, _Decisions, _Gate
from server.alerts.thresholds import Thresholds
from server.states import AlertSeverity, AlertType
from server.store.records import Alert, App, Silence

S = 1_000_000_000
NOW = 1_000 * S
HOLD = 300 * S


def _silence(silence_id: str, app_id: str | None = None, types: tuple[AlertType, ...] = (), ws: str = "ws") -> Silence:
    return Silence(silence_id, ws, app_id, types, NOW - 10 * S, NOW + 10 * S, "", "key_1", NOW - 10 * S)


def _alert(alert_id: str, app_id: str = "app", **fields: object) -> Alert:
    base = Alert(alert_id, "ws", app_id, AlertType.HIGH_CPU, AlertSeverity.WARNING, "m", NOW - 60 * S, None, None)
    return Alert(**{**base.__dict__, **fields})  # type: ignore[arg-type]


def test_a_silence_matches_its_app_or_every_app_and_its_types_or_every_type() -> None:
    silences = [_silence("sil_app", "app"), _silence("sil_mem", None, (AlertType.HIGH_MEMORY,))]
    gate = _Gate(NOW, [*silences, _silence("sil_x", ws="other")], {}, HOLD)
    assert gate.silence("ws", "app", AlertType.HIGH_CPU) == "sil_app"
    assert gate.silence("ws", "app2", AlertType.HIGH_MEMORY) == "sil_mem"
    assert gate.silence("ws", "app2", AlertType.HIGH_CPU) is None
    assert gate.silence("ws3", "app", AlertType.HIGH_CPU) is None  # another workspace's silence never matches


def test_a_deploy_holds_its_app_for_the_hold_from_its_start() -> None:
    gate = _Gate(NOW, [], {"fresh": NOW - 10 * S, "old": NOW - HOLD, "edge": NOW - HOLD + 1}, HOLD)
    assert gate.held_until("fresh") == NOW - 10 * S + HOLD
    assert gate.held_until("old") is None  # the hold ended exactly now
    assert gate.held_until("edge") == NOW + 1
    assert gate.held_until("never_deployed") is None


def test_release_takes_open_unnotified_alerts_nothing_holds_whose_condition_still_holds() -> None:
    gate = _Gate(NOW, [_silence("sil", "silenced_app")], {}, HOLD)
    decisions = _Decisions(NOW, gate)
    alerts = [
        _alert("alr_free"),  # fired held or silenced earlier; nothing holds it now
        _alert("alr_told", "told_app", notified_ns=NOW - 60 * S),  # already notified: never twice
        _alert("alr_held", "held_app", held_until_ns=NOW + 1),  # still within its hold
        _alert("alr_hold_over", "over_app", held_until_ns=NOW),  # its hold ended exactly now
        _alert("alr_silenced", "silenced_app", silence_id="sil"),  # a silence still matches
        _alert("alr_unsilenced", "other_app", silence_id="sil_expired"),  # its silence ended
        _alert("alr_dipped", "dipped_app", held_until_ns=NOW - S),  # hold over, but below warning at this tick
    ]
    decisions._breaching.update((a.app_id, a.type) for a in alerts if a.app_id != "dipped_app")
    decisions.release(alerts)
    assert list(decisions.changes().release) == ["alr_free", "alr_hold_over", "alr_unsilenced"]


def test_the_condition_must_hold_at_the_releasing_tick() -> None:
    # A spike right after a deploy that is over by the end of the hold, yet not recovered long enough to resolve:
    # not released (the deploy noise the hold exists to suppress); released once it breaches again.
    decisions = _Decisions(NOW, _Gate(NOW, [], {}, HOLD))
    app = App("spiky", "ws", "spiky", "svc", 1000.0, 1.0, 0)
    thresholds = Thresholds(warning=80.0, critical=95.0, recovery=50.0, hold_seconds=60)
    held = _alert("alr_spike", "spiky", held_until_ns=NOW - S)
    decisions.add(app, AlertType.HIGH_CPU, thresholds, Window(low=60.0, high=85.0), held, False)
    decisions.release([held])
    assert not decisions.changes().release
    again = _Decisions(NOW, _Gate(NOW, [], {}, HOLD))
    again.add(app, AlertType.HIGH_CPU, thresholds, Window(low=82.0, high=90.0), held, False)
    again.release([held])
    assert list(again.changes().release) == ["alr_spike"]
