"""``monitoring-server --workers N``: N real server processes on one port, supervised by a parent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import config
from server.cluster.workers import worker_count
from server.config import ConfigError
from testing.platform import new_tenant
from testing.procs import ADMIN_TOKEN, BIN, Process, free_port, grpc_serving

pytestmark = pytest.mark.timeout(60)

GRACE_S = 1.0
KILL_MARGIN_S = 5.0  # the supervisor's default margin beyond the grace


class _Workers(Process):
    """``monitoring-server --workers 2`` on a free loopback port over a real SQLite file."""

    def __init__(self, log_dir: pathlib.Path, db: pathlib.Path):
        self.addr = f"127.0.0.1:{free_port()}"
        env = {
            "MONITORING_GRPC_ADDR": self.addr,
            "MONITORING_DB": str(db),
            "MONITORING_ADMIN_TOKEN": ADMIN_TOKEN,
            "MONITORING_PROMETHEUS_URL": "http://127.0.0.1:9",
            "MONITORING_LOKI_URL": "http://127.0.0.1:9",
            "MONITORING_SHUTDOWN_GRACE": str(GRACE_S),
        }
        super().__init__("monitoring-server-workers", [str(BIN / "monitoring-server"), "--workers", "2"], log_dir, env)
        self.wait_until(lambda: grpc_serving(self.addr))


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (zombies included: they are not reaped yet)."""
    found = set()
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        # After the command name in parentheses: state, then the parent's pid.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _existing(pids: set[int]) -> list[int]:
    """Those of ``pids`` that still exist, zombies included."""
    return [pid for pid in sorted(pids) if pathlib.Path(f"/proc/{pid}").exists()]


def _until(condition: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {within_s} s: {what}"
        time.sleep(0.05)


def _stop(supervisor: Process) -> None:
    """Stops a supervisor this test started and, should it have died first, the workers it left behind."""
    workers = _children(supervisor.pid)
    supervisor.stop()
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def _calls_succeed(addr: str, connections: int = 4) -> None:
    """Health and a few calls, each over a connection of its own so the kernel may pick either worker."""
    for _ in range(connections):
        # A local subchannel pool: a new TCP connection, not the one another channel already holds.
        async with grpc.aio.insecure_channel(addr, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            tenant = await new_tenant(channel)
            listed = await tenant.monitoring.ListAlerts(
                pb.ListAlertsRequest(workspace_id=tenant.workspace_id), metadata=tenant.auth, timeout=5
            )
            assert list(listed.alerts) == []


async def test_two_workers_serve_restart_and_stop(log_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    server = _Workers(log_dir, tmp_path / "workers.db")
    try:
        # (a) one port, both services answering
        await _calls_succeed(server.addr)
        # (b) exactly two workers, children of the supervisor
        _until(lambda: len(_children(server.pid)) == 2, 5, "two workers")
        first = _children(server.pid)
        assert len(first) == 2

        # (c) a worker killed with SIGKILL is replaced by a new process, and calls keep succeeding
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        _until(lambda: victim not in _children(server.pid) and len(_children(server.pid)) == 2, 10, "a new worker")
        (replacement,) = _children(server.pid) - first
        # The replacement says it listens (its log lines carry its pid).
        listening = re.compile(rf"\[{replacement}\] server: .*listening on")
        _until(lambda: bool(listening.search(server.log())), 10, "the new worker listening")
        await _calls_succeed(server.addr)
        assert f"(pid {victim}) exited: killed by SIGKILL" in server.log()

        # (d) SIGTERM to the supervisor: every worker drains and exits, then the supervisor exits 0
        workers = _children(server.pid)
        started = time.monotonic()
        server.popen.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.popen.wait, GRACE_S + KILL_MARGIN_S + 5)
        assert code == 0
        assert time.monotonic() - started < GRACE_S + KILL_MARGIN_S
        assert _existing(workers) == []
        for pid in workers:
            assert f"(pid {pid}) exited: status 0" in server.log()
    finally:
        _stop(server)


def test_port_0_is_refused_with_several_workers() -> None:
    env = {**os.environ, "MONITORING_GRPC_ADDR": "127.0.0.1:0"}
    shown = subprocess.run(
        [str(BIN / "monitoring-server"), "--workers", "2"], env=env, capture_output=True, text=True, timeout=30
    )
    assert shown.returncode != 0
    assert "MONITORING_WORKERS or --workers" in shown.stderr
    assert "'127.0.0.1:0'" in shown.stderr


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"MONITORING_WORKERS": "-1"}, r"MONITORING_WORKERS or --workers\): must be an integer ≥ 0"),
        ({"MONITORING_WORKERS": "two"}, r"MONITORING_WORKERS or --workers\): 'two' \(expected int\)"),
        ({"MONITORING_WORKERS": "0", "MONITORING_GRPC_ADDR": "[::]:0"}, r"needs a fixed TCP port"),
        ({"MONITORING_WORKERS": "3", "MONITORING_GRPC_ADDR": "unix:/tmp/m.sock"}, r"needs a fixed TCP port"),
    ],
)
def test_workers_setting_is_checked(environ: Mapping[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        config.load([], environ)


def test_workers_setting() -> None:
    assert config.load([], {}).workers == 1
    assert config.load([], {"MONITORING_WORKERS": "1", "MONITORING_GRPC_ADDR": "127.0.0.1:0"}).workers == 1
    assert config.load(["--workers", "4"], {}).workers == 4
    assert worker_count(0) == len(os.sched_getaffinity(0))
    assert worker_count(3) == 3


def _supervise(log_dir: pathlib.Path, name: str, target: str, policy: str) -> Process:
    """A supervisor of ``target`` (Python source of a function body) in a process of its own."""
    source = textwrap.dedent(
        """
        import logging, signal, sys, time
        from server.cluster.workers import Policy, Supervisor
        logging.basicConfig(level="INFO", format="%(message)s")
        def target() -> None:
        {body}
        sys.exit(Supervisor(2, target, Policy({policy})).run())
        """
    ).format(body=textwrap.indent(textwrap.dedent(target), "    "), policy=policy)
    return Process(name, [sys.executable, "-c", source], log_dir)


def test_a_crash_loop_stops_the_supervisor(log_dir: pathlib.Path) -> None:
    supervisor = _supervise(
        log_dir,
        "crash-loop",
        "sys.exit(3)",
        "grace_s=0.5, kill_margin_s=0.5, backoff_initial_s=0.01, backoff_max_s=0.02",
    )
    assert supervisor.popen.wait(20) == 1
    log = supervisor.log()
    assert "giving up" in log
    assert log.count("exited: status 3") >= 10
    assert log.count(": restarting in ") == 2 * 5  # the restart budget of two workers, then no more
    assert not _children(supervisor.pid)


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace(log_dir: pathlib.Path) -> None:
    body = """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        time.sleep(30)
    """
    supervisor = _supervise(log_dir, "straggler", body, "grace_s=0.2, kill_margin_s=0.3")
    try:
        _until(lambda: supervisor.log().count("ignoring SIGTERM") == 2, 10, "two workers ignoring SIGTERM")
        workers = _children(supervisor.pid)
        started = time.monotonic()
        supervisor.popen.send_signal(signal.SIGTERM)
        assert supervisor.popen.wait(10) == 0
        assert time.monotonic() - started < 3
        assert supervisor.log().count("still running after the grace: SIGKILL") == 2
        assert _existing(workers) == []
    finally:
        _stop(supervisor)
