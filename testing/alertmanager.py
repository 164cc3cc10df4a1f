"""A real Alertmanager for tests: Debian's ``/usr/bin/prometheus-alertmanager`` on 127.0.0.1 in a temp dir.

    with running_alertmanager(tmp_path) as alertmanager:
        ...  # POST alertmanager.url + "/api/v2/alerts"; active_alerts(alertmanager.url) reads them back

Its one route leads to a receiver with no integrations, so it notifies nobody; clustering is off (an empty
``--cluster.listen-address``), so it opens no gossip port. Installed by ``scripts/system-deps.sh``.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from testing.procs import Process, free_port

ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
_CONFIG = """\
route:
  receiver: nobody
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: nobody
"""


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class AlertmanagerProcess(Process):
    """Alertmanager on 127.0.0.1 with its storage in ``work_dir``; ready once ``/-/ready`` answers 200."""

    def __init__(self, work_dir: pathlib.Path, *, name: str = "alertmanager"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = work_dir / f"{name}.yml"
        config.write_text(_CONFIG)
        storage = work_dir / f"{name}-data"
        storage.mkdir(exist_ok=True)
        argv = [
            ALERTMANAGER_BIN,
            f"--config.file={config}",
            f"--storage.path={storage}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        super().__init__(name, argv, work_dir)
        self.wait_until(lambda: _get(self.url + "/-/ready")[0] == 200, timeout=60)


def alerts(url: str) -> list[dict[str, Any]]:
    """The alerts an Alertmanager lists (GET /api/v2/alerts): those not yet resolved, since it leaves alerts
    whose endsAt has passed out of the listing, whatever the filters."""
    status, body = _get(f"{url}/api/v2/alerts")
    if status != 200:
        raise RuntimeError(f"GET /api/v2/alerts answered {status}: {body[:200]!r}")
    found: list[dict[str, Any]] = json.loads(body)
    return found


@contextlib.contextmanager
def running_alertmanager(work_dir: pathlib.Path) -> Iterator[AlertmanagerProcess]:
    alertmanager = AlertmanagerProcess(work_dir)
    try:
        yield alertmanager
    finally:
        alertmanager.stop()
