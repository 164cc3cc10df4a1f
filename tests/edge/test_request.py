"""Path variables + query + headers + body → the request message; bad input → 400 naming the parameter."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from edge import request
from edge.app import parse_grpc_timeout, redact_query
from edge.errors import ApiError
from edge.main import services
from edge.routes import Match, Router, routes_from
from tests.edge.annotated import message, things_service

ROUTER = Router(routes_from([*services(), things_service()]))
APP = "/api/v1/workspaces/ws_1/monitoring/apps/app_1"


def build(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"", **kw: object) -> Message:
    target, _, query = path.partition("?")
    match = ROUTER.match(method, target)
    assert isinstance(match, Match)
    return request.build(match.route, match.path_params, request.parse_query(query), headers or {}, body, **kw)  # type: ignore[arg-type]


def rejected(method: str, path: str, **kw: object) -> ApiError:
    with pytest.raises(ApiError) as caught:
        build(method, path, **kw)  # type: ignore[arg-type]
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.http_status == 400
    return caught.value


def violation(error: ApiError) -> error_details_pb2.BadRequest.FieldViolation:
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in error.details)
    (only,) = bad.field_violations
    return only


def test_documented_query_names_fill_the_request() -> None:
    got = build(
        "GET",
        f"{APP}/logs?limit=50&severity=ERROR&pageToken=CjISEA&startTime=2025-01-20T10:00:00Z"
        "&endTime=2025-01-20T12:00:00.5%2B02:00",
    )
    assert got == pb.ListAppLogsRequest(
        workspace_id="ws_1",
        app_id="app_1",
        limit=50,
        severity=pb.SEVERITY_ERROR,
        page_token="CjISEA",
        start_time={"seconds": 1737367200},
        end_time={"seconds": 1737367200, "nanos": 500_000_000},
    )
    assert build("GET", f"{APP}/metrics?period=7d") == pb.GetAppMetricsRequest(
        workspace_id="ws_1", app_id="app_1", period=pb.PERIOD_7D
    )


def test_snake_case_names_are_accepted_too() -> None:
    assert build("GET", f"{APP}/logs?page_token=abc&start_time=2025-01-20T10:00:00Z").page_token == "abc"


def test_optional_bool_distinguishes_unset_false_and_true() -> None:
    base = "/api/v1/workspaces/ws_1/monitoring/alerts"
    assert not build("GET", base).HasField("resolved")
    unresolved = build("GET", f"{base}?resolved=false&appId=app_1&limit=5")
    assert unresolved.HasField("resolved") and unresolved.resolved is False
    assert (unresolved.app_id, unresolved.limit) == ("app_1", 5)
    assert build("GET", f"{base}?resolved=TRUE").resolved is True


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("period=2h", "period", "allowed values: 1h, 6h, 24h, 7d, 30d"),
        ("period=", "period", "the value is empty"),
        ("limit=ten", "limit", "expected an integer"),
        ("limit=99999999999", "limit", "from -2147483648 to 2147483647"),
        ("severity=error", "severity", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("startTime=yesterday", "startTime", "RFC 3339"),
        ("startTime=2025-01-20T10:00:00", "startTime", "RFC 3339"),
        ("startTime=2025-13-20T10:00:00Z", "startTime", "not a valid date"),
        ("startTime=2025-02-31T00:00:00Z", "startTime", "not a valid date and time; expected an RFC 3339"),
        ("startTime=0000-01-01T00:00:00Z", "startTime", "not a valid date and time; expected an RFC 3339"),
        ("startTime=2024-04-31T00:00:00Z", "startTime", "not a valid date"),
        ("endTime=2025-01-20T10:00:00%2B99:99", "endTime", "not a valid date and time; expected an RFC 3339"),
        ("endTime=2025-01-20T10:00:00-24:00", "endTime", "not a valid date"),
        ("startTime=2025-01-20T10:00:00+02:00", "startTime", "encode it as %2B"),
        ("endTime=2025-01-20T10:00:00.123 05:30", "endTime", "encode it as %2B"),
        ("limit=1&limit=2", "limit", "given more than once"),
        ("lmit=5", "lmit", "unknown query parameter; this endpoint accepts: limit, severity, pageToken"),
        ("workspaceId=other", "workspaceId", "set by the URL path"),
        ("app_id=other", "app_id", "set by the URL path"),
    ],
)
def test_bad_query_parameters_are_400_naming_the_parameter(query: str, field: str, says: str) -> None:
    path = f"{APP}/metrics?{query}" if query.startswith("period") else f"{APP}/logs?{query}"
    error = rejected("GET", path)
    assert violation(error).field == field
    assert says in error.message
    assert error.message.startswith(f"{field}: ")


def test_resolved_must_be_a_boolean() -> None:
    error = rejected("GET", "/api/v1/workspaces/ws_1/monitoring/alerts?resolved=maybe")
    assert error.message == "resolved: expected true or false, got 'maybe'"


def test_query_that_is_not_utf8_is_400() -> None:
    with pytest.raises(ApiError, match="not valid percent-encoded UTF-8"):
        request.parse_query("appId=%ff")


def test_from_header_fills_the_cursor_and_the_query_wins_over_the_header() -> None:
    stream = f"{APP}/logs/stream"
    assert build("GET", stream, headers={"last-event-id": "c42"}).cursor == "c42"
    assert build("GET", f"{stream}?cursor=q1", headers={"last-event-id": "c42"}).cursor == "q1"


def test_system_parameters_are_skipped_only_when_allowed() -> None:
    stream = f"{APP}/logs/stream?access_token=dor_sk_x"
    assert build("GET", stream, system_params=frozenset({"access_token"})).app_id == "app_1"
    assert violation(rejected("GET", stream)).field == "access_token"


def test_repeated_and_int64_fields_of_a_new_annotated_rpc() -> None:
    got = build("GET", "/v9/things/t%201?tags=a&tags=b&minSize=9007199254740993")
    assert got == message("GetThingRequest", name="t 1", tags=["a", "b"], min_size=9007199254740993)


def test_body_star_fills_the_rest_of_the_request() -> None:
    got = build("POST", "/v9/things/t1:rename", body=json.dumps({"newName": "t2"}).encode())
    assert got == message("RenameThingRequest", name="t1", new_name="t2")
    assert violation(rejected("POST", "/v9/things/t1:rename", body=b"{nope")).field == "body"
    assert violation(rejected("POST", "/v9/things/t1:rename", body=b'{"color": 1}')).field == "color"


@pytest.mark.parametrize(
    ("header", "seconds"), [("5S", 5.0), ("1500m", 1.5), ("2M", 120.0), ("1H", 300.0), ("100u", 1e-4)]
)
def test_grpc_timeout_is_parsed_and_capped(header: str, seconds: float) -> None:
    assert parse_grpc_timeout(header, cap_s=300.0) == pytest.approx(seconds)


@pytest.mark.parametrize("header", ["5", "5s", "123456789S", "-1S", "1.5S", "0H", "00m"])
def test_malformed_grpc_timeout_is_400(header: str) -> None:
    with pytest.raises(ApiError, match="Grpc-Timeout"):
        parse_grpc_timeout(header, cap_s=300.0)


def test_access_token_is_redacted_from_logged_query_strings() -> None:
    assert redact_query("access_token=dor_sk_secret&severity=INFO") == "access_token=REDACTED&severity=INFO"
    assert redact_query("severity=INFO&ACCESS_TOKEN=dor_sk_secret") == "severity=INFO&ACCESS_TOKEN=REDACTED"
    assert redact_query("my_access_token=1") == "my_access_token=1"
    # Names are compared decoded, as the request parser reads them: every spelling it accepts is redacted.
    assert redact_query("severity=INFO&access%5Ftoken=dor_sk_secret") == "severity=INFO&access_token=REDACTED"
    assert redact_query("%61ccess_token=dor_sk_secret") == "access_token=REDACTED"


def test_a_leap_day_and_a_leap_second_are_valid_timestamps() -> None:
    assert request.parse_timestamp("2024-02-29T00:00:00Z").seconds == 1709164800
    assert request.parse_timestamp("2016-12-31T23:59:60Z").seconds == 1483228800
    assert request.parse_timestamp("2025-01-20T10:00:00-23:59").seconds == 1737453540


def test_a_field_the_body_sets_is_no_query_parameter() -> None:
    silences = "/api/v1/workspaces/ws_1/monitoring/silences"
    got = build("POST", silences, body=json.dumps({"comment": "why", "alertTypes": ["high_cpu"]}).encode())
    assert got == pb.CreateSilenceRequest(
        workspace_id="ws_1", silence=pb.Silence(comment="why", alert_types=[pb.ALERT_TYPE_HIGH_CPU])
    )
    assert violation(rejected("POST", f"{silences}?silence.comment=x")).field == "silence.comment"
    ack = "/api/v1/workspaces/ws_1/monitoring/alerts/alr_1/acknowledge"
    assert violation(rejected("POST", f"{ack}?note=x", body=b"{}")).field == "note"
