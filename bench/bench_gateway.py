"""Our REST edge beside grpc-gateway 1.6.4 (built here from Debian's packages), in front of one server.

    .venv/bin/python bench/bench_gateway.py [--seconds 5] [--rounds 3] [--concurrency 50] [--alerts 20]
                                            [--build-dir DIR] [--baseline-edge DIR]

One real ``monitoring-server`` (SQLite file, backends unreachable, evaluator idle) serves every path.
In front of it, side by side: ``monitoring-edge`` (access log on, the default) and grpc-gateway 1.6.4
generated for ``protos/dooor/monitoring/v1/monitoring.proto`` (recipe: ``shared/reference/grpc-gateway-peer.md``).
With ``--baseline-edge DIR`` (a directory holding an ``edge`` package, e.g. a copy of an older edge) a third
front runs that code: before/after in the same run.

Build: missing Debian packages are installed with apt-get (root, Debian 12); the gateway's Go runtime package
is unpacked with ``dpkg-deb -x`` into a private GOPATH (installing it would conflict with the protobuf 1.5
stack); protoc runs the Debian plugins, the gateway's through a wrapper written here that declares proto3
``optional`` support; ``go build`` in GOPATH mode with nothing fetched. The same Go binary is the direct gRPC
client (``direct``), so the hop a front adds at one call at a time is measured against a lean client.

Each round, for GetAppHealth and ListAlerts (``--alerts`` rows), fronts in rotating order: ``wrk`` at
``--concurrency`` connections (req/s, p50, CPU per request of the front and of the server from
/proc/<pid>/stat), ``wrk`` at one connection (p50 and the front's CPU per request), and the direct Go client
at one call at a time (p50). CPU per request at c = 50 falls as a front's throughput rises (more requests per
wakeup, per write, per batch of gRPC completions), and on shared cores the throughput a front reaches varies
from phase to phase; at c = 1 nothing is batched, so that column compares the work per request itself.
``together`` is CPU per request at c = 50 with every front loaded at once (see ``_together``).
Printed: medians over the rounds and the edge/gateway ratios against issue 14's goals. ``--floors`` adds three
fronts that take the hop at c = 1 apart: Go's net/http alone (the gateway's HTTP handling), uvicorn alone as the
edge runs it, and uvicorn making one grpc.aio call on the edge's channel per request (both answer ``{}``).
The gateway's JSON is not our contract (enums as numbers, timestamps as objects under ``response_body``, proto
field names), so its rendering work differs from the edge's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import grpc
import httpx
import uvicorn
import uvloop

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from dooor.monitoring.v1 import monitoring_pb2 as pb
from testing import alert_rows
from testing.edge import EdgeProcess
from testing.platform import Tenant, new_tenant
from testing.procs import REPO, Process, cpu_seconds, free_port, running_server, unmetered

_PACKAGES = (
    "golang-go",
    "golang-grpc-gateway",
    "golang-google-grpc-dev",
    "golang-google-genproto-dev",
    "golang-github-golang-protobuf-1-5-dev",
    "golang-google-protobuf-dev",
    "protobuf-compiler",
    "protoc-gen-go",
    "protoc-gen-go-grpc",
    "golang-github-ghodss-yaml-dev",
    "golang-github-rogpeppe-fastuuid-dev",
    "golang-golang-x-net-dev",
    "wrk",
)
_RUNTIME_PACKAGE = "golang-github-grpc-ecosystem-grpc-gateway-dev"
_PROTOS = ("dooor/monitoring/v1/monitoring.proto", "dooor/monitoring/v1/json.proto")
_GO_PACKAGE = "bench.local/dooorpb"  # protoc-gen-go wants a dotted or slashed import path
_GO_NAME = "dooor_monitoring_v1"  # the name grpc-gateway 1.6.4 derives from the proto package

# protoc refuses the 1.6.4 plugin for files with proto3 `optional` because the plugin does not declare
# support; its output is right for them, so this wrapper runs it unchanged and sets the flag.
_WRAPPER = """#!{python}
import subprocess, sys
from google.protobuf.compiler import plugin_pb2
out = subprocess.run(["/usr/bin/protoc-gen-grpc-gateway"], input=sys.stdin.buffer.read(), capture_output=True,
                     check=True, timeout=60).stdout
response = plugin_pb2.CodeGeneratorResponse.FromString(out)
response.supported_features |= plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
sys.stdout.buffer.write(response.SerializeToString())
"""

# `serve LISTEN UPSTREAM`: the stock gateway mux; `direct UPSTREAM RPC WS APP KEY SECONDS`: calls one at a
# time and prints "<calls> <p50 ms>"; `floor LISTEN`: Go's net/http answering `{}` to every request, the
# gateway's HTTP handling without its transcoding or gRPC call (--floors).
_MAIN_GO = """package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "bench.local/dooorpb"
)

func serve(listen, upstream string) {
	mux := runtime.NewServeMux()
	opts := []grpc.DialOption{grpc.WithInsecure()}
	if err := pb.RegisterMonitoringServiceHandlerFromEndpoint(context.Background(), mux, upstream, opts); err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(listen, mux))
}

func direct(upstream, rpc, ws, app, key string, seconds float64) {
	conn, err := grpc.Dial(upstream, grpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	client := pb.NewMonitoringServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
	call := func() error {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var err error
		if rpc == "ListAlerts" {
			_, err = client.ListAlerts(c, &pb.ListAlertsRequest{WorkspaceId: ws})
		} else {
			_, err = client.GetAppHealth(c, &pb.GetAppHealthRequest{WorkspaceId: ws, AppId: app})
		}
		return err
	}
	if err := call(); err != nil {
		log.Fatal(err)
	}
	var latencies []float64
	stop := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	for time.Now().Before(stop) {
		started := time.Now()
		if err := call(); err != nil {
			log.Fatal(err)
		}
		latencies = append(latencies, float64(time.Since(started).Nanoseconds())/1e6)
	}
	sort.Float64s(latencies)
	fmt.Printf("%d %.4f\\n", len(latencies), latencies[len(latencies)/2])
}

func floor(listen string) {
	body := []byte("{}")
	log.Fatal(http.ListenAndServe(listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})))
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "floor" {
		floor(os.Args[2])
		return
	}
	if len(os.Args) >= 4 && os.Args[1] == "serve" {
		serve(os.Args[2], os.Args[3])
		return
	}
	if len(os.Args) == 8 && os.Args[1] == "direct" {
		seconds, err := strconv.ParseFloat(os.Args[7], 64)
		if err != nil {
			log.Fatal(err)
		}
		direct(os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6], seconds)
		return
	}
	log.Fatal("usage: gateway serve LISTEN UPSTREAM | direct UPSTREAM RPC WS APP KEY SECONDS | floor LISTEN")
}
"""

_WRK_P50 = re.compile(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_WRK_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_WRK_COUNT = re.compile(r"^\s+(\d+) requests in", re.M)
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_RPCS = ("GetAppHealth", "ListAlerts")


# -- building the gateway --------------------------------------------------------------------------------


def _run(argv: list[str], *, cwd: pathlib.Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} … failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _ensure_packages() -> None:
    missing = [p for p in _PACKAGES if not _installed(p)]
    if not missing:
        return
    print(f"installing {', '.join(missing)} (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], env=env)
    _run(["apt-get", "install", "-y", "-qq", *missing], env=env)


def _installed(package: str) -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, timeout=30)
    return done.returncode == 0 and done.stdout.endswith("installed")


def _googleapis_include() -> pathlib.Path:
    """The venv's googleapis-common-protos: the gateway's own third_party tree lacks field_behavior.proto."""
    import google.api

    return pathlib.Path(next(iter(google.api.__path__))).parent.parent


def build_gateway(build_dir: pathlib.Path) -> pathlib.Path:
    """The gateway binary in ``build_dir`` (built there unless a previous run left it)."""
    binary = build_dir / "gateway"
    built_from = build_dir / "main.go"
    if binary.exists() and built_from.exists() and built_from.read_text() == _MAIN_GO:
        return binary
    _ensure_packages()
    runtime_root = build_dir / "runtime"
    if not runtime_root.exists():
        _run(["apt-get", "download", _RUNTIME_PACKAGE], cwd=build_dir)
        deb = next(build_dir.glob(f"{_RUNTIME_PACKAGE}_*.deb"))
        _run(["dpkg-deb", "-x", str(deb), str(runtime_root)])
    generated = build_dir / "generated"
    shutil.rmtree(generated, ignore_errors=True)
    generated.mkdir()
    _generate(build_dir, generated)
    gopath = build_dir / "gopath"
    package_dir = gopath / "src" / _GO_PACKAGE
    main_dir = gopath / "src" / "bench.local" / "gateway"
    for folder in (package_dir, main_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    # protoc-gen-go honours paths=source_relative, the 1.6.4 plugin writes under its M path: gather both.
    for source in generated.rglob("*.go"):
        shutil.copy(source, package_dir / source.name)
    (main_dir / "main.go").write_text(_MAIN_GO)
    go_env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"{gopath}:{runtime_root}/usr/share/gocode:/usr/share/gocode",
        "GOCACHE": str(build_dir / "gocache"),
        "GOFLAGS": "",
    }
    _run(["go", "build", "-o", str(binary), "."], cwd=main_dir, env=go_env)
    built_from.write_text(_MAIN_GO)
    return binary


def _generate(build_dir: pathlib.Path, out: pathlib.Path) -> None:
    wrapper = build_dir / "protoc-gen-gw"
    wrapper.write_text(_WRAPPER.format(python=sys.executable))
    wrapper.chmod(0o755)
    mapping = ",".join(f"M{proto}={_GO_PACKAGE};{_GO_NAME}" for proto in _PROTOS)
    _run(
        [
            "protoc",
            f"-I{REPO / 'protos'}",
            f"-I{_googleapis_include()}",
            "-I/usr/include",
            f"--plugin=protoc-gen-gw={wrapper}",
            f"--go_out={mapping},paths=source_relative:{out}",
            f"--go-grpc_out={mapping},paths=source_relative:{out}",
            f"--gw_out={mapping},allow_repeated_fields_in_body=true:{out}",
            *_PROTOS,
        ]
    )


# -- processes -------------------------------------------------------------------------------------------


class GatewayProcess(Process):
    """The gateway binary serving on a free loopback port; ready once it answers HTTP at all. ``floor``: its
    ``floor`` mode instead, Go's net/http alone (``--floors``)."""

    def __init__(self, binary: pathlib.Path, log_dir: pathlib.Path, upstream: str, *, floor: bool = False):
        self.addr = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.addr}"
        argv = [str(binary), "floor", self.addr] if floor else [str(binary), "serve", self.addr, upstream]
        super().__init__("go-http" if floor else "grpc-gateway", argv, log_dir)
        self.wait_until(lambda: httpx.get(f"{self.url}/healthz", timeout=0.5).status_code > 0)


class FloorProcess(Process):
    """This script in ``--serve-floor`` mode: uvicorn as the edge runs it (uvloop, httptools, one write per
    response), answering ``{}`` to every request; with ``upstream``, after one grpc.aio unary call on the
    edge's own channel (``edge.upstream.channel``), its reply bytes left unparsed. The HTTP and gRPC floors
    of a Python front, without the edge's routing, request building, rendering and access log."""

    def __init__(self, name: str, log_dir: pathlib.Path, upstream: str | None):
        self.addr = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.addr}"
        argv = [sys.executable, str(pathlib.Path(__file__).resolve()), "--serve-floor", self.addr]
        # The I/O manager the edge picks for its gRPC client (edge/__init__.py); this script imports grpc first.
        env = {"GRPC_EXPERIMENTS": "-event_engine_client"}
        super().__init__(name, [*argv, *(["--floor-upstream", upstream] if upstream else [])], log_dir, env)
        self.wait_until(lambda: httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200)


def _floor_request(path: str) -> tuple[str, bytes]:
    """The RPC and serialized request for one of the benchmark's two paths (see ``run``)."""
    parts = path.split("/")
    if path.endswith("/alerts"):
        return "ListAlerts", pb.ListAlertsRequest(workspace_id=parts[4]).SerializeToString()
    return "GetAppHealth", pb.GetAppHealthRequest(workspace_id=parts[4], app_id=parts[7]).SerializeToString()


async def _serve_floor(listen: str, upstream: str | None) -> None:
    from edge import upstream as edge_upstream
    from edge.protocol import GatheringHttpToolsProtocol

    channel = edge_upstream.channel(upstream) if upstream else None
    service = pb.DESCRIPTOR.services_by_name["MonitoringService"].full_name
    # Registered with C-core as the edge's methods are (edge/app.py): resolved once, not on every call.
    calls = {rpc: channel.unary_unary(f"/{service}/{rpc}", _registered_method=True) for rpc in _RPCS} if channel else {}
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    body = {"type": "http.response.body", "body": b"{}"}

    async def app(scope: dict, receive: object, send: object) -> None:
        if calls and scope["path"] != "/healthz":
            rpc, request = _floor_request(scope["path"])
            key = next((value.decode() for name, value in scope["headers"] if name == b"authorization"), "")
            await calls[rpc](request, metadata=(("authorization", key),), timeout=10)
        await send(start)  # type: ignore[operator]
        await send(body)  # type: ignore[operator]

    host, port = listen.rsplit(":", 1)
    config = uvicorn.Config(
        app,
        host=host,
        port=int(port),
        http=GatheringHttpToolsProtocol,
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
    )
    await uvicorn.Server(config).serve()


@dataclasses.dataclass(frozen=True)
class Front:
    name: str
    url: str
    pid: int
    floor: bool = False  # a --floors front: measured alone, left out of the ratios and of `together`


async def _seed(addr: str, db: pathlib.Path, alerts: int) -> tuple[Tenant, str]:
    async with grpc.aio.insecure_channel(addr) as channel:
        tenant = await new_tenant(channel)
        app = await tenant.add_app(name="worker-service")
    alert_rows.insert_alert_history(
        db, workspace_id=tenant.workspace_id, app_id=app.id, count=alerts, now_ns=time.time_ns()
    )
    return tenant, app.id


# -- measuring -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Load:
    """One wrk phase: requests, req/s, p50 and the CPU seconds the front and the server spent."""

    requests: int
    rps: float
    p50_ms: float
    front_cpu_s: float
    server_cpu_s: float


def _wrk_argv(url: str, key: str, seconds: float, connections: int, threads: int) -> list[str]:
    argv = [shutil.which("wrk") or "/usr/bin/wrk", f"-t{threads}", f"-c{connections}"]
    return [*argv, f"-d{int(seconds)}s", "--latency", "-H", f"Authorization: Bearer {key}", url]


def _wrk_figures(url: str, out: str) -> tuple[int, float, float]:
    """Requests, req/s and p50 (ms) from wrk's output; exits if any answer was not 2xx."""
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url} answered {errors.group(1)} non-2xx responses:\n{out}")
    p50, rps, count = _WRK_P50.search(out), _WRK_RPS.search(out), _WRK_COUNT.search(out)
    assert p50 and rps and count, out
    return int(count.group(1)), float(rps.group(1)), float(p50.group(1)) * _UNITS[p50.group(2)]


def _wrk(url: str, key: str, seconds: float, connections: int, pids: tuple[int, int]) -> Load:
    argv = _wrk_argv(url, key, seconds, connections, min(2, connections))
    before = [cpu_seconds(pid) for pid in pids]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    after = [cpu_seconds(pid) for pid in pids]
    requests, rps, p50 = _wrk_figures(url, out)
    return Load(requests, rps, p50, after[0] - before[0], after[1] - before[1])


def _together(fronts: list[Front], path: str, key: str, args: argparse.Namespace) -> dict[str, float]:
    """CPU ms per request of each front with every front under load at once (``--concurrency`` each).

    Measured alone, one after the other, each front meets whatever else the machine runs at that moment
    and reaches its own throughput, and CPU per request falls as throughput rises (more requests share each
    wakeup, write and batch of gRPC completions). At once, the fronts share the same moments and the same
    server, but each gets about a share of the server's throughput and the cores are oversubscribed: less is
    batched than alone, which costs a Python front more than a Go one. A second view, not the goal's.
    """
    fronts = [f for f in fronts if not f.floor]
    before = {f.name: cpu_seconds(f.pid) for f in fronts}
    runs = {
        f.name: subprocess.Popen(
            _wrk_argv(f.url + path, key, args.seconds, args.concurrency, 1), stdout=subprocess.PIPE, text=True
        )
        for f in fronts
    }
    outs = {name: run.communicate(timeout=args.seconds + 30)[0] for name, run in runs.items()}
    after = {f.name: cpu_seconds(f.pid) for f in fronts}
    return {
        f.name: (after[f.name] - before[f.name]) * 1000 / _wrk_figures(f.url + path, outs[f.name])[0] for f in fronts
    }


def _direct_p50(binary: pathlib.Path, addr: str, rpc: str, tenant: Tenant, app_id: str, seconds: float) -> float:
    argv = [str(binary), "direct", addr, rpc, tenant.workspace_id, app_id, tenant.key, str(seconds)]
    out = _run(argv)
    return float(out.split()[1])


@dataclasses.dataclass
class Sample:
    """One front, one RPC, one round."""

    rps: float
    p50_ms: float
    front_ms_per_req: float
    server_ms_per_req: float
    p50_c1_ms: float
    hop_ms: float
    # At one call at a time nothing is batched (wakeups, writes, completions): every request pays its whole
    # cost, so this ratio does not move with the throughput each front happened to reach at c = 50.
    front_c1_ms_per_req: float
    # At c = 50 with every front under load at once (see _together).
    front_together_ms_per_req: float


def _measure(
    front: Front, server_pid: int, path: str, key: str, args: argparse.Namespace, direct: float, together: float
) -> Sample:
    url = front.url + path
    busy = _wrk(url, key, args.seconds, args.concurrency, (front.pid, server_pid))
    alone = _wrk(url, key, args.seconds, 1, (front.pid, server_pid))
    return Sample(
        busy.rps,
        busy.p50_ms,
        busy.front_cpu_s * 1000 / busy.requests,
        busy.server_cpu_s * 1000 / busy.requests,
        alone.p50_ms,
        alone.p50_ms - direct,
        alone.front_cpu_s * 1000 / alone.requests,
        together,
    )


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()


@contextlib.contextmanager
def _build_dir(given: str | None) -> Iterator[pathlib.Path]:
    if given:
        path = pathlib.Path(given).resolve()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="bench-gateway-build-") as tmp:
        yield pathlib.Path(tmp)


def _sanity(fronts: list[Front], paths: dict[str, str], key: str) -> None:
    """One request per front and RPC: 200, and the size of what each renders (the gateway's is not our JSON)."""
    for rpc, path in paths.items():
        sizes = []
        for front in fronts:
            reply = httpx.get(front.url + path, headers={"authorization": f"Bearer {key}"}, timeout=10)
            if reply.status_code != 200:
                raise SystemExit(f"{front.name} {rpc}: {reply.status_code} {reply.text[:300]}")
            sizes.append(f"{front.name} {len(reply.content)} B")
        print(f"  {rpc}: 200 from every front; body {', '.join(sizes)}")


async def run(args: argparse.Namespace) -> None:
    print(f"load before: {_uptime()}")
    with _build_dir(args.build_dir) as build_dir, tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        started = time.perf_counter()
        binary = build_gateway(build_dir)
        print(f"grpc-gateway 1.6.4 binary ready in {time.perf_counter() - started:.1f} s: {binary}")
        work = pathlib.Path(tmp)
        db = work / "monitoring.db"
        env = {"MONITORING_LOG_LEVEL": "WARNING", "MONITORING_EVAL_INTERVAL": "600", **unmetered(work)}
        with running_server(work, db, env) as server, contextlib.ExitStack() as stack:
            tenant, app_id = await _seed(server.addr, db, args.alerts)
            fronts = _start_fronts(stack, work, server.addr, binary, args.baseline_edge)
            if args.floors:
                fronts += _start_floors(stack, work, server.addr, binary)
            ws = tenant.workspace_id
            paths = {
                "GetAppHealth": f"/api/v1/workspaces/{ws}/monitoring/apps/{app_id}/health",
                "ListAlerts": f"/api/v1/workspaces/{ws}/monitoring/alerts",
            }
            _sanity(fronts, paths, tenant.key)
            for path in paths.values():  # warm-up: connections, caches, the interpreter's first calls
                for front in fronts:
                    _wrk(front.url + path, tenant.key, 1, args.concurrency, (front.pid, server.pid))
            samples: dict[tuple[str, str], list[Sample]] = {}
            directs: dict[str, list[float]] = {rpc: [] for rpc in paths}
            for round_ in range(args.rounds):
                for rpc, path in paths.items():
                    direct = _direct_p50(binary, server.addr, rpc, tenant, app_id, args.seconds)
                    directs[rpc].append(direct)
                    together = _together(fronts, path, tenant.key, args)
                    shift = round_ % len(fronts)
                    for front in fronts[shift:] + fronts[:shift]:
                        loaded = together.get(front.name, float("nan"))
                        sample = _measure(front, server.pid, path, tenant.key, args, direct, loaded)
                        samples.setdefault((rpc, front.name), []).append(sample)
                        print(f"  round {round_ + 1} {rpc:<13}{front.name:<14}{_row(sample)}", flush=True)
    print(f"load after: {_uptime()}")
    _report(samples, directs, [f.name for f in fronts if not f.floor], args)
    if args.floors:
        _report_floors(samples, directs)


def _start_fronts(
    stack: contextlib.ExitStack, work: pathlib.Path, upstream: str, binary: pathlib.Path, baseline: str | None
) -> list[Front]:
    # The access log stays on (the default), written at INFO to the edge's log file.
    edge_env = {"MONITORING_LOG_LEVEL": "INFO"}
    edge = EdgeProcess(work, upstream, edge_env)
    stack.callback(edge.stop)
    fronts = [Front("edge", edge.url, edge.pid)]
    if baseline:
        # PYTHONPATH comes before site-packages, so this process imports the baseline's `edge` package.
        old = EdgeProcess(work, upstream, {**edge_env, "PYTHONPATH": str(pathlib.Path(baseline).resolve())})
        stack.callback(old.stop)
        fronts.append(Front("edge-before", old.url, old.pid))
    gateway = GatewayProcess(binary, work, upstream)
    stack.callback(gateway.stop)
    fronts.append(Front("grpc-gateway", gateway.url, gateway.pid))
    return fronts


def _start_floors(stack: contextlib.ExitStack, work: pathlib.Path, upstream: str, binary: pathlib.Path) -> list[Front]:
    go = GatewayProcess(binary, work, upstream, floor=True)
    uvicorn_alone = FloorProcess("uvicorn", work, None)
    uvicorn_grpc = FloorProcess("uvicorn+grpc", work, upstream)
    floors = {"go-http": go, "uvicorn": uvicorn_alone, "uvicorn+grpc": uvicorn_grpc}
    for process in floors.values():
        stack.callback(process.stop)
    return [Front(name, process.url, process.pid, floor=True) for name, process in floors.items()]


def _row(s: Sample) -> str:
    return (
        f"{s.rps:>8.0f}{s.p50_ms:>9.2f}{s.front_ms_per_req:>9.3f}{s.server_ms_per_req:>9.3f}"
        f"{s.p50_c1_ms:>9.3f}{s.hop_ms:>9.3f}{s.front_c1_ms_per_req:>9.3f}{s.front_together_ms_per_req:>9.3f}"
    )


def _median(samples: list[Sample]) -> Sample:
    fields = [f.name for f in dataclasses.fields(Sample)]
    return Sample(*(statistics.median(getattr(s, name) for s in samples) for name in fields))


def _report(
    samples: dict[tuple[str, str], list[Sample]],
    directs: dict[str, list[float]],
    names: list[str],
    args: argparse.Namespace,
) -> None:
    print(
        f"\nMedians of {args.rounds} rounds, {args.seconds:g} s per phase; c = {args.concurrency} for req/s, p50 and"
        " CPU per request; c = 1 for p50 c1, hop c1 (p50 at c = 1 minus the direct Go client's p50) and front c1;"
        " together: CPU per request at c = 50 with every front loaded at once."
    )
    print("grpc-gateway's JSON is not our contract (enum numbers, proto names, Timestamp objects under response_body).")
    header = f"{'':<13}{'front':<14}{'req/s':>8}{'p50 ms':>9}{'front':>9}{'server':>9}{'p50 c1':>9}{'hop c1':>9}"
    header += f"{'front c1':>9}{'together':>9}"
    units = f"{'':<27}{'':>8}{'':>9}{'ms/req':>9}{'ms/req':>9}{'ms':>9}{'ms':>9}{'ms/req':>9}{'ms/req':>9}"
    print(header + "\n" + units)
    for rpc in _RPCS:
        print(f"{rpc:<13}{'direct (Go)':<14}{'':>8}{'':>9}{'':>9}{'':>9}{statistics.median(directs[rpc]):>9.3f}")
        medians = {name: _median(samples[(rpc, name)]) for name in names}
        for name in names:
            print(f"{'':<13}{name:<14}{_row(medians[name])}")
        for name in (n for n in names if n != "grpc-gateway"):
            _ratios(rpc, name, medians[name], medians["grpc-gateway"])


def _report_floors(samples: dict[tuple[str, str], list[Sample]], directs: dict[str, list[float]]) -> None:
    """The hop at c = 1 taken apart: each part from p50s at one connection measured in the same round (each
    front's c = 1 phase and the direct client's), then the median over the rounds; medians of differences add
    up only roughly."""
    print("\nFloors at c = 1 (ms; medians over the rounds of the same round's p50s): what each hop is made of.")
    for rpc in _RPCS:
        rounds = [
            {name: samples[(r, name)][i].p50_c1_ms for r, name in samples if r == rpc} | {"direct": direct}
            for i, direct in enumerate(directs[rpc])
        ]
        parts = {label: statistics.median(part(p) for p in rounds) for label, part in _HOP_PARTS.items()}
        print(f"  {rpc}: " + "; ".join(f"{label} {value:.3f}" for label, value in parts.items()))
        cpu = {n: statistics.median(s.front_c1_ms_per_req for s in samples[(r, n)]) for r, n in samples if r == rpc}
        print(f"    CPU ms per request at c = 1: {', '.join(f'{name} {value:.3f}' for name, value in cpu.items())}")


# Each part of the two hops over the direct Go client, from one round's p50s at c = 1.
_HOP_PARTS: dict[str, Callable[[dict[str, float]], float]] = {
    "grpc-gateway's hop": lambda p: p["grpc-gateway"] - p["direct"],
    "= Go net/http alone": lambda p: p["go-http"],
    "+ its transcoding and gRPC call over the direct client's": lambda p: (
        p["grpc-gateway"] - p["go-http"] - p["direct"]
    ),
    "edge's hop": lambda p: p["edge"] - p["direct"],
    "= uvicorn alone": lambda p: p["uvicorn"],
    "+ one grpc.aio call over the direct client's": lambda p: p["uvicorn+grpc"] - p["uvicorn"] - p["direct"],
    "+ the edge's own work": lambda p: p["edge"] - p["uvicorn+grpc"],
    "uvicorn alone over Go net/http alone": lambda p: p["uvicorn"] - p["go-http"],
}


def _ratios(rpc: str, name: str, ours: Sample, peer: Sample) -> None:
    cpu = ours.front_ms_per_req / peer.front_ms_per_req
    cpu_c1 = ours.front_c1_ms_per_req / peer.front_c1_ms_per_req
    cpu_together = ours.front_together_ms_per_req / peer.front_together_ms_per_req
    rps = ours.rps / peer.rps
    print(
        f"  {rpc} {name}/gateway: CPU per request {cpu:.2f} alone, {cpu_together:.2f} with every front loaded at "
        f"once, {cpu_c1:.2f} at c = 1 (goal ≤ 1.5); throughput {rps:.2f} (goal ≥ 1); "
        f"hop at c = 1 {ours.hop_ms:.3f} vs {peer.hop_ms:.3f} ms (goal ≤); "
        f"server CPU per request behind it {ours.server_ms_per_req / peer.server_ms_per_req:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--alerts", type=int, default=20)
    parser.add_argument("--build-dir", help="keep (and reuse) the gateway build here instead of a temp dir")
    parser.add_argument("--baseline-edge", help="a directory holding an `edge` package to run as a third front")
    parser.add_argument(
        "--floors",
        action="store_true",
        help="also measure the floors the hop at c = 1 is made of: Go's net/http alone, uvicorn alone, uvicorn "
        "with one grpc.aio call",
    )
    parser.add_argument("--serve-floor", metavar="ADDR", help=argparse.SUPPRESS)
    parser.add_argument("--floor-upstream", metavar="ADDR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        uvloop.run(_serve_floor(args.serve_floor, args.floor_upstream))
        sys.exit(0)
    args.rounds = max(1, min(args.rounds, 20))
    args.seconds = max(1.0, min(args.seconds, 120.0))
    asyncio.run(run(args))
