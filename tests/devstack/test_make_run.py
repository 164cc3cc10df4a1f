"""`make run`'s entry point as a new user meets it: everything starts, every documented endpoint answers
with data through the edge using the printed key, a live log event arrives over SSE, an alert fires and
resolves by hand, and Ctrl-C leaves no process behind. A second start reuses the data and the key."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from testing.procs import REPO, free_port

pytestmark = pytest.mark.timeout(300)


class Stack:
    def __init__(self, data: pathlib.Path, env: dict[str, str]):
        self.output = data / "devstack.out"
        self._out = self.output.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "devstack"],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_for_banner(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"^API key: (dor_sk_\S+)$", self.text(), re.M)
            if match:
                return match.group(1)
            assert self.popen.poll() is None, self.text()
            time.sleep(0.2)
        raise TimeoutError(self.text())

    def children(self) -> list[int]:
        found = []
        for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.popen.pid:
                found.append(int(stat.parent.name))
        return found

    def interrupt(self) -> int:
        self.popen.send_signal(signal.SIGINT)
        try:
            return self.popen.wait(60)
        finally:
            self.close()

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._out.close()


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def stack_env(tmp_path: pathlib.Path) -> dict[str, str]:
    return {
        "DEVSTACK_DATA": str(tmp_path / "data"),
        "MONITORING_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "MONITORING_EDGE_ADDR": f"127.0.0.1:{free_port()}",
        "DEVSTACK_PROMETHEUS_ADDR": f"127.0.0.1:{free_port()}",
        "DEVSTACK_LOKI_ADDR": f"127.0.0.1:{free_port()}",
        "DEVSTACK_WORKLOAD_ADDR": f"127.0.0.1:{free_port()}",
        "DEVSTACK_BAD_AFTER_S": "0",
        "DEVSTACK_ALERT_HOLD_S": "10",
        "MONITORING_EVAL_INTERVAL": "2",
        "MONITORING_LOKI_URL": "",
    }


@pytest.fixture
def stack(tmp_path: pathlib.Path, stack_env: dict[str, str]) -> Iterator[Stack]:
    (tmp_path / "data").mkdir()
    running = Stack(tmp_path / "data", stack_env)
    try:
        yield running
    finally:
        running.close()


def _poll(fetch: Callable[[], Any], ready: Callable[[Any], bool], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ready(value) or time.monotonic() > deadline:
            return value
        time.sleep(1)


def test_make_run_serves_every_endpoint_with_data_and_stops_clean(stack: Stack, stack_env: dict[str, str]) -> None:
    key = stack.wait_for_banner()
    banner = stack.text()
    assert "curl" in banner
    assert "grpcurl" in banner
    ws, app = "ws_demo", "app_demo_api"
    # The console link: the edge's page, signed in to the demo workspace with this key, in the fragment only.
    edge_url = f"http://{stack_env['MONITORING_EDGE_ADDR']}"
    link = next(word for word in banner.split() if word.startswith(f"{edge_url}/#key="))
    fragment = urllib.parse.parse_qs(urllib.parse.urlsplit(link).fragment)
    assert (fragment["key"], fragment["workspace"]) == ([key], [ws])
    assert app in fragment["apps"][0].split(",")
    page = httpx.get(link.split("#", 1)[0], timeout=15)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    edge = httpx.Client(
        base_url=f"http://{stack_env['MONITORING_EDGE_ADDR']}/api/v1/workspaces/{ws}/monitoring",
        headers={"Authorization": f"Bearer {key}"},
        timeout=15,
    )
    with edge:
        metrics = _poll(lambda: edge.get(f"/apps/{app}/metrics?period=1h").json(), lambda m: m["cpu"]["values"])
        assert metrics["cpu"]["values"], metrics
        assert metrics["instanceCount"]["current"] == 3
        health = _poll(lambda: edge.get(f"/apps/{app}/health").json(), lambda h: h["status"] != "unknown")
        assert health["status"] == "healthy", health
        logs = _poll(lambda: edge.get(f"/apps/{app}/logs?limit=5").json(), lambda page: page["logs"])
        assert {"timestamp", "severity", "message"} <= set(logs["logs"][0])
        with connect_sse(edge, "GET", f"/apps/{app}/logs/stream", headers={"Accept": "text/event-stream"}) as source:
            # A block holding only `retry:` has no data; like a browser, skip it.
            event = next(e for e in source.iter_sse() if e.event == "message" and e.data)
            assert '"message"' in event.data
            assert event.id
        overview = edge.get("/overview").json()
        assert overview["totalApps"] == 3
        assert sum(overview["appHealthSummary"].values()) == 3
        assert overview["recentActivity"]
        alerts = _poll(lambda: edge.get("/alerts?resolved=false").json(), lambda a: a, timeout=120)
        assert alerts, "the misbehaving demo app raised no alert"
        assert alerts[0]["appName"] == "worker-service"
        resolved = edge.patch(f"/alerts/{alerts[0]['id']}/resolve").json()
        assert resolved["resolved"] is True

    children = stack.children()
    assert len(children) >= 4  # prometheus, loki stand-in, server, edge
    assert stack.interrupt() == 0
    assert not [pid for pid in children if _alive(pid)]


def test_second_run_reuses_data_and_key(tmp_path: pathlib.Path, stack_env: dict[str, str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    keys = []
    for _ in range(2):
        run = Stack(data, stack_env)
        try:
            keys.append(run.wait_for_banner())
        finally:
            assert run.interrupt() == 0
    assert keys[0] == keys[1]
