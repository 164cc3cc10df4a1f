"""`make run`: start the whole stack on loopback, seed a demo workspace, print how to use it, and stop
everything on Ctrl-C.

Processes: Prometheus (Debian's package, scraping the demo workload every 5 s, data kept in
``data/prometheus``), the local Loki stand-in (``testing/loki_double``; skipped when
``MONITORING_LOKI_URL`` names a real Loki), the demo workload (in this process), ``monitoring-server``
and ``monitoring-edge``. A second run reuses ``data/``: the database, the Prometheus data, the admin
token and the demo key.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import uvicorn

from devstack import seed
from devstack.workload import Workload
from edge import console
from testing.procs import Process, grpc_serving

REPO = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent


def _addr(env: str, default: str) -> str:
    return os.environ.get(env) or default


class Settings:
    def __init__(self) -> None:
        self.data = pathlib.Path(os.environ.get("DEVSTACK_DATA", REPO / "data")).resolve()
        self.grpc_addr = _addr("MONITORING_GRPC_ADDR", "127.0.0.1:50051")
        self.edge_addr = _addr("MONITORING_EDGE_ADDR", "127.0.0.1:8080")
        self.prometheus_addr = _addr("DEVSTACK_PROMETHEUS_ADDR", "127.0.0.1:9090")
        self.loki_addr = _addr("DEVSTACK_LOKI_ADDR", "127.0.0.1:3100")
        self.workload_addr = _addr("DEVSTACK_WORKLOAD_ADDR", "127.0.0.1:9101")
        self.external_loki = os.environ.get("MONITORING_LOKI_URL", "")
        # When the misbehaving demo app first misbehaves, and how long a breach must last to alert.
        self.bad_after_s = float(os.environ.get("DEVSTACK_BAD_AFTER_S", "120"))
        self.alert_hold_s = int(os.environ.get("DEVSTACK_ALERT_HOLD_S", "60"))
        self.db = self.data / "monitoring.db"
        self.logs = self.data / "logs"

    @property
    def loki_url(self) -> str:
        return self.external_loki or f"http://{self.loki_addr}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.prometheus_addr}"

    @property
    def edge_url(self) -> str:
        return f"http://{self.edge_addr}"


def _die_with_parent() -> None:
    # Children get SIGTERM if this process dies without cleaning up (even on SIGKILL): nothing is left.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Children:
    def __init__(self, logs: pathlib.Path) -> None:
        self._logs = logs
        self.started: list[Process] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        process = Process(name, argv, self._logs, env, preexec_fn=_die_with_parent)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop(signal.SIGTERM, timeout=10)


def _http_ok(url: str) -> bool:
    return httpx.get(url, timeout=1).status_code == 200


def _prometheus_config(settings: Settings, workload: Workload, workspace_id: str) -> str:
    jobs = []
    for app, index, path in workload.targets():
        jobs.append(
            {
                "targets": [settings.workload_addr],
                "labels": {
                    "__metrics_path__": path,
                    "workspace_id": workspace_id,
                    "app_id": app.id,
                    "instance": f"{app.name}-{index}",
                },
            }
        )
    config = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "scrape_configs": [{"job_name": "dooor-demo", "static_configs": jobs}],
    }
    return json.dumps(config, indent=2)  # JSON is valid YAML


def _start_prometheus(children: _Children, settings: Settings, workload: Workload, workspace_id: str) -> None:
    if not pathlib.Path("/usr/bin/prometheus").exists():
        raise RuntimeError(
            "Prometheus is not installed: run `sudo apt-get install -y prometheus` (or `make run` as root)"
        )
    (settings.data / "prometheus").mkdir(parents=True, exist_ok=True)
    config = settings.data / "prometheus.yml"
    config.write_text(_prometheus_config(settings, workload, workspace_id))
    process = children.start(
        "prometheus",
        [
            "/usr/bin/prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={settings.data / 'prometheus'}",
            f"--web.listen-address={settings.prometheus_addr}",
            "--storage.tsdb.retention.time=35d",
        ],
    )
    process.wait_until(lambda: _http_ok(f"{settings.prometheus_url}/-/ready"))


def _state(settings: Settings) -> dict[str, str]:
    path = settings.data / "devstack.json"
    if path.exists():
        return json.loads(path.read_text())
    state = {"admin_token": secrets.token_urlsafe(24), "workspace_id": "ws_demo"}
    path.write_text(json.dumps(state))
    path.chmod(0o600)
    return state


def _save_state(settings: Settings, state: dict[str, str]) -> None:
    path = settings.data / "devstack.json"
    path.write_text(json.dumps(state))
    path.chmod(0o600)


async def _serve_workload(workload: Workload, settings: Settings, state: dict[str, str], stop: asyncio.Event) -> None:
    host, port = settings.workload_addr.rsplit(":", 1)
    server = uvicorn.Server(uvicorn.Config(workload.asgi(), host=host, port=int(port), log_level="warning"))
    pusher = asyncio.create_task(workload.push_logs(settings.loki_url, state["workspace_id"], stop))
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await asyncio.gather(serving, pusher)


def _grpcurl() -> str:
    # The PyPI wrapper installs grpcurl into the venv, which is not on a new user's PATH.
    return shutil.which("grpcurl") or os.path.relpath(BIN / "grpcurl")


def _print_banner(settings: Settings, state: dict[str, str], workload: Workload) -> None:
    key, ws, edge = state["key"], state["workspace_id"], settings.edge_url
    app = workload.apps[0].id
    base = f"{edge}/api/v1/workspaces/{ws}/monitoring"
    auth = f'-H "Authorization: Bearer {key}"'
    lines = [
        "",
        "Dooor OS Monitoring API is running (Ctrl-C stops everything).",
        f"  edge (REST/SSE)  {edge}     OpenAPI: {edge}/api/v1/openapi.json",
        f"  gRPC             {settings.grpc_addr}",
        f"  Prometheus       {settings.prometheus_url}",
        f"  Loki             {settings.loki_url}{'' if settings.external_loki else '  (local stand-in for Loki)'}",
        f"  logs             {settings.logs}",
        "",
        f"Workspace {ws}, apps: {', '.join(f'{a.id} ({a.name})' for a in workload.apps)}",
        f"API key: {key}",
        "",
        "Web console, signed in to the demo workspace (the key sits in the #fragment, which no server sees):",
        f"  {console.signed_in_url(edge, ws, key, [a.id for a in workload.apps])}",
        "",
        f'curl -s {auth} "{base}/apps/{app}/metrics?period=1h"',
        f'curl -s {auth} "{base}/apps/{app}/health"',
        f'curl -s {auth} "{base}/apps/{app}/logs?limit=5"',
        f'curl -N {auth} -H "Accept: text/event-stream" "{base}/apps/{app}/logs/stream"',
        f'curl -s {auth} "{base}/overview"',
        f'curl -s {auth} "{base}/alerts?resolved=false"',
        f'curl -s -X PATCH {auth} "{base}/alerts/<alertId>/resolve"',
        f"{_grpcurl()} -plaintext -H 'authorization: Bearer {key}'"
        f""" -d '{{"workspace_id": "{ws}", "app_id": "{app}"}}'"""
        f" {settings.grpc_addr} dooor.monitoring.v1.MonitoringService/GetAppHealth",
        "",
    ]
    print("\n".join(lines), flush=True)


@contextlib.contextmanager
def _signals_set(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _server_config(settings: Settings) -> pathlib.Path:
    """The server's TOML on this machine: webhooks may go to a receiver on localhost (refused by default)."""
    path = settings.data / "monitoring.toml"
    path.write_text("[notify]\n# A development stack: webhooks to this machine.\nallow_private_destinations = true\n")
    return path


async def run(settings: Settings) -> None:
    settings.logs.mkdir(parents=True, exist_ok=True)
    state = _state(settings)
    workload = Workload(bad_after_s=settings.bad_after_s)
    children = _Children(settings.logs)
    stop = asyncio.Event()
    with _signals_set(stop):
        try:
            _start_prometheus(children, settings, workload, state["workspace_id"])
            if not settings.external_loki:
                host, port = settings.loki_addr.rsplit(":", 1)
                loki = children.start(
                    "loki", [sys.executable, "-m", "testing.loki_double", "--host", host, "--port", port]
                )
                loki.wait_until(lambda: _http_ok(f"{settings.loki_url}/ready"))
            env = {
                "MONITORING_GRPC_ADDR": settings.grpc_addr,
                "MONITORING_DB": str(settings.db),
                "MONITORING_PROMETHEUS_URL": settings.prometheus_url,
                "MONITORING_LOKI_URL": settings.loki_url,
                "MONITORING_ADMIN_TOKEN": state["admin_token"],
                "MONITORING_CONFIG_FILE": os.environ.get("MONITORING_CONFIG_FILE") or str(_server_config(settings)),
            }
            server = children.start("monitoring-server", [str(BIN / "monitoring-server")], env)
            server.wait_until(lambda: grpc_serving(settings.grpc_addr))
            edge_env = {"MONITORING_EDGE_ADDR": settings.edge_addr, "MONITORING_UPSTREAM": settings.grpc_addr}
            edge = children.start("monitoring-edge", [str(BIN / "monitoring-edge")], edge_env)
            edge.wait_until(lambda: _http_ok(f"{settings.edge_url}/readyz"))
            state["key"] = await seed.demo_workspace(settings.grpc_addr, state, workload.apps, settings.alert_hold_s)
            _save_state(settings, state)
            workload_task = asyncio.create_task(_serve_workload(workload, settings, state, stop))
            _print_banner(settings, state, workload)
            await _watch(children, stop)
            stop.set()
            await workload_task
        finally:
            children.stop_all()
    print("stopped; data kept in", settings.data, flush=True)


async def _watch(children: _Children, stop: asyncio.Event) -> None:
    """Waits for Ctrl-C, or for a child to die (then says which and stops the rest)."""
    while not stop.is_set():
        for process in children.started:
            if not process.alive():
                print(f"{process.name} exited ({process.popen.returncode}); see {process.log_path}", file=sys.stderr)
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


def main() -> None:
    started = time.monotonic()
    settings = Settings()
    print(f"starting the local stack in {settings.data} ...", flush=True)
    try:
        asyncio.run(run(settings))
    except (RuntimeError, TimeoutError, subprocess.SubprocessError) as error:
        print(f"make run failed after {time.monotonic() - started:.0f} s: {error}", file=sys.stderr)
        raise SystemExit(1) from None
