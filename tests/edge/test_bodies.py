"""edge/bodies.py: a unary reply's JSON body is the documented rendering of its bytes, kept by those bytes only."""

from __future__ import annotations

import jsonmap
from dooor.monitoring.v1 import monitoring_pb2 as pb
from edge import bodies
from edge.bodies import Bodies
from edge.main import services
from edge.routes import Route, routes_from

ROUTES = routes_from(services())


def _route(method: str, *, response_body: str = "") -> Route:
    return next(r for r in ROUTES if r.method.name == method and r.response_body == response_body)


def _health(status: int = pb.HEALTH_STATUS_HEALTHY) -> pb.GetAppHealthResponse:
    reply = pb.GetAppHealthResponse(app_id="app_1", status=status, uptime=3600, reasons=["all 3 instances up"])
    reply.last_checked_at.FromJsonString("2026-12-03T10:00:00Z")
    return reply


def _alerts(count: int) -> pb.ListAlertsResponse:
    reply = pb.ListAlertsResponse()
    for i in range(count):
        alert = reply.alerts.add(id=f"alt_{i}", app_id="app_1", app_name="api", message="CPU at 91 %")
        alert.triggered_at.FromJsonString("2026-12-03T09:00:00Z")
    return reply


def test_a_body_is_the_documented_rendering_of_the_reply() -> None:
    kept = Bodies(ROUTES)
    health = _health()
    assert kept.body(_route("GetAppHealth"), health.SerializeToString()) == jsonmap.dumps(jsonmap.to_json(health))
    alerts = _alerts(3)
    route = _route("ListAlerts", response_body="alerts")
    assert kept.body(route, alerts.SerializeToString()) == jsonmap.dumps(jsonmap.field_to_json(alerts, "alerts"))


def test_the_same_bytes_are_rendered_once_and_other_bytes_are_another_body() -> None:
    kept = Bodies(ROUTES)
    route = _route("GetAppHealth")
    first = kept.body(route, _health().SerializeToString())
    again = kept.body(route, _health().SerializeToString())  # equal bytes, another object
    assert again is first
    changed = kept.body(route, _health(pb.HEALTH_STATUS_DEGRADED).SerializeToString())
    assert changed != first
    assert b'"status":"degraded"' in changed and b'"status":"healthy"' in first


def test_the_same_bytes_of_another_method_are_that_methods_body() -> None:
    # An empty reply is b"" for every type: the route is part of the key.
    kept = Bodies(ROUTES)
    assert kept.body(_route("GetAppHealth"), b"") != kept.body(_route("ListAlerts", response_body="alerts"), b"")
    assert kept.body(_route("ListAlerts", response_body="alerts"), b"") == b"[]"


def test_what_is_kept_stays_within_the_budget_oldest_out_first() -> None:
    route = _route("GetAppHealth")
    replies = [_health(status).SerializeToString() for status in (pb.HEALTH_STATUS_HEALTHY, pb.HEALTH_STATUS_DEGRADED)]
    one = len(replies[0]) + len(Bodies(ROUTES).body(route, replies[0]))
    kept = Bodies(ROUTES, budget_bytes=one + 10)  # room for one reply and its body
    first = kept.body(route, replies[0])
    assert kept.body(route, replies[0]) is first and kept.kept_bytes == one
    kept.body(route, replies[1])  # the first is dropped to make room
    assert kept.kept_bytes <= one + 10
    again = kept.body(route, replies[0])
    assert again == first and again is not first


def test_large_replies_are_rendered_every_time() -> None:
    kept = Bodies(ROUTES)
    route = _route("ListAlerts", response_body="alerts")
    large = _alerts(2000).SerializeToString()
    assert len(large) > bodies.MAX_REPLY_BYTES
    first = kept.body(route, large)
    again = kept.body(route, large)
    assert again == first and again is not first
    assert kept.kept_bytes == 0
