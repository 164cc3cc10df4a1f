"""Routes come from the google.api.http annotations: the template grammar, matching, 404/405, ambiguity."""

from __future__ import annotations

import pytest

from edge.main import services
from edge.routes import Match, Route, Router, TemplateError, check_unambiguous, compile_template, routes_from
from tests.edge.annotated import things_service

ROUTER = Router(routes_from(services()))
WS = "/api/v1/workspaces/ws_1/monitoring"


def test_every_annotated_method_of_the_contract_has_exactly_its_route() -> None:
    table = {(r.http_method, r.template.text): r.method.name for r in ROUTER.routes}
    assert table == {
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/apps/{app_id}/metrics"): "GetAppMetrics",
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/apps/{app_id}/health"): "GetAppHealth",
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/apps/{app_id}/health/history"): "GetAppHealthHistory",
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/apps/{app_id}/logs"): "ListAppLogs",
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/apps/{app_id}/logs/stream"): "StreamAppLogs",
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/overview"): "GetWorkspaceOverview",
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/apps"): "ListWorkspaceApps",  # an addition
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/alerts"): "ListAlerts",
        ("PATCH", "/api/v1/workspaces/{workspace_id}/monitoring/alerts/{alert_id}/resolve"): "ResolveAlert",
        # Additions: acknowledgements, silences, notification channels and their delivery logs.
        ("POST", "/api/v1/workspaces/{workspace_id}/monitoring/alerts/{alert_id}/acknowledge"): "AcknowledgeAlert",
        ("POST", "/api/v1/workspaces/{workspace_id}/monitoring/silences"): "CreateSilence",
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/silences"): "ListSilences",
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/silences/{silence_id}"): "GetSilence",
        ("PUT", "/api/v1/workspaces/{workspace_id}/monitoring/silences/{silence_id}"): "UpdateSilence",
        ("DELETE", "/api/v1/workspaces/{workspace_id}/monitoring/silences/{silence_id}"): "ExpireSilence",
        ("POST", "/api/v1/workspaces/{workspace_id}/monitoring/channels"): "CreateNotificationChannel",
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/channels"): "ListNotificationChannels",
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/channels/{channel_id}"): "GetNotificationChannel",
        ("PUT", "/api/v1/workspaces/{workspace_id}/monitoring/channels/{channel_id}"): "UpdateNotificationChannel",
        ("DELETE", "/api/v1/workspaces/{workspace_id}/monitoring/channels/{channel_id}"): "DeleteNotificationChannel",
        ("POST", "/api/v1/workspaces/{workspace_id}/monitoring/channels/{channel_id}/test"): "TestNotificationChannel",
        ("GET", "/api/v1/workspaces/{workspace_id}/monitoring/channels/{channel_id}/deliveries"): "ListDeliveries",
    }
    # PlatformService has no google.api.http annotation: it is not exposed over REST.
    assert {r.method.containing_service.name for r in ROUTER.routes} == {"MonitoringService"}


def test_path_variables_bind_to_their_fields() -> None:
    match = ROUTER.match("PATCH", f"{WS}/alerts/alr_9/resolve")
    assert isinstance(match, Match)
    assert match.route.method.name == "ResolveAlert"
    assert match.path_params == {("workspace_id",): "ws_1", ("alert_id",): "alr_9"}


def test_literal_segments_win_only_by_length_not_by_guessing() -> None:
    stream = ROUTER.match("GET", "/api/v1/workspaces/w/monitoring/apps/a/logs/stream")
    logs = ROUTER.match("GET", "/api/v1/workspaces/w/monitoring/apps/a/logs")
    assert isinstance(stream, Match) and stream.route.method.name == "StreamAppLogs"
    assert isinstance(logs, Match) and logs.route.method.name == "ListAppLogs"


def test_unknown_path_is_none_and_wrong_method_lists_the_allowed_ones() -> None:
    assert ROUTER.match("GET", "/api/v1/nope") is None
    assert ROUTER.match("GET", f"{WS}/alerts/") is None  # an empty segment never matches a variable
    assert ROUTER.match("GET", "/api/v1/workspaces//monitoring/alerts") is None
    assert ROUTER.match("POST", f"{WS}/alerts") == ["GET"]
    assert ROUTER.match("DELETE", f"{WS}/alerts/a/resolve") == ["PATCH"]


def test_single_segment_variables_are_percent_decoded_and_slashes_do_not_split_them() -> None:
    match = ROUTER.match("GET", "/api/v1/workspaces/w%2F1%20x/monitoring/alerts")
    assert isinstance(match, Match)
    assert match.path_params == {("workspace_id",): "w/1 x"}


def test_full_template_grammar() -> None:
    t = compile_template("/v1/{name=projects/*/logs/**}:tail")
    assert t.verb == "tail"
    assert t.tokens == ("v1", "projects", "*", "logs", "**")
    # Multi-segment variables keep %2F encoded (the spec's rule), and decode the rest.
    assert t.match("/v1/projects/p1/logs/a%2Fb/c%20d:tail") == {("name",): "projects/p1/logs/a%2Fb/c d"}
    assert t.match("/v1/projects/p1/logs:tail") is None
    assert t.match("/v1/projects/p1/logs/x") is None  # verb missing
    nested = compile_template("/v1/{thing.id}/*")
    assert nested.match("/v1/abc/anything") == {("thing", "id"): "abc"}


@pytest.mark.parametrize(
    "text",
    ["v1/x", "/v1/{}", "/v1/{a=b/{c}}", "/v1/**/x", "/v1/{a", "/v1/x:", "/v1/x y}"],
)
def test_malformed_templates_are_refused_at_start_up(text: str) -> None:
    with pytest.raises(TemplateError):
        compile_template(text)


def _route(method: str, text: str) -> Route:
    any_method = next(iter(services()[0].methods))
    return Route(method, compile_template(text), any_method, "", "")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("/v1/{a}/x", "/v1/{b}/x"),
        ("/v1/{a}/x", "/v1/y/x"),
        ("/v1/{a=**}", "/v1/y/x/z"),
        ("/v1/*/x/**", "/v1/a/*/b"),
    ],
)
def test_ambiguous_routes_are_refused_at_start_up(a: str, b: str) -> None:
    with pytest.raises(TemplateError, match="ambiguous routes"):
        check_unambiguous([_route("GET", a), _route("GET", b)])


@pytest.mark.parametrize(
    ("a", "b"),
    [("/v1/{a}/x", "/v1/{b}/y"), ("/v1/{a}", "/v1/{a}/x"), ("/v1/{a}:run", "/v1/{a}:stop"), ("/v1/x/**", "/v1/y/**")],
)
def test_distinct_routes_are_accepted(a: str, b: str) -> None:
    check_unambiguous([_route("GET", a), _route("GET", b)])
    check_unambiguous([_route("GET", a), _route("POST", a)])


def test_a_new_annotated_rpc_appears_without_edge_code() -> None:
    router = Router(routes_from([*services(), things_service()]))
    get = router.match("GET", "/v9/things/t1")
    rename = router.match("POST", "/v9/things/t1:rename")
    assert isinstance(get, Match) and get.route.grpc_path == "/edgetest.v1.Things/GetThing"
    assert isinstance(rename, Match) and rename.route.body == "*"
    assert rename.path_params == {("name",): "t1"}


def test_additional_bindings_are_routes_too() -> None:
    routes = routes_from([things_service()])
    assert [(r.http_method, r.template.text, r.method.name) for r in routes] == [
        ("GET", "/v9/things/{name}", "GetThing"),
        ("GET", "/v9/items/{name}", "GetThing"),
        ("POST", "/v9/things/{name}:rename", "RenameThing"),
    ]


def test_routes_of_any_length_and_with_double_wildcards_are_found_and_405_looks_at_every_length() -> None:
    method = next(r.method for r in routes_from(services()))
    router = Router(
        [
            Route("GET", compile_template("/v1/{name=files/**}"), method, "", ""),
            Route("GET", compile_template("/v1/a/{id}"), method, "", ""),
            Route("POST", compile_template("/v1/a/{id}/b/c"), method, "", ""),
        ]
    )
    for path in ("/v1/files/x", "/v1/files/x/y/z"):
        found = router.match("GET", path)
        assert isinstance(found, Match) and found.path_params == {("name",): path.removeprefix("/v1/")}
    found = router.match("GET", "/v1/a/7")
    assert isinstance(found, Match) and found.path_params == {("id",): "7"}
    assert router.match("GET", "/v1/a/7/b/c") == ["POST"]
    assert router.match("DELETE", "/v1/files/x/y") == ["GET"]
    assert router.match("GET", "/v1/a/7/b") is None
