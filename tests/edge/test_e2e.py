"""The edge in front of a real monitoring-server process: every documented curl line, auth, validation."""

from __future__ import annotations

import pathlib
import re
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest
from google.protobuf import message_factory
from openapi_schema_validator import OAS31Validator

import jsonmap
from edge import openapi, request
from edge.errors import HTTP_STATUS
from edge.routes import Match
from testing import alert_rows
from testing.edge import EdgeProcess, running_edge
from testing.platform import Tenant
from testing.procs import ServerProcess
from tests.edge.contract import Example, compare, examples
from tests.edge.test_jsonmap import ALERT_ADDITIONS, EXTRA, ROUTER

pytestmark = pytest.mark.timeout(60)
OPENAPI = openapi.document(ROUTER.routes, title="t", version="v1")


@pytest.fixture(scope="module")
def edge(server: ServerProcess, log_dir: pathlib.Path) -> Iterator[EdgeProcess]:
    with running_edge(log_dir, server.addr) as process:
        yield process


@pytest.fixture
async def http(edge: EdgeProcess, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {tenant.key}"}
    async with httpx.AsyncClient(base_url=edge.url, headers=headers, timeout=10) as client:
        yield client


async def _direct(channel: grpc.aio.Channel, match: Match, query: str, tenant: Tenant) -> tuple[object, object]:
    """The same call made directly over gRPC: (reply, None) or (None, AioRpcError)."""
    route = match.route
    message = request.build(route, match.path_params, request.parse_query(query), {}, b"")
    response = message_factory.GetMessageClass(route.method.output_type)
    call = channel.unary_unary(
        route.grpc_path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=response.FromString
    )
    try:
        return await call(message, metadata=tenant.auth, timeout=10), None
    except grpc.aio.AioRpcError as error:
        return None, error


def _schema(match: Match) -> dict[str, object]:
    route = match.route
    operation = OPENAPI["paths"][openapi._openapi_path(route)][route.http_method.lower()]
    return {
        **operation["responses"]["200"]["content"]["application/json"]["schema"],
        "components": OPENAPI["components"],
    }


@pytest.mark.parametrize("example", examples(), ids=lambda e: f"{e.http_method} {e.path.split('/monitoring/')[1]}")
async def test_each_documented_curl_line_answers_what_the_service_answers(
    http: httpx.AsyncClient, channel: grpc.aio.Channel, tenant: Tenant, example: Example
) -> None:
    app = await tenant.add_app()
    path = example.concrete_path(wsId=tenant.workspace_id, appId=app.id, alertId="alr_unknown")
    match = ROUTER.match(example.http_method, path)
    assert isinstance(match, Match)
    reply, error = await _direct(channel, match, example.query, tenant)
    response = await http.request(example.http_method, f"{path}?{example.query}")
    assert response.headers["content-type"] == "application/json"
    if error is not None:
        body = response.json()["error"]
        assert response.status_code == HTTP_STATUS[error.code()]
        # A backend failure carries a request id of its own per call: compare the rest of the message.
        assert (body["status"], _without_request_id(body["message"])) == (
            error.code().name,
            _without_request_id(error.details() or ""),
        )
        return
    assert response.status_code == 200
    body = match.route.response_body
    expected = jsonmap.field_to_json(reply, body) if body else jsonmap.to_json(reply)  # type: ignore[arg-type]
    assert response.json() == expected
    assert list(OAS31Validator(_schema(match)).iter_errors(response.json())) == []
    if response.json():  # the documented keys and types, wherever the service had data to show
        assert (
            compare(response.json(), example.body, extra=EXTRA.get(match.route.method.name, frozenset()), values=False)
            == []
        )


async def test_list_alerts_is_a_top_level_array(http: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await http.get(f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts?resolved=false&limit=5")
    assert response.status_code == 200
    assert response.json() == []


async def test_no_key_is_401_with_www_authenticate(http: httpx.AsyncClient, tenant: Tenant) -> None:
    path = f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts"
    response = await http.get(path, headers={"authorization": ""})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="monitoring"'
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"


async def test_a_malformed_key_is_401(http: httpx.AsyncClient, tenant: Tenant) -> None:
    path = f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts"
    response = await http.get(path, headers={"authorization": "Bearer dor_sk_short"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="monitoring", error="invalid_token"'
    assert "malformed API key" in response.json()["error"]["message"]


async def test_another_workspace_is_403_and_an_unknown_app_404(http: httpx.AsyncClient, tenant: Tenant) -> None:
    other = await http.get("/api/v1/workspaces/ws_someone_else/monitoring/alerts")
    assert other.status_code == 403
    assert other.json()["error"]["details"][0]["reason"] == "PERMISSION_DENIED"
    missing = await http.get(f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/apps/app_nope/health")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "app 'app_nope' not found"
    alert = await http.patch(f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts/alr_nope/resolve")
    assert alert.status_code == 404


@pytest.mark.parametrize(
    ("query", "field", "checked_by"),
    [
        ("limit=abc", "limit", "edge"),
        ("limit=5000", "limit", "server"),
        ("resolved=yes", "resolved", "edge"),
        ("appId=bad%20id", "app_id", "server"),
        ("status=open", "status", "edge"),
    ],
)
async def test_bad_parameters_are_400_naming_the_field(
    http: httpx.AsyncClient, tenant: Tenant, query: str, field: str, checked_by: str
) -> None:
    response = await http.get(f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts?{query}")
    assert response.status_code == 400, checked_by
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    violations = next(d for d in error["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    assert violations["fieldViolations"][0]["field"] == field


async def test_a_timestamp_whose_plus_became_a_space_gets_the_hint(http: httpx.AsyncClient, tenant: Tenant) -> None:
    app = await tenant.add_app()
    path = f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/apps/{app.id}/logs"
    response = await http.get(f"{path}?startTime=2025-01-20T10:00:00+02:00")
    assert response.status_code == 400
    assert "encode it as %2B" in response.json()["error"]["message"]


async def test_unknown_path_is_404_and_wrong_method_405_with_allow(http: httpx.AsyncClient, tenant: Tenant) -> None:
    missing = await http.get("/api/v1/workspaces/x/monitoring/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["details"][0]["reason"] == "ROUTE_NOT_FOUND"
    wrong = await http.delete(f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"


async def test_the_access_log_has_the_requests_but_never_the_key(
    http: httpx.AsyncClient, edge: EdgeProcess, tenant: Tenant
) -> None:
    await http.get(f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts?limit=3")
    line = f'"GET /api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts?limit=3" 200'
    log = await edge.logged(line)
    assert line in log
    assert tenant.key not in log


async def test_readyz_follows_the_real_server(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "SERVING"})


def test_cors_is_off_by_default_and_follows_the_allow_list(
    edge: EdgeProcess, server: ServerProcess, log_dir: pathlib.Path, tenant: Tenant
) -> None:
    path = f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts"
    origin = {"origin": "https://app.example"}
    assert "access-control-allow-origin" not in httpx.get(edge.url + path, headers=origin).headers
    env = {"MONITORING_EDGE_CORS_ORIGINS": "https://app.example"}
    with running_edge(log_dir, server.addr, env) as cors:
        preflight = httpx.options(
            cors.url + path,
            headers={
                **origin,
                "access-control-request-method": "GET",
                "access-control-request-headers": "authorization",
            },
        )
        other = httpx.get(cors.url + path, headers={"origin": "https://evil.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers


def _fire(server: ServerProcess, tenant: Tenant, app_id: str, alert_type: str, minutes_ago: int) -> str:
    alert_id = f"alr_{tenant.workspace_id}_{alert_type}"
    triggered = time.time_ns() - minutes_ago * 60 * 10**9
    alert_rows.insert_alert(
        server.db,
        alert_id=alert_id,
        workspace_id=tenant.workspace_id,
        app_id=app_id,
        alert_type=alert_type,
        triggered_ns=triggered,
    )
    return alert_id


async def test_alerts_list_and_resolve_with_the_documented_shapes(
    http: httpx.AsyncClient, server: ServerProcess, tenant: Tenant
) -> None:
    app = await tenant.add_app(name="worker-service")
    older = _fire(server, tenant, app.id, "high_memory", minutes_ago=30)
    newer = _fire(server, tenant, app.id, "high_cpu", minutes_ago=5)
    base = f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/alerts"
    listed = await http.get(f"{base}?resolved=false")
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()] == [newer, older]
    documented = next(e for e in examples() if e.path.endswith("/alerts"))
    listed_extra = frozenset(f"$[{i}].{key}" for i in range(2) for key in ALERT_ADDITIONS)
    assert compare(listed.json(), documented.body, extra=listed_extra, values=False) == []
    assert listed.json()[1]["resolvedAt"] is None and listed.json()[1]["type"] == "high_memory"

    resolved = await http.patch(f"{base}/{older}/resolve")
    assert resolved.status_code == 200
    documented = next(e for e in examples() if e.path.endswith("/resolve"))
    assert compare(resolved.json(), documented.body, extra=EXTRA["ResolveAlert"], values=False) == []
    assert resolved.json()["resolved"] is True and resolved.json()["resolvedAt"].endswith("Z")
    still_open = await http.get(f"{base}?resolved=false&appId={app.id}")
    assert [a["id"] for a in still_open.json()] == [newer]


def _without_request_id(message: str) -> str:
    return re.sub(r" \(request id [0-9a-f]+\)$", "", message)
