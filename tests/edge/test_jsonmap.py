"""The documented JSON: each response type, built with the contract's example values, renders exactly
the contract's example (keys, nesting, JSON types, values); plus the rule's corner cases."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

import jsonmap
from dooor.monitoring.v1 import monitoring_pb2 as pb
from edge.main import services
from edge.routes import Match, Router, routes_from
from tests.edge.contract import ADDITIONS, Example, compare, examples

ROUTER = Router(routes_from(services()))


def ts(text: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromJsonString(text)
    return stamp


def series(unit: str, values: list[float], current: float, avg: float, maximum: float) -> pb.MetricSeries:
    labels = [ts("2025-01-20T00:00:00Z"), ts("2025-01-20T01:00:00Z")]
    return pb.MetricSeries(labels=labels, values=values, unit=unit, current=current, avg=avg, max=maximum)


def metrics() -> Message:
    return pb.GetAppMetricsResponse(
        app_id="app_01hx...",
        service_name="my-api",
        period=pb.PERIOD_24H,
        cpu=series("%", [12.4, 18.7], 18.7, 14.2, 42.1),
        memory=series("MiB", [256, 312], 312, 280, 380),
        request_count=series("req", [120, 245], 245, 180, 512),
        request_latency=series("ms", [42, 55], 55, 48, 210),
        error_rate=series("%", [0.01, 0.02], 0.02, 0.015, 0.05),
        instance_count=series("instances", [2, 3], 3, 2, 4),
    )


def health() -> Message:
    return pb.GetAppHealthResponse(
        app_id="app_01hx...",
        status=pb.HEALTH_STATUS_HEALTHY,
        uptime=864000,
        last_deployed_at=ts("2025-01-15T10:00:00Z"),
        instance_count=3,
        error_rate=0.01,
        avg_latency_ms=48,
        last_checked_at=ts("2025-01-20T14:30:00Z"),
    )


def logs() -> Message:
    return pb.ListAppLogsResponse(
        logs=[
            pb.LogEntry(
                timestamp=ts("2025-01-20T14:30:01.123Z"),
                severity=pb.SEVERITY_INFO,
                message="Server listening on port 3000",
            ),
            pb.LogEntry(
                timestamp=ts("2025-01-20T14:30:05.456Z"),
                severity=pb.SEVERITY_ERROR,
                message="Unhandled exception: Cannot read property 'id' of undefined",
            ),
        ],
        next_page_token="CjISEA...",
    )


def overview() -> Message:
    return pb.GetWorkspaceOverviewResponse(
        total_apps=12,
        active_apps=9,
        total_deploys=284,
        deploys_today=7,
        failed_builds_today=1,
        estimated_monthly_cost=148.50,
        app_health_summary=pb.AppHealthSummary(healthy=8, degraded=1, unhealthy=0, unknown=3),
        recent_activity=[
            pb.ActivityItem(
                type=pb.ACTIVITY_TYPE_DEPLOY,
                app_name="my-api",
                status=pb.OPERATION_STATUS_SUCCEEDED,
                timestamp=ts("2025-01-20T14:00:00Z"),
            ),
            pb.ActivityItem(
                type=pb.ACTIVITY_TYPE_ALERT,
                app_name="worker-service",
                message="High memory usage detected",
                timestamp=ts("2025-01-20T13:45:00Z"),
            ),
        ],
    )


def alert(**changes: object) -> pb.Alert:
    fields: dict[str, object] = {
        "id": "alr_01hx...",
        "app_id": "app_01hx...",
        "app_name": "worker-service",
        "type": pb.ALERT_TYPE_HIGH_MEMORY,
        "severity": pb.ALERT_SEVERITY_WARNING,
        "message": "Memory usage exceeded 80% threshold",
        "triggered_at": ts("2025-01-20T13:45:00Z"),
        "resolved": False,
    }
    return pb.Alert(**{**fields, **changes})  # type: ignore[arg-type]


BUILDERS: dict[str, Callable[[], Message]] = {
    "GetAppMetrics": metrics,
    "GetAppHealth": health,
    "ListAppLogs": logs,
    "GetWorkspaceOverview": overview,
    "ListAlerts": lambda: pb.ListAlertsResponse(alerts=[alert()]),
    "ResolveAlert": lambda: alert(resolved=True, resolved_at=ts("2025-01-20T14:10:00Z")),
}

# The Alert's fields 10 to 20: its lifecycle (who resolved it, acknowledgement, silence, deploy hold, release to
# the channels), documented in monitoring.proto as additions.
ALERT_ADDITIONS = (
    "resolvedBy",
    "resolvedByKeyId",
    "acknowledged",
    "acknowledgedAt",
    "acknowledgedByKeyId",
    "acknowledgementNote",
    "acknowledgedUntil",
    "silenceId",
    "heldForDeploy",
    "heldUntil",
    "notifiedAt",
)

# Keys the service adds to the contract's examples, on purpose (see docs/edge.md).
EXTRA = {
    # Why the status is what it is; documented in monitoring.proto as an addition.
    "GetAppHealth": frozenset({"$.reasons"}),
    "ListAlerts": frozenset(f"$[0].{key}" for key in ALERT_ADDITIONS),
    # The contract's Resolve example omits appName although List Alerts shows it for the same Alert.
    "ResolveAlert": frozenset({"$.appName", *(f"$.{key}" for key in ALERT_ADDITIONS)}),
}


def route_of(example: Example) -> Match:
    match = ROUTER.match(example.http_method, example.concrete_path(wsId="ws_1", appId="app_1", alertId="alr_1"))
    assert isinstance(match, Match), f"the contract's {example.http_method} {example.path} has no route"
    return match


def render(match: Match, reply: Message) -> object:
    body = match.route.response_body
    value = jsonmap.field_to_json(reply, body) if body else jsonmap.to_json(reply)
    return json.loads(jsonmap.dumps(value))  # through the wire form, as a client sees it


@pytest.mark.parametrize("example", examples(), ids=lambda e: f"{e.http_method} {e.path.split('/monitoring/')[1]}")
def test_each_documented_example_is_rendered_key_by_key_and_type_by_type(example: Example) -> None:
    match = route_of(example)
    name = match.route.method.name
    reply = BUILDERS[name]()
    assert compare(render(match, reply), example.body, extra=EXTRA.get(name, frozenset())) == []


def test_every_contract_example_has_a_builder_and_every_route_an_example() -> None:
    documented = {route_of(e).route.method.name for e in examples()}
    assert documented == set(BUILDERS)
    unary = {r.method.name for r in ROUTER.routes if not r.method.server_streaming}
    assert unary == documented | ADDITIONS


def test_compare_reports_missing_extra_and_mistyped_keys() -> None:
    # The comparison itself can fail: a number as a string, a missing key, an extra key.
    problems = compare({"a": "1", "c": 2}, {"a": 1, "b": None})
    assert sorted(problems) == [
        "$.a: string '1' where the contract has number 1",
        "$.b: missing",
        "$.c: not in the contract",
    ]


def test_unset_fields_with_presence_are_null_and_omit_when_unset_keys_are_left_out() -> None:
    rendered = jsonmap.to_json(pb.GetAppHealthResponse(app_id="a", status=pb.HEALTH_STATUS_UNKNOWN))
    assert rendered == {
        "appId": "a",
        "status": "unknown",
        "uptime": None,
        "lastDeployedAt": None,
        "instanceCount": None,
        "errorRate": None,
        "avgLatencyMs": None,
        "lastCheckedAt": None,
        "reasons": [],
    }
    assert "nextPageToken" not in jsonmap.to_json(pb.ListAppLogsResponse())
    assert jsonmap.to_json(alert())["resolvedAt"] is None


def test_empty_series_has_empty_arrays_and_null_summaries() -> None:
    assert jsonmap.to_json(pb.MetricSeries(unit="%")) == {
        "labels": [],
        "values": [],
        "unit": "%",
        "current": None,
        "avg": None,
        "max": None,
    }


def test_zero_is_rendered_as_zero_not_omitted() -> None:
    rendered = jsonmap.to_json(pb.GetAppHealthResponse(uptime=0, instance_count=0, error_rate=0.0))
    assert (rendered["uptime"], rendered["instanceCount"], rendered["errorRate"]) == (0, 0, 0.0)
    assert jsonmap.to_json(pb.AppHealthSummary()) == {"healthy": 0, "degraded": 0, "unhealthy": 0, "unknown": 0}


def test_int64_is_a_json_number() -> None:
    assert jsonmap.dumps(jsonmap.to_json(pb.StreamGap(dropped_entries=2**40, reason="x"))) == (
        b'{"droppedEntries":1099511627776,"reason":"x"}'
    )


@pytest.mark.parametrize(
    ("seconds", "nanos", "text"),
    [
        (1737383401, 0, "2025-01-20T14:30:01Z"),
        (1737383401, 123_000_000, "2025-01-20T14:30:01.123Z"),
        (1737383401, 123_400_000, "2025-01-20T14:30:01.123400Z"),
        (1737383401, 123_456_789, "2025-01-20T14:30:01.123456789Z"),
    ],
)
def test_timestamps_are_rfc3339_utc_with_as_many_fraction_digits_as_needed(seconds: int, nanos: int, text: str) -> None:
    assert jsonmap.format_timestamp(timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)) == text


def test_enum_values_come_from_the_json_value_option_and_unspecified_renders_null() -> None:
    assert jsonmap.enum_json_values(pb.Period.DESCRIPTOR) == {1: "1h", 2: "6h", 3: "24h", 4: "7d", 5: "30d"}
    assert jsonmap.to_json(pb.LogEntry(message="m"))["severity"] is None


def test_non_finite_floats_never_reach_the_output() -> None:
    rendered = jsonmap.to_json(pb.MetricSeries(values=[1.0, float("nan")], current=float("inf")))
    assert rendered["values"] == [1.0, None]
    assert rendered["current"] is None


def test_dumps_is_one_line_even_with_newlines_in_strings() -> None:
    assert b"\n" not in jsonmap.dumps(jsonmap.to_json(pb.LogEntry(message="a\nb\r\nc")))


@pytest.mark.parametrize(
    "seconds",
    [-62_135_596_800, -62_135_596_799, -86_401, -1, 0, 1, 951_782_400, 1_737_383_401, 4_102_444_800, 253_402_300_799],
)
@pytest.mark.parametrize("nanos", [0, 1, 1_000, 1_000_000, 120_000_000, 123_456_000, 999_999_999])
def test_timestamps_are_exactly_protobufs_canonical_form(seconds: int, nanos: int) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    assert jsonmap.format_timestamp(stamp) == stamp.ToJsonString()
    assert jsonmap.format_timestamp(stamp) == stamp.ToJsonString()  # again, from the cache


@pytest.mark.parametrize(("seconds", "nanos"), [(-62_135_596_801, 0), (253_402_300_800, 0), (0, -1), (0, 10**9)])
def test_timestamps_out_of_protobufs_range_fail_as_protobuf_does(seconds: int, nanos: int) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    with pytest.raises(ValueError, match="Timestamp is not valid"):
        stamp.ToJsonString()
    with pytest.raises(ValueError, match="Timestamp is not valid"):
        jsonmap.format_timestamp(stamp)


def test_the_compiled_renderer_reaches_a_field_named_like_a_python_keyword() -> None:
    plan = jsonmap._FieldPlan("from", "from", jsonmap._identity, False, False, False, False)
    assert jsonmap._field_lines(plan, "f0") == ["out['from'] = getattr(m, 'from')"]


def test_response_body_renders_the_selected_field_only_and_as_the_whole_message_would() -> None:
    reply = pb.ListAlertsResponse(alerts=[pb.Alert(id="alr_1", resolved=True, triggered_at=ts("2025-01-20T00:00:00Z"))])
    assert jsonmap.field_to_json(reply, "alerts") == jsonmap.to_json(reply)["alerts"]
    assert jsonmap.field_to_json(reply, "alerts")[0]["resolvedAt"] is None
