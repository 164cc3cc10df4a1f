"""What holds a fired alert back from the channels (server/alerts/engine.py's _Gate and _Decisions.release):
pure, so tested as a table of silences, deploy holds and open alerts."""

from __future__ import annotations

from server.alerts.engine import _Decisions, _Gate
from server.states import AlertSeverity, AlertType
from server.store.records import Alert, Silence

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


def test_release_takes_open_unnotified_alerts_nothing_holds_and_that_do_not_resolve_now() -> None:
    gate = _Gate(NOW, [_silence("sil", "silenced_app")], {}, HOLD)
    decisions = _Decisions(NOW, gate)
    decisions.release(
        [
            _alert("alr_free"),  # fired held or silenced earlier; nothing holds it now
            _alert("alr_told", notified_ns=NOW - 60 * S),  # already notified: never twice
            _alert("alr_held", held_until_ns=NOW + 1),  # still within its hold
            _alert("alr_hold_over", held_until_ns=NOW),  # its hold ended exactly now
            _alert("alr_silenced", "silenced_app", silence_id="sil"),  # a silence still matches
            _alert("alr_unsilenced", "other_app", silence_id="sil_expired"),  # its silence ended
        ]
    )
    assert list(decisions.changes().release) == ["alr_free", "alr_hold_over", "alr_unsilenced"]


def test_an_alert_that_resolves_at_this_tick_is_not_released_by_it() -> None:
    decisions = _Decisions(NOW, _Gate(NOW, [], {}, HOLD))
    decisions._resolve.append("alr_recovered")
    decisions.release([_alert("alr_recovered", held_until_ns=NOW - S)])
    assert not decisions.changes().release
