"""The abuse suite: what one tenant, a forgotten tab or a broken backend did to everyone else, run black-box.

Issue 13 listed the attacks; each is replayed here against real processes on loopback: a real Prometheus over
the session's backfilled month (``backfilled``), the Loki double, a ``monitoring-server`` with PlatformService
on an admin listener of its own and small limits (below), and a ``monitoring-edge`` in front. Tenants speak
REST and SSE to the edge as any client does; the operator speaks gRPC to the admin port.

Where each item of the issue is tested (this file replays the cross-tenant scenarios; focused tests sit beside
the code they test):

1. bounded replay memory: :func:`test_resuming_an_old_cursor_costs_bounded_server_memory`;
   tests/logs/test_replay_memory.py (the bound itself, a ``cursor_expired`` gap).
2. Loki's tail slots: :func:`test_one_workspace_flooding_streams_is_refused_and_another_keeps_its_live_logs`;
   tests/logs/test_tail_budget.py, tests/logs/test_tail_hub.py.
3. the evaluator under API floods:
   :func:`test_one_workspace_flooding_metrics_and_overview_is_limited_and_another_keeps_working`;
   tests/api/test_ratelimit.py, tests/metrics/test_prometheus_client.py (pools, coalescing, range cache),
   bench/bench_flood.py (1,000 apps evaluated under a flood, docs/benchmarks.md).
4. indexes: tests/store (``EXPLAIN`` on every request-path query, SQLite and PostgreSQL), bench/bench_store.py.
5. streams end: :func:`test_a_revoked_keys_open_stream_ends_with_an_end_event`; tests/logs/test_stream_limits.py
   (lifetime, caps, slow consumer, shutdown), tests/edge/test_sse.py (heartbeats).
6. no internals: :func:`test_backend_outages_with_credentials_in_the_urls_show_callers_no_internals`;
   tests/server/test_no_internals.py.
7. transport security: :func:`test_platform_service_is_not_on_the_tenants_port`; tests/server/test_tls.py,
   tests/server/test_admin_listener.py, tests/edge (TLS), tests/server/test_config.py (``_FILE`` secrets).
8. sizes: :func:`test_a_page_of_1000_lines_of_6_kb_reaches_the_client`; tests/edge/test_limits.py,
   tests/server/test_reply_caps.py.
9. small ones: :func:`test_a_newline_in_a_path_cannot_forge_an_access_log_line`; tests/edge/test_limits.py (CORS),
   tests/server/test_store_health.py, tests/server/test_config.py, tests/metrics/test_configuration.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator

import grpc
import httpx
import pytest

from dooor.monitoring.v1 import platform_pb2 as ppb
from dooor.monitoring.v1 import platform_pb2_grpc
from testing import metrics_data as data
from testing.edge import EdgeProcess, running_edge
from testing.loki import LokiDouble, running_loki
from testing.metrics_data import Backfilled
from testing.platform import ADMIN, Tenant, bearer, new_tenant, unique_id
from testing.procs import ServerProcess, free_port, running_server
from tests.abuse.sse import Event, events, next_event, opened

pytestmark = pytest.mark.timeout(180)

RATE_PER_KEY = 20  # calls per second and key (default 50): small enough for one test client to exceed
BURST_PER_KEY = 20
STREAMS_PER_KEY = 3  # default 20
TAILED_APPS_PER_WORKSPACE = 2  # default 3
KEY_RECHECK_S = 1.0  # default 5
FLOOD_S = 6.0
FLOOD_MAX_REQUESTS = 3000
FLOOD_WORKERS = 8
MIB = 1024 * 1024
# The bound on a replay's memory (docs/logs.md, "Replay"): the hub's window and one page, not the lines replayed.
# Measured: 0.4–0.7 MiB of peak growth for 100,000 lines; the code issue 13 replaced grew by 65–165 MiB for 200,000.
REPLAY_MEMORY_BOUND = 16 * MIB
REPLAYED_LINES = 100_000


@dataclasses.dataclass(frozen=True)
class Stack:
    server: ServerProcess
    admin_addr: str
    edge: EdgeProcess
    loki: LokiDouble
    prometheus: Backfilled


@pytest.fixture(scope="module")
def stack(backfilled: Backfilled, log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("abuse")
    config = folder / "monitoring.toml"
    config.write_text(
        f"[api]\nrate_per_key = {RATE_PER_KEY}\nburst_per_key = {BURST_PER_KEY}\n"
        f"[loki]\nmax_streams_per_key = {STREAMS_PER_KEY}\n"
        f"max_tailed_apps_per_workspace = {TAILED_APPS_PER_WORKSPACE}\n"
        f"stream_key_recheck_s = {KEY_RECHECK_S}\ntail_linger_s = 1.0\ntail_watchdog_s = 1.0\n"
    )
    admin_addr = f"127.0.0.1:{free_port()}"
    with running_loki(log_dir) as loki:
        env = {
            "MONITORING_CONFIG_FILE": str(config),
            "MONITORING_ADMIN_ADDR": admin_addr,
            "MONITORING_PROMETHEUS_URL": backfilled.prometheus.url,
            "MONITORING_LOKI_URL": loki.url,
            "MONITORING_TOKEN_SECRET": "abuse-suite-secret-0123456789abcdef",
            "MONITORING_EVAL_INTERVAL": "0.5",
        }
        with (
            running_server(log_dir, folder / "monitoring.db", env) as server,
            running_edge(log_dir, server.addr) as edge,
        ):
            yield Stack(server, admin_addr, edge, loki, backfilled)


@dataclasses.dataclass(frozen=True)
class Outage:
    server: ServerProcess
    admin_addr: str
    edge: EdgeProcess
    internals: list[str]  # what a caller must never see: credentials, addresses, paths, query text


@contextlib.asynccontextmanager
async def channels(stack: Stack | Outage) -> AsyncIterator[tuple[grpc.aio.Channel, grpc.aio.Channel]]:
    """Channels to the tenants' port and to the admin port."""
    async with (
        grpc.aio.insecure_channel(stack.server.addr) as tenants,
        grpc.aio.insecure_channel(stack.admin_addr) as admin,
    ):
        yield tenants, admin


@dataclasses.dataclass(frozen=True)
class Ports:
    """Open channels to a server's two listeners."""

    tenants: grpc.aio.Channel
    admin: grpc.aio.Channel

    async def tenant(self, workspace_id: str | None = None) -> Tenant:
        return await new_tenant(self.tenants, workspace_id, admin=self.admin)

    async def add_key(self, tenant: Tenant) -> str:
        request = ppb.CreateApiKeyRequest(workspace_id=tenant.workspace_id, name="second")
        return (await tenant.platform.CreateApiKey(request, metadata=ADMIN)).secret


@pytest.fixture(scope="module")
async def ports(stack: Stack) -> AsyncIterator[Ports]:
    async with channels(stack) as (tenants, admin):
        yield Ports(tenants, admin)


def client(stack: Stack | Outage, tenant: Tenant | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {tenant.key}"} if tenant else {}
    return httpx.AsyncClient(base_url=stack.edge.url, headers=headers, timeout=30)


def app_path(tenant: Tenant, app_id: str, tail: str) -> str:
    return f"/api/v1/workspaces/{tenant.workspace_id}/monitoring/apps/{urllib.parse.quote(app_id, safe='')}/{tail}"


def labels(tenant: Tenant, app_id: str) -> dict[str, str]:
    return {"workspace_id": tenant.workspace_id, "app_id": app_id, "level": "info"}


async def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, (response.status_code, response.text[:300])
    seconds = int(response.headers["retry-after"])
    assert seconds >= 1
    assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    return seconds


async def next_line(stream: AsyncIterator[Event], within: float) -> str:
    """The next log entry's message, skipping gap events."""
    deadline = time.monotonic() + within
    while True:
        event = await next_event(stream, max(0.1, deadline - time.monotonic()))
        if event.kind == "message":
            return str(event.data["message"])


# --- 3: one workspace floods metrics and overview ---------------------------------------------------------------


async def test_one_workspace_flooding_metrics_and_overview_is_limited_and_another_keeps_working(
    stack: Stack, ports: Ports
) -> None:
    # The noisy workspace holds the month of series (the heaviest queries there are); app ids are unique, so
    # the calm one has an app of its own, evaluated on the same ticks.
    noisy = await ports.tenant(data.WORKSPACE)
    await data.seed_apps(noisy)
    calm = await ports.tenant()
    calm_app = (await calm.add_app()).id
    # The noisy workspace's own dashboard, on a second key: the evaluator's judgement of a healthy app.
    dashboard_key = await ports.add_key(noisy)
    watched = [
        (calm.key, app_path(calm, calm_app, "health")),
        (calm.key, f"/api/v1/workspaces/{calm.workspace_id}/monitoring/alerts"),
        (dashboard_key, app_path(noisy, "app_healthy", "health")),
    ]
    flood_paths = [app_path(noisy, data.FULL, f"metrics?period={p}") for p in ("1h", "6h", "24h", "7d", "30d")]
    flood_paths.append(f"/api/v1/workspaces/{noisy.workspace_id}/monitoring/overview")
    statuses: list[int] = []
    delays: set[str] = set()
    watched_codes: list[int] = []
    healths: dict[str, list[dict[str, object]]] = {path: [] for _, path in watched if path.endswith("/health")}

    async with client(stack) as http:
        await until_evaluated(http, dashboard_key, app_path(noisy, "app_healthy", "health"))
        stop_at = time.monotonic() + FLOOD_S

        async def flood(worker: int) -> None:
            i = worker
            while time.monotonic() < stop_at and len(statuses) < FLOOD_MAX_REQUESTS:
                response = await http.get(flood_paths[i % len(flood_paths)], headers=bearer(noisy.key))
                statuses.append(response.status_code)
                if response.status_code == 429:
                    delays.add(response.headers.get("retry-after", "missing"))
                i += 1

        async def watch() -> None:
            while time.monotonic() < stop_at:
                replies = await asyncio.gather(*(http.get(path, headers=bearer(key)) for key, path in watched))
                for (_, path), reply in zip(watched, replies, strict=True):
                    watched_codes.append(reply.status_code)
                    if path in healths and reply.status_code == 200:
                        healths[path].append(reply.json())
                await asyncio.sleep(0.2)

        await asyncio.gather(watch(), *(flood(w) for w in range(FLOOD_WORKERS)))

    refused = statuses.count(429)
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    assert refused > 0 and "missing" not in delays, (refused, delays)
    # The token bucket: at most the burst plus the rate over the flood (and a little for the clock).
    assert statuses.count(200) <= BURST_PER_KEY + RATE_PER_KEY * (FLOOD_S + 2), statuses.count(200)
    # Everyone else: every call answered, the evaluator's ticks went on, and its judgement did not move.
    assert watched_codes and set(watched_codes) == {200}, sorted(set(watched_codes))
    for path, seen in healths.items():
        ticks = {str(health["lastCheckedAt"]) for health in seen}
        assert len(ticks) >= 3, f"the evaluator's ticks stalled during the flood ({path}): {sorted(ticks)}"
    assert {h["status"] for h in healths[app_path(noisy, "app_healthy", "health")]} == {"healthy"}


async def until_evaluated(http: httpx.AsyncClient, key: str, path: str, within: float = 15.0) -> None:
    """Until the app has a judgement (its first tick after it was added)."""
    deadline = time.monotonic() + within
    while (await http.get(path, headers=bearer(key))).json().get("status") in (None, "unknown"):
        assert time.monotonic() < deadline, f"{path} was not evaluated within {within} s"
        await asyncio.sleep(0.1)


# --- 2 and 5: one workspace floods streams ----------------------------------------------------------------------


async def test_one_workspace_flooding_streams_is_refused_and_another_keeps_its_live_logs(
    stack: Stack, ports: Ports
) -> None:
    noisy, calm = await ports.tenant(), await ports.tenant()
    noisy_apps = [(await noisy.add_app()).id for _ in range(TAILED_APPS_PER_WORKSPACE + 1)]
    calm_app = (await calm.add_app()).id
    second_key = await ports.add_key(noisy)
    async with client(stack) as http, contextlib.AsyncExitStack() as held:
        # The noisy key opens its cap of streams over the workspace's cap of tailed apps ...
        for n in range(STREAMS_PER_KEY):
            app = noisy_apps[n % TAILED_APPS_PER_WORKSPACE]
            response = await held.enter_async_context(opened(http, app_path(noisy, app, "logs/stream"), noisy.key))
            assert response.status_code == 200, response.status_code
        # ... one stream more is refused at once, to that key only, with a delay to retry after ...
        async with opened(http, app_path(noisy, noisy_apps[0], "logs/stream"), noisy.key) as over:
            await over.aread()
            retry_after(over)
            assert "open log streams per API key" in over.json()["error"]["message"]
        # ... and so is one more tailed app for the workspace, even with another of its keys.
        third_app = app_path(noisy, noisy_apps[-1], "logs/stream")
        async with opened(http, third_app, second_key) as over:
            await over.aread()
            retry_after(over)
            assert "apps" in over.json()["error"]["message"], over.json()

        # The other workspace opens its stream and sees a pushed line promptly.
        opened_tails = int(stack.loki.stats()["tails_opened"])  # before: the tail may open before the headers
        calm_stream = await held.enter_async_context(opened(http, app_path(calm, calm_app, "logs/stream"), calm.key))
        assert calm_stream.status_code == 200
        reader = events(calm_stream)
        first = asyncio.create_task(next_line(reader, within=15))
        await until(lambda: int(stack.loki.stats()["tails_opened"]) > opened_tails or first.done())
        stack.loki.push([{"stream": labels(calm, calm_app), "values": [[time.time_ns(), "calm and live"]]}])
        pushed = time.monotonic()
        assert await first == "calm and live"
        assert time.monotonic() - pushed < 5, "the other workspace's live line came late"


# --- 1: a cursor from long ago ----------------------------------------------------------------------------------


async def pushed_and_seen(
    stack: Stack, reader: AsyncIterator[Event], stream: dict[str, str], tails_before: int, at_ns: int, line: str
) -> Event:
    """Pushes ``line`` once the stream's upstream tail is open (Loki's count passed ``tails_before``), and
    returns the stream's event that carried it."""
    first = asyncio.create_task(next_event(reader, within=15))
    await until(lambda: int(stack.loki.stats()["tails_opened"]) > tails_before)
    stack.loki.push([{"stream": stream, "values": [[at_ns, line]]}])
    event = await first
    assert (event.kind, event.data["message"]) == ("message", line), event
    return event


def _rss(pid: int, field: str) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def _reset_peak(pid: int) -> None:
    """Resets the process's peak resident size (VmHWM) to its current one (proc(5), ``clear_refs``)."""
    pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")


async def test_resuming_an_old_cursor_costs_bounded_server_memory(stack: Stack, ports: Ports) -> None:
    tenant = await ports.tenant()
    app = (await tenant.add_app()).id
    path = app_path(tenant, app, "logs/stream")
    async with client(stack) as http:
        # A tab sees one line, then goes away ("the weekend"): its Last-Event-ID is that line's id.
        before = int(stack.loki.stats()["tails_opened"])
        async with opened(http, path, tenant.key) as stream:
            mark_ns = time.time_ns()
            mark = await pushed_and_seen(stack, events(stream), labels(tenant, app), before, mark_ns, "seen")
        assert mark.id
        await until(lambda: int(stack.loki.stats()["tails_open"]) == 0, within=15)  # the upstream tail lingered out

        # Meanwhile the app logged a lot.
        for start in range(0, REPLAYED_LINES, 20_000):
            values = [[mark_ns + 1 + i, f"missed {i:06d}"] for i in range(start, min(start + 20_000, REPLAYED_LINES))]
            await asyncio.to_thread(stack.loki.push, [{"stream": labels(tenant, app), "values": values}])

        pid = stack.server.popen.pid
        _reset_peak(pid)
        baseline = _rss(pid, "VmRSS")
        async with opened(http, path, tenant.key, last_event_id=mark.id) as stream:
            assert stream.status_code == 200
            reader = events(stream)
            seen = 0
            while seen < REPLAYED_LINES:
                event = await next_event(reader, within=30)
                assert event.kind == "message", event
                assert event.data["message"] == f"missed {seen:06d}"
                seen += 1
        growth = _rss(pid, "VmHWM") - baseline
    assert growth < REPLAY_MEMORY_BOUND, f"the replay grew the server by {growth / MIB:.1f} MiB"


# --- 5: a revoked key -------------------------------------------------------------------------------------------


async def test_a_revoked_keys_open_stream_ends_with_an_end_event(stack: Stack, ports: Ports) -> None:
    tenant = await ports.tenant()
    app = (await tenant.add_app()).id
    path = app_path(tenant, app, "logs/stream")
    async with client(stack) as http:
        before = int(stack.loki.stats()["tails_opened"])
        async with opened(http, path, tenant.key) as stream:
            reader = events(stream)
            await pushed_and_seen(stack, reader, labels(tenant, app), before, time.time_ns(), "while the key is good")

            keys = await tenant.platform.ListApiKeys(
                ppb.ListApiKeysRequest(workspace_id=tenant.workspace_id), metadata=ADMIN
            )
            for key in keys.api_keys:  # over the admin listener, as an operator would
                revoke = ppb.RevokeApiKeyRequest(workspace_id=tenant.workspace_id, key_id=key.id)
                await tenant.platform.RevokeApiKey(revoke, metadata=ADMIN)
            revoked = time.monotonic()
            end = await next_event(reader, within=KEY_RECHECK_S + 10)
            assert (end.kind, end.data) == ("end", {"reason": "revoked_key"}), end
            assert time.monotonic() - revoked < KEY_RECHECK_S + 5
            with pytest.raises(StopAsyncIteration):
                await next_event(reader, within=5)  # and the response ends
        again = await http.get(path, headers={"authorization": f"Bearer {tenant.key}"})
        assert again.status_code == 401


# --- 6: backend outages with credentials in the URLs ------------------------------------------------------------

SECRET = "tiger-s3cret"


@pytest.fixture(scope="module")
def outage(log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    """A server whose Prometheus and Loki URLs carry credentials and paths, with nobody listening at either."""
    folder = tmp_path_factory.mktemp("abuse-outage")
    prometheus_port, loki_port = free_port(), free_port()
    admin_addr = f"127.0.0.1:{free_port()}"
    env = {
        "MONITORING_PROMETHEUS_URL": f"http://scott:{SECRET}@127.0.0.1:{prometheus_port}/prom-prefix",
        "MONITORING_LOKI_URL": f"http://scott:{SECRET}@127.0.0.1:{loki_port}/loki-prefix",
        "MONITORING_TOKEN_SECRET": "abuse-suite-secret-0123456789abcdef",
        "MONITORING_ADMIN_ADDR": admin_addr,
        "MONITORING_EVAL_INTERVAL": "0.5",
    }
    internals = ["scott", SECRET, "127.0.0.1", str(prometheus_port), str(loki_port), "prefix", "query", "app_id="]
    with running_server(log_dir, folder / "monitoring.db", env) as server, running_edge(log_dir, server.addr) as edge:
        yield Outage(server, admin_addr, edge, internals)


async def test_backend_outages_with_credentials_in_the_urls_show_callers_no_internals(outage: Outage) -> None:
    stack, internals = outage, outage.internals
    async with channels(stack) as (channel, admin):
        tenant = await new_tenant(channel, admin=admin)
        app = (await tenant.add_app()).id
    async with client(stack, tenant) as http:
        for tail, backend in (("metrics?period=1h", "prometheus"), ("logs?limit=10", "Loki")):
            response = await http.get(app_path(tenant, app, tail))
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["status"] == "UNAVAILABLE"
            assert error["message"].startswith(f"{backend} unavailable: connection refused (request id "), error
            leaked = [text for text in internals if text in response.text]
            assert not leaked, (leaked, response.text)
            request_id = error["details"][0]["metadata"]["request_id"]
            # The operator finds the cause under that id, still without the password.
            log = stack.server.log()
            assert request_id in log and SECRET not in log

        health = await http.get(app_path(tenant, app, "health"))
        for _ in range(100):  # the evaluator's first tick after the app was added (0.5 s interval)
            if health.json().get("lastCheckedAt"):
                break
            await asyncio.sleep(0.1)
            health = await http.get(app_path(tenant, app, "health"))
        assert health.status_code == 200 and health.json()["status"] == "unknown", health.text
        assert health.json()["reasons"] == ["no data this tick: prometheus unavailable"], health.text
        assert not [text for text in internals if text in health.text], health.text


# --- 7: the operator's service is not on the tenants' port --------------------------------------------------------


async def test_platform_service_is_not_on_the_tenants_port(ports: Ports) -> None:
    platform = platform_pb2_grpc.PlatformServiceStub(ports.tenants)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.CreateWorkspace(ppb.CreateWorkspaceRequest(workspace_id=unique_id("ws")), metadata=ADMIN)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


# --- 8 and 9: sizes and the access log ----------------------------------------------------------------------------


async def test_a_page_of_1000_lines_of_6_kb_reaches_the_client(stack: Stack, ports: Ports) -> None:
    tenant = await ports.tenant()
    app = (await tenant.add_app()).id
    start = time.time_ns() - 10**9
    values = [[start + i * 1000, f"{i:06d} " + "x" * (6 * 1024 - 7)] for i in range(1000)]
    await asyncio.to_thread(stack.loki.push, [{"stream": labels(tenant, app), "values": values}])
    async with client(stack, tenant) as http:
        response = await http.get(app_path(tenant, app, "logs?limit=1000"))
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["logs"]) == 1000


async def test_a_newline_in_a_path_cannot_forge_an_access_log_line(stack: Stack) -> None:
    forged = f"forged-{unique_id('x')}"
    async with client(stack) as http:
        response = await http.get(f"/api/v1/workspaces/ws%0A127.0.0.1 - GET /{forged}/monitoring/overview")
    assert response.status_code in (400, 401, 404)
    log = await stack.edge.logged(forged)
    lines = [line for line in log.splitlines() if forged in line]
    assert len(lines) == 1 and "ws\\x0a127.0.0.1" in lines[0], lines
