"""The OpenAPI 3.1 document: valid, generated from the same routes and JSON rule as the responses."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from edge import openapi
from edge.main import services
from edge.routes import routes_from
from tests.edge.annotated import things_service
from tests.edge.contract import Example, examples
from tests.edge.test_jsonmap import BUILDERS, EXTRA, render, route_of

DOC = openapi.document(routes_from(services()), title="t", version="v1")


def _response_schema(example: Example) -> dict[str, Any]:
    route = route_of(example).route
    operation = DOC["paths"][openapi._openapi_path(route)][route.http_method.lower()]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    return {**schema, "components": DOC["components"]}


def test_the_document_validates_as_openapi_3_1() -> None:
    validate(DOC)
    assert DOC["openapi"] == "3.1.0"


@pytest.mark.parametrize("example", examples(), ids=lambda e: f"{e.http_method} {e.path.split('/monitoring/')[1]}")
def test_the_contract_examples_and_our_rendering_both_satisfy_the_documented_schema(example: Example) -> None:
    validator = OAS31Validator(_response_schema(example))
    rendered = render(route_of(example), BUILDERS[route_of(example).route.method.name]())
    assert list(validator.iter_errors(rendered)) == []
    if route_of(example).route.method.name in EXTRA:
        return  # the example lacks keys the service adds on purpose (reasons, appName), which the schema requires
    assert list(validator.iter_errors(example.body)) == []


def test_the_schema_rejects_what_the_rule_never_renders() -> None:
    alerts = next(e for e in examples() if e.path.endswith("/alerts"))
    validator = OAS31Validator(_response_schema(alerts))
    wrong_type = [{**alerts.body[0], "severity": "WARNING"}]
    missing = [{k: v for k, v in alerts.body[0].items() if k != "resolvedAt"}]
    assert not validator.is_valid(wrong_type)
    assert not validator.is_valid(missing)
    assert not validator.is_valid({"alerts": alerts.body})  # List Alerts is a top-level array


def test_parameters_are_the_documented_names_with_their_allowed_values() -> None:
    logs = DOC["paths"]["/api/v1/workspaces/{workspace_id}/monitoring/apps/{app_id}/logs"]["get"]
    params = {(p["in"], p["name"]): p["schema"] for p in logs["parameters"]}
    assert set(params) == {
        ("path", "workspace_id"),
        ("path", "app_id"),
        ("query", "limit"),
        ("query", "severity"),
        ("query", "pageToken"),
        ("query", "startTime"),
        ("query", "endTime"),
        ("header", "Grpc-Timeout"),
    }
    assert params[("query", "severity")]["enum"] == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    assert params[("query", "startTime")] == {"type": "string", "format": "date-time"}
    alerts = DOC["paths"]["/api/v1/workspaces/{workspace_id}/monitoring/alerts"]["get"]
    assert {p["name"] for p in alerts["parameters"] if p["in"] == "query"} == {"appId", "resolved", "limit"}


def test_the_stream_is_documented_as_server_sent_events_with_query_token_auth() -> None:
    stream = DOC["paths"]["/api/v1/workspaces/{workspace_id}/monitoring/apps/{app_id}/logs/stream"]["get"]
    ok = stream["responses"]["200"]
    assert list(ok["content"]) == ["text/event-stream"]
    assert ok["x-sse-events"] == {
        "message": {"$ref": "#/components/schemas/LogEntry"},
        "gap": {"$ref": "#/components/schemas/StreamGap"},
        "error": {"$ref": "#/components/schemas/Error"},
    }
    assert ("header", "Last-Event-ID") in {(p["in"], p["name"]) for p in stream["parameters"]}
    assert stream["security"] == [{"bearer": []}, {"queryToken": []}, {"cookieToken": []}]
    assert "security" not in DOC["paths"]["/api/v1/workspaces/{workspace_id}/monitoring/overview"]["get"]


def test_nullability_and_omission_follow_the_json_rule() -> None:
    schemas = DOC["components"]["schemas"]
    assert schemas["GetAppHealthResponse"]["properties"]["uptime"] == {"type": ["integer", "null"], "format": "int64"}
    assert schemas["Alert"]["properties"]["resolvedAt"] == {"type": ["string", "null"], "format": "date-time"}
    assert "nextPageToken" not in schemas["ListAppLogsResponse"]["required"]
    assert set(schemas["ActivityItem"]["required"]) == {"type", "appName", "timestamp"}


def test_a_new_annotated_rpc_is_documented_without_edge_code() -> None:
    doc = openapi.document(routes_from([*services(), things_service()]), title="t", version="v1")
    validate(doc)
    assert doc["paths"]["/v9/things/{name}"]["get"]["operationId"] == "GetThing"
    assert "/v9/things/{name}:rename" in doc["paths"]
    assert doc["components"]["schemas"]["Thing"]["properties"]["sizeBytes"] == {"type": "integer", "format": "int64"}
