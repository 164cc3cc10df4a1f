"""The OpenAPI 3.1 document: valid, generated from the same routes and JSON rule as the responses."""

from __future__ import annotations

import json
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
        ("query", "q"),
        ("query", "regex"),
        ("query", "minSeverity"),
        ("query", "direction"),
        ("header", "Grpc-Timeout"),
    }
    assert params[("query", "severity")]["enum"] == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    assert params[("query", "minSeverity")]["enum"] == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    assert params[("query", "direction")]["enum"] == ["newest_first", "oldest_first"]
    assert params[("query", "startTime")] == {"type": "string", "format": "date-time"}
    alerts = DOC["paths"]["/api/v1/workspaces/{workspace_id}/monitoring/alerts"]["get"]
    assert {p["name"] for p in alerts["parameters"] if p["in"] == "query"} == {"appId", "resolved", "limit"}


def test_the_metrics_parameters_are_period_or_a_custom_window_and_the_extras() -> None:
    metrics = DOC["paths"]["/api/v1/workspaces/{workspace_id}/monitoring/apps/{app_id}/metrics"]["get"]
    params = {p["name"]: p["schema"] for p in metrics["parameters"] if p["in"] == "query"}
    assert set(params) == {"period", "include", "startTime", "endTime", "step"}
    assert params["period"]["enum"] == ["1h", "6h", "24h", "7d", "30d"]
    assert params["include"] == {"type": "array", "items": {"type": "string"}}
    assert params["startTime"] == params["endTime"] == {"type": "string", "format": "date-time"}
    assert params["step"] == {"type": "string"}  # a Prometheus duration, parsed after authentication
    described = {p["name"]: p["description"] for p in metrics["parameters"]}
    for value in ("latency_percentiles", "status_classes", "deploys"):
        assert f"`{value}`" in described["include"]
    assert "`300s`" in described["step"]
    # The new response fields are optional: the documented JSON (the six series) stays valid against the schema.
    response = DOC["components"]["schemas"]["GetAppMetricsResponse"]
    assert set(response["required"]) == {
        "appId",
        "serviceName",
        "cpu",
        "memory",
        "requestCount",
        "requestLatency",
        "errorRate",
        "instanceCount",
    }
    for name in ("latencyP50", "latencyP95", "latencyP99", "requests2xx", "requests3xx", "requests4xx", "requests5xx"):
        assert response["properties"][name]["$ref"] == "#/components/schemas/MetricSeries"


def test_the_stream_is_documented_as_server_sent_events_with_query_token_auth() -> None:
    stream = DOC["paths"]["/api/v1/workspaces/{workspace_id}/monitoring/apps/{app_id}/logs/stream"]["get"]
    ok = stream["responses"]["200"]
    assert list(ok["content"]) == ["text/event-stream"]
    assert ok["x-sse-events"] == {
        "message": {"$ref": "#/components/schemas/LogEntry"},
        "gap": {"$ref": "#/components/schemas/StreamGap"},
        "end": {"$ref": "#/components/schemas/StreamEnd"},
        "error": {"$ref": "#/components/schemas/Error"},
    }
    assert ("header", "Last-Event-ID") in {(p["in"], p["name"]) for p in stream["parameters"]}
    assert stream["security"] == [{"bearer": []}, {"queryToken": []}, {"cookieToken": []}]
    assert "security" not in DOC["paths"]["/api/v1/workspaces/{workspace_id}/monitoring/overview"]["get"]


def _shape(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "description"}


def test_nullability_and_omission_follow_the_json_rule() -> None:
    schemas = DOC["components"]["schemas"]
    uptime = schemas["GetAppHealthResponse"]["properties"]["uptime"]
    assert _shape(uptime) == {"type": ["integer", "null"], "format": "int64"}
    assert _shape(schemas["Alert"]["properties"]["resolvedAt"]) == {"type": ["string", "null"], "format": "date-time"}
    assert "nextPageToken" not in schemas["ListAppLogsResponse"]["required"]
    assert set(schemas["ActivityItem"]["required"]) == {"type", "appName", "timestamp"}


def test_a_new_annotated_rpc_is_documented_without_edge_code() -> None:
    doc = openapi.document(routes_from([*services(), things_service()]), title="t", version="v1")
    validate(doc)
    assert doc["paths"]["/v9/things/{name}"]["get"]["operationId"] == "GetThing"
    assert "/v9/things/{name}:rename" in doc["paths"]
    assert doc["components"]["schemas"]["Thing"]["properties"]["sizeBytes"] == {"type": "integer", "format": "int64"}
    # Built at run time, so not in gen/'s descriptor set: no comments, and no empty descriptions either.
    assert "description" not in doc["paths"]["/v9/things/{name}"]["get"]
    assert "description" not in doc["components"]["schemas"]["Thing"]


def test_descriptions_are_the_proto_comments() -> None:
    metrics = DOC["paths"]["/api/v1/workspaces/{workspace_id}/monitoring/apps/{app_id}/metrics"]["get"]
    assert metrics["description"] == "Returns time series of one app's metrics over a period or a custom window."
    params = {p["name"]: p for p in metrics["parameters"]}
    assert params["app_id"]["description"] == "Required. The app whose metrics are returned."
    # An enum parameter: the field's comment, then each documented string with its value's comment.
    period = params["period"]["description"]
    assert period.startswith("Optional. The time window ending now.")
    assert "- `7d`: The last 7 days, one point per hour." in period
    logs = DOC["paths"]["/api/v1/workspaces/{workspace_id}/monitoring/apps/{app_id}/logs"]["get"]
    limit = next(p for p in logs["parameters"] if p["name"] == "limit")
    assert "1 to 1000" in limit["description"]
    # googleapis cross-references (`[ListAppLogs][dooor.monitoring.v1.…]`) read as plain text.
    assert "][dooor." not in json.dumps(DOC)
    assert DOC["tags"] == [
        {
            "name": "MonitoringService",
            "description": "Reads the metrics, health, logs and alerts of a workspace's apps.",
        }
    ]


def _undescribed(schema: Any, where: str) -> list[str]:
    if not isinstance(schema, dict):
        return []
    missing = []
    for name, prop in schema.get("properties", {}).items():
        if "description" not in prop:
            missing.append(f"{where}.{name}")
    return missing


def test_every_operation_parameter_schema_and_property_is_described() -> None:
    # The proto documents every method, message and field; a new one without a comment fails here.
    missing = []
    for path, operations in DOC["paths"].items():
        for method, operation in operations.items():
            missing += [f"{method} {path}"] if "description" not in operation else []
            missing += [f"{method} {path} {p['name']}" for p in operation["parameters"] if "description" not in p]
    for name, schema in DOC["components"]["schemas"].items():
        if name == "Error":  # google.rpc.Status's JSON shape, written in edge/openapi.py
            continue
        missing += [name] if "description" not in schema else []
        missing += _undescribed(schema, name)
    assert missing == []


def test_every_enum_value_is_described() -> None:
    enums = [
        prop
        for schema in DOC["components"]["schemas"].values()
        for prop in schema.get("properties", {}).values()
        if "enum" in prop
    ]
    assert enums
    for prop in enums:
        listed = [line for line in prop["description"].split("\n") if line.startswith("- `")]
        strings = [value for value in prop["enum"] if value is not None]
        assert [line.split("`")[1] for line in listed] == strings
        assert all(not line.endswith(": ") for line in listed), prop["description"]


def test_a_body_rule_documents_its_body_and_offers_no_query_parameter_for_it() -> None:
    silences = DOC["paths"]["/api/v1/workspaces/{workspace_id}/monitoring/silences"]
    create = silences["post"]
    assert [p["name"] for p in create["parameters"] if p["in"] == "query"] == []
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert {"appId", "alertTypes", "startsAt", "endsAt", "comment"} <= set(body["properties"])
    assert body["properties"]["alertTypes"]["items"]["enum"] == [
        "high_cpu",
        "high_memory",
        "high_error_rate",
        "high_latency",
    ]
    assert "requestBody" not in silences["get"]
    acknowledge = DOC["paths"]["/api/v1/workspaces/{workspace_id}/monitoring/alerts/{alert_id}/acknowledge"]["post"]
    ack_body = acknowledge["requestBody"]["content"]["application/json"]["schema"]
    assert set(ack_body["properties"]) == {"note", "until"}  # body "*": the fields the path does not set
    assert [p["name"] for p in acknowledge["parameters"] if p["in"] == "query"] == []
