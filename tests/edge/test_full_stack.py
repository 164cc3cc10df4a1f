"""The edge over the whole stack: a real server wired to the Loki double and a real (empty) Prometheus.

Live logs end to end over SSE (httpx and a headless Chromium ``EventSource`` with the key in the query
string), and schemathesis fuzzing the running edge from its own OpenAPI document.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import pathlib
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing.edge import EdgeProcess, running_edge
from testing.loki import LokiDouble, running_loki
from testing.platform import Tenant, new_tenant
from testing.procs import BIN, Process, ServerProcess, free_port, running_server
from testing.prometheus import PrometheusProcess

pytestmark = pytest.mark.timeout(120)


class Page(http.server.ThreadingHTTPServer):
    """Serves one HTML page on its own origin and collects what the page POSTs to /report."""

    def __init__(self) -> None:
        self.html = b""
        self.reports: queue.Queue[dict[str, object]] = queue.Queue()
        super().__init__(("127.0.0.1", free_port()), _PageHandler)
        self.origin = f"http://127.0.0.1:{self.server_address[1]}"


class _PageHandler(http.server.BaseHTTPRequestHandler):
    server: Page

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(self.server.html)))
        self.end_headers()
        self.wfile.write(self.server.html)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.reports.put(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    server = Page()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(
    log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory, page: Page
) -> Iterator[tuple[ServerProcess, EdgeProcess, LokiDouble]]:
    work = tmp_path_factory.mktemp("edge-stack")
    prometheus = PrometheusProcess(log_dir, work / "tsdb", name="edge-prometheus")
    try:
        with running_loki(log_dir) as loki:
            env = {
                "MONITORING_LOKI_URL": loki.url,
                "MONITORING_PROMETHEUS_URL": prometheus.url,
                "MONITORING_TOKEN_SECRET": "edge-tests-secret-0123456789abcdef",
            }
            with running_server(log_dir, work / "monitoring.db", env) as server:
                edge_env = {"MONITORING_EDGE_CORS_ORIGINS": page.origin}
                with running_edge(log_dir, server.addr, edge_env) as edge:
                    yield server, edge, loki
    finally:
        prometheus.stop()


@pytest.fixture
async def owner(stack: tuple[ServerProcess, EdgeProcess, LokiDouble]) -> AsyncIterator[Tenant]:
    async with grpc.aio.insecure_channel(stack[0].addr) as channel:
        yield await new_tenant(channel)


async def _tails_opened(loki: LokiDouble, at_least: int, within: float = 10.0) -> None:
    """Waits until the double has opened ``at_least`` tails in total (a counter: lingering ones don't matter)."""
    deadline = time.monotonic() + within
    while (await asyncio.to_thread(loki.stats))["tails_opened"] < at_least:
        assert time.monotonic() < deadline, "the server never opened a Loki tail"
        await asyncio.sleep(0.05)


def _push(loki: LokiDouble, tenant: Tenant, app_id: str, level: str, lines: list[str]) -> None:
    now = time.time_ns()
    stream = {"workspace_id": tenant.workspace_id, "app_id": app_id, "level": level}
    loki.push([{"stream": stream, "values": [[now + i, line] for i, line in enumerate(lines)]}])


async def _events(response: httpx.Response, count: int, within: float = 15.0) -> list[tuple[str, dict[str, object]]]:
    """The first ``count`` (id, data) pairs of an SSE response, read from the raw lines."""
    found: list[tuple[str, dict[str, object]]] = []
    event_id = ""
    async with asyncio.timeout(within):
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                found.append((event_id, json.loads(line[6:])))
                if len(found) == count:
                    return found
    return found


async def test_live_logs_reach_an_sse_client_and_resume_after_last_event_id(
    stack: tuple[ServerProcess, EdgeProcess, LokiDouble], owner: Tenant
) -> None:
    _, edge, loki = stack
    app = await owner.add_app()
    path = f"/api/v1/workspaces/{owner.workspace_id}/monitoring/apps/{app.id}/logs/stream"
    headers = {"authorization": f"Bearer {owner.key}", "accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=edge.url, timeout=20) as client:
        tails = (await asyncio.to_thread(loki.stats))["tails_opened"]
        async with client.stream("GET", path, headers=headers) as response:
            assert response.status_code == 200
            await _tails_opened(loki, tails + 1)
            await asyncio.to_thread(_push, loki, owner, app.id, "error", ["Request failed", "Retrying", "Recovered"])
            first = await _events(response, 3)
        assert first[0][1] == {
            "timestamp": first[0][1]["timestamp"],
            "severity": "ERROR",
            "message": "Request failed",
        }
        assert str(first[0][1]["timestamp"]).endswith("Z")
        assert all(event_id for event_id, _ in first)
        # Reconnect as EventSource does: Last-Event-ID of the first event replays the two after it.
        async with client.stream("GET", path, headers={**headers, "last-event-id": first[0][0]}) as again:
            replayed = await _events(again, 2)
    assert [data["message"] for _, data in replayed] == ["Retrying", "Recovered"]
    assert [i for i, _ in replayed] == [i for i, _ in first[1:]]


def _chromium(url: str, profile: pathlib.Path, log_dir: pathlib.Path) -> Process:
    argv = [
        shutil.which("chromium") or "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        url,
    ]
    return Process("chromium", argv, log_dir)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (scripts/system-deps.sh)")
async def test_a_browser_event_source_receives_a_log_event_with_the_key_in_the_query_string(
    stack: tuple[ServerProcess, EdgeProcess, LokiDouble],
    owner: Tenant,
    page: Page,
    log_dir: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    _, edge, loki = stack
    app = await owner.add_app()
    stream = f"{edge.url}/api/v1/workspaces/{owner.workspace_id}/monitoring/apps/{app.id}/logs/stream"
    page.html = f"""<!doctype html><script>
      const report = (body) => fetch("/report", {{method: "POST", body: JSON.stringify(body)}});
      const source = new EventSource({json.dumps(stream)} + "?access_token=" + {json.dumps(owner.key)});
      source.onopen = () => report({{open: true}});
      source.onmessage = (event) => {{
        report({{data: JSON.parse(event.data), id: event.lastEventId}});
        source.close();
      }};
      source.onerror = () => report({{error: source.readyState}});
    </script>""".encode()
    tails = (await asyncio.to_thread(loki.stats))["tails_opened"]
    browser = _chromium(page.origin + "/", tmp_path / "profile", log_dir)
    try:
        opened = await asyncio.to_thread(page.reports.get, timeout=30)
        assert opened == {"open": True}, f"EventSource did not open: {opened}"
        await _tails_opened(loki, tails + 1)
        await asyncio.to_thread(_push, loki, owner, app.id, "info", ["Request received"])
        received = await asyncio.to_thread(page.reports.get, timeout=15)
    finally:
        browser.stop()
    assert received["data"] == {
        "timestamp": received["data"]["timestamp"],  # type: ignore[index]
        "severity": "INFO",
        "message": "Request received",
    }
    assert received["id"]
    assert owner.key not in edge.log()


def _unimplemented(server: ServerProcess, tenant: Tenant, app_id: str) -> list[str]:
    """The RPCs this server build answers UNIMPLEMENTED right now (→ 501, which is not fuzzed)."""
    probes = {
        "GetWorkspaceOverview": pb.GetWorkspaceOverviewRequest(workspace_id=tenant.workspace_id),
        "GetAppHealth": pb.GetAppHealthRequest(workspace_id=tenant.workspace_id, app_id=app_id),
        "GetAppMetrics": pb.GetAppMetricsRequest(workspace_id=tenant.workspace_id, app_id=app_id),
        "ListAppLogs": pb.ListAppLogsRequest(workspace_id=tenant.workspace_id, app_id=app_id),
    }
    missing = []
    with grpc.insecure_channel(server.addr) as channel:
        for name, request in probes.items():
            call = channel.unary_unary(
                f"/dooor.monitoring.v1.MonitoringService/{name}", request_serializer=lambda m: m.SerializeToString()
            )
            try:
                call(request, metadata=tenant.auth, timeout=10)
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                    missing.append(name)
    return missing


async def test_schemathesis_finds_no_5xx_and_no_response_breaking_the_document(
    stack: tuple[ServerProcess, EdgeProcess, LokiDouble], owner: Tenant, tmp_path: pathlib.Path
) -> None:
    server, edge, _ = stack
    app = await owner.add_app()
    # Real ids, so that fuzzing reaches the service rather than stopping at 403.
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.workspace_id" = "{owner.workspace_id}"\n"path.app_id" = "{app.id}"\n')
    excluded = ["StreamAppLogs", *await asyncio.to_thread(_unimplemented, server, owner, app.id)]
    argv = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{edge.url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {owner.key}",
        # A client-chosen deadline shorter than the call is a legitimate 504; fuzz everything else.
        "--header",
        "Grpc-Timeout: 20S",
        "--checks",
        "all",
        # These need data the fuzzer cannot create (alerts) or assume schema-valid input is always accepted,
        # while the service also checks id syntax and ranges that the descriptors do not declare.
        "--exclude-checks",
        "positive_data_acceptance,ensure_resource_availability,use_after_free,object_level_authorization",
        "--max-examples",
        "25",
        "--seed",
        "20261128",
        "--request-timeout",
        "25",
        "--no-color",
        "--report-dir",
        str(tmp_path / "report"),
        *[arg for name in excluded for arg in ("--exclude-operation-id", name)],
    ]
    done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=100, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "passed" in done.stdout
