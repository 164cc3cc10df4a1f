"""Real processes on 127.0.0.1 for tests and benchmarks: start, wait until ready, stop what we started."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
ADMIN_TOKEN = "test-admin-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc): what the benchmarks divide by calls."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Process:
    """One child process whose output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: pathlib.Path,
        env: Mapping[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=REPO,
            preexec_fn=preexec_fn,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log()[-4000:]}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {timeout} s:\n{self.log()[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()
        return self.popen.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def grpc_serving(addr: str, timeout: float = 0.5) -> bool:
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        return reply.status == health_pb2.HealthCheckResponse.SERVING


class ServerProcess(Process):
    """``monitoring-server`` on a free loopback port over a real SQLite file."""

    def __init__(self, log_dir: pathlib.Path, db: pathlib.Path | str, env: Mapping[str, str] | None = None):
        self.addr = f"127.0.0.1:{free_port()}"
        self.db = db
        settings = {
            "MONITORING_GRPC_ADDR": self.addr,
            "MONITORING_DB": str(db),
            "MONITORING_ADMIN_TOKEN": ADMIN_TOKEN,
            # Unreachable by default: a test that needs a backend passes its URL.
            "MONITORING_PROMETHEUS_URL": "http://127.0.0.1:9",
            "MONITORING_LOKI_URL": "http://127.0.0.1:9",
            "MONITORING_LOG_LEVEL": "DEBUG",
            **(env or {}),
        }
        super().__init__("monitoring-server", [str(BIN / "monitoring-server")], log_dir, settings)
        self.wait_until(lambda: grpc_serving(self.addr))


@contextlib.contextmanager
def running_server(
    log_dir: pathlib.Path, db: pathlib.Path, env: Mapping[str, str] | None = None
) -> Iterator[ServerProcess]:
    server = ServerProcess(log_dir, db, env)
    try:
        yield server
    finally:
        server.stop()


def unmetered(folder: pathlib.Path) -> dict[str, str]:
    """Server settings for a benchmark: a config file with the per-key rate limit off (its figures would
    otherwise measure refusals). Returns the environment that names the file."""
    config = folder / "unmetered.toml"
    config.write_text("[api]\nrate_per_key = 0\n")
    return {"MONITORING_CONFIG_FILE": str(config)}
