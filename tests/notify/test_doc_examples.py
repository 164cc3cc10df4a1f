"""The payload examples in docs/notifications.md are what server/notify/payloads.py sends, key for key: each
```json block after an ``<!-- example: NAME -->`` marker equals the rendering of EXAMPLES[NAME] below."""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Callable

import pytest

from server.notify import payloads
from server.states import NotificationEvent, PayloadFormat, ResolvedBy
from server.store.records import Delivery
from tests.notify import records

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "notifications.md"
S = 10**9
_BLOCK = re.compile(r"<!-- example: ([a-z0-9-]+) -->\s*```json\n(.*?)```", re.DOTALL)

_FIRED = records.alert(
    "alr_01kdq3w8e0example0000000", app_id="checkout", notified_ns=records.T0, triggered_ns=records.T0
)
_RESOLVED = records.alert(
    "alr_01kdq3w8e0example0000000",
    app_id="checkout",
    triggered_ns=records.T0,
    notified_ns=records.T0,
    acknowledged_ns=records.T0 + 120 * S,
    acknowledged_by="key_01kdq2example",
    ack_note="rolling back",
    resolved_ns=records.T0 + 600 * S,
    resolved_by=ResolvedBy.MANUAL,
    resolved_by_key="key_01kdq2example",
)


def _delivery(event: NotificationEvent, at_ns: int) -> Delivery:
    return Delivery(
        id="evt_01kdq3wexample000000000000",
        channel_id="chn_01kdq2example",
        workspace_id="ws_1",
        event=event,
        alert_id=_FIRED.id,
        created_ns=at_ns,
        status=records.DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_ns=at_ns,
        last_attempt_ns=None,
        last_status_code=None,
        last_error=None,
        body=None,
    )


def _webhook(fmt: PayloadFormat, event: NotificationEvent, alert_at: int, resolved: bool) -> Callable[[], bytes]:
    channel = records.channel(channel_id="chn_01kdq2example", format=fmt)
    alert = _RESOLVED if resolved else _FIRED
    return lambda: payloads.render(_delivery(event, alert_at), channel, alert, "checkout-api")


EXAMPLES: dict[str, Callable[[], bytes]] = {
    "service-resolved": _webhook(PayloadFormat.SERVICE, NotificationEvent.RESOLVED, records.T0 + 600 * S, True),
    "slack-fired": _webhook(PayloadFormat.SLACK, NotificationEvent.FIRED, records.T0, False),
    "alertmanager-webhook-fired": _webhook(PayloadFormat.ALERTMANAGER, NotificationEvent.FIRED, records.T0, False),
    "alertmanager-push": lambda: payloads.alertmanager_alerts([(_FIRED, "checkout-api")], records.T0 + 60 * S, 60.0),
}


def _documented() -> dict[str, str]:
    return dict(_BLOCK.findall(DOC.read_text()))


def test_every_example_is_in_the_docs_once() -> None:
    found = _BLOCK.findall(DOC.read_text())
    assert sorted(name for name, _ in found) == sorted(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_documented_example_is_what_is_sent(name: str) -> None:
    assert json.loads(_documented()[name]) == json.loads(EXAMPLES[name]())


if __name__ == "__main__":  # prints the blocks to paste into the docs
    for example, render in EXAMPLES.items():
        print(f"<!-- example: {example} -->\n```json\n{json.dumps(json.loads(render()), indent=2)}\n```\n")
