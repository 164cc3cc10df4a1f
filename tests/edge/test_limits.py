"""The edge's limits and hardening: reply size, CORS with ``*``, control characters in the access log.

Real processes: a Loki double holding one app's 1000 lines of 6 KB, a monitoring-server over it, and edges
in front (one with the default receive limit, one with a 1 MiB limit); one more edge over an unreachable
upstream, which answers 404s, /healthz and CORS without calling it.
"""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest

import envconfig
from edge import config as edge_config
from edge.app import escape_log
from testing.edge import EdgeProcess, running_edge
from testing.loki import LokiDouble, running_loki
from testing.platform import Tenant, new_tenant
from testing.procs import free_port, running_server

pytestmark = pytest.mark.timeout(120)

PAGE = 1000  # the server's MAX_LIMIT (server/logs/listing.py)
LINE_BYTES = 6 * 1024  # a page of them (~6 MB) is over gRPC's 4 MiB default, under the edge's 64 MiB
SMALL_LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def loki(log_dir: pathlib.Path) -> Iterator[LokiDouble]:
    with running_loki(log_dir) as double:
        yield double


@pytest.fixture(scope="module")
def logs_server(log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory, loki: LokiDouble) -> Iterator[str]:
    env = {"MONITORING_LOKI_URL": loki.url, "MONITORING_TOKEN_SECRET": "edge-limits-secret-0123456789abcdef"}
    db = tmp_path_factory.mktemp("edge-limits") / "monitoring.db"
    with running_server(log_dir, db, env) as server:
        yield server.addr


@pytest.fixture(scope="module")
def edge(log_dir: pathlib.Path, logs_server: str) -> Iterator[EdgeProcess]:
    with running_edge(log_dir, logs_server) as process:
        yield process


@pytest.fixture(scope="module")
def small_edge(log_dir: pathlib.Path, logs_server: str) -> Iterator[EdgeProcess]:
    with running_edge(log_dir, logs_server, {"MONITORING_EDGE_MAX_RECEIVE_BYTES": str(SMALL_LIMIT)}) as process:
        yield process


@pytest.fixture(scope="module")
def open_edge(log_dir: pathlib.Path) -> Iterator[EdgeProcess]:
    """CORS for any origin, over an upstream nobody listens on."""
    with running_edge(log_dir, f"127.0.0.1:{free_port()}", {"MONITORING_EDGE_CORS_ORIGINS": "*"}) as process:
        yield process


@pytest.fixture(scope="module")
async def big_page(logs_server: str, loki: LokiDouble) -> tuple[Tenant, str]:
    """A tenant and the logs path of its app, whose last second holds PAGE lines of LINE_BYTES each."""
    async with grpc.aio.insecure_channel(logs_server) as channel:
        tenant = await new_tenant(channel)
        app = await tenant.add_app()
    start = time.time_ns() - 10**9
    lines = [[start + i * 1000, f"{i:06d} " + "x" * (LINE_BYTES - 7)] for i in range(PAGE)]
    stream = {"workspace_id": tenant.workspace_id, "app_id": app.id, "level": "info"}
    await asyncio.to_thread(loki.push, [{"stream": stream, "values": lines}])
    return tenant, f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/apps/{app.id}/logs?limit={PAGE}"


async def _get(edge: EdgeProcess, tenant: Tenant, path: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {tenant.key}"}
    async with httpx.AsyncClient(base_url=edge.url, headers=headers, timeout=30) as client:
        return await client.get(path)


async def test_a_full_page_of_6_kb_lines_passes_through_the_edge(
    edge: EdgeProcess, big_page: tuple[Tenant, str]
) -> None:
    response = await _get(edge, *big_page)
    assert response.status_code == 200, response.text[:300]
    logs = response.json()["logs"]
    assert len(logs) == PAGE
    assert {len(entry["message"]) for entry in logs} == {LINE_BYTES}


async def test_a_reply_over_the_limit_is_a_502_that_does_not_invite_a_retry(
    small_edge: EdgeProcess, big_page: tuple[Tenant, str]
) -> None:
    response = await _get(small_edge, *big_page)
    assert response.status_code == 502, response.text[:300]
    assert "retry-after" not in response.headers
    error = response.json()["error"]
    assert error["status"] == "INTERNAL"
    assert error["message"].startswith(f"the reply is larger than the edge accepts ({SMALL_LIMIT} bytes)")
    assert error["details"][0]["reason"] == "REPLY_TOO_LARGE"


def test_the_receive_limit_defaults_to_64_mib_and_a_bad_one_is_refused_naming_it() -> None:
    assert edge_config.load([], {}).max_receive_bytes == 64 * 1024 * 1024
    for value in ("64", str(2**31)):
        with pytest.raises(envconfig.ConfigError, match=r"MONITORING_EDGE_MAX_RECEIVE_BYTES or --max-receive-bytes"):
            edge_config.load([], {"MONITORING_EDGE_MAX_RECEIVE_BYTES": value})


def test_cors_for_any_origin_never_allows_credentials(open_edge: EdgeProcess) -> None:
    """With credentials, Starlette would echo any Origin and let every site read the API with the cookie."""
    cookie = {"origin": "https://evil.example", "cookie": "access_token=dor_sk_secret"}
    simple = httpx.get(f"{open_edge.url}/healthz", headers=cookie)
    preflight = httpx.options(
        f"{open_edge.url}/healthz",
        headers={**cookie, "access-control-request-method": "GET", "access-control-request-headers": "authorization"},
    )
    for response in (simple, preflight):
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers


async def test_a_newline_in_the_path_is_escaped_in_one_access_log_line(open_edge: EdgeProcess) -> None:
    async with httpx.AsyncClient(base_url=open_edge.url) as client:
        response = await client.get("/api/v1/x%0Aforged")
    assert response.status_code == 404
    logged = '"GET /api/v1/x\\x0aforged" 404'
    log = await open_edge.logged(logged)
    forged = [line for line in log.splitlines() if "forged" in line]
    assert len(forged) == 1 and logged in forged[0], forged


def test_escape_log_leaves_printable_text_and_escapes_what_could_forge_a_line() -> None:
    assert escape_log("/api/v1/café?limit=5") == "/api/v1/café?limit=5"
    assert escape_log('a\r\nb"c\\d\x7f\u2028') == "a\\x0d\\x0ab\\x22c\\x5cd\\x7f\\u2028"


def test_a_retry_delay_from_the_server_becomes_retry_after() -> None:
    """RESOURCE_EXHAUSTED with google.rpc.RetryInfo (a stream cap, say) → 429 with Retry-After, as AIP-193 maps it."""
    from edge.errors import ApiError
    from server.errors import ResourceExhausted

    refused = ResourceExhausted("too many log streams", reason="TOO_MANY_STREAMS", retry_after_s=5, metadata={})
    error = ApiError(refused.code, refused.message, refused.details())
    assert (error.http_status, error.headers["retry-after"]) == (429, "5")
    assert "retry-after" not in ApiError(refused.code, "no delay given", []).headers
