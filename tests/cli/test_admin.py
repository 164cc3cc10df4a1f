"""monitoring-admin against a real server: the secret is printed once, alone on stdout."""

from __future__ import annotations

import json
import subprocess

import pytest

from testing.platform import unique_id
from testing.procs import ADMIN_TOKEN, BIN, ServerProcess

pytestmark = pytest.mark.timeout(60)


def admin(server: ServerProcess, *args: str, token: str = ADMIN_TOKEN) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / "monitoring-admin"), "--addr", server.addr, "--token", token, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def test_admin_cli_registers_a_workspace_end_to_end(server: ServerProcess) -> None:
    ws = unique_id("ws")
    assert admin(server, "create-workspace", ws, "--name", "Demo").returncode == 0
    key = admin(server, "create-key", ws, "--name", "ci")
    assert key.returncode == 0, key.stderr
    secret = key.stdout.strip()
    assert secret.startswith("dor_sk_")
    assert secret not in key.stderr
    app = admin(server, "upsert-app", ws, "app_cli", "--name", "cli-api", "--memory-mib", "256", "--cpu-cores", "0.5")
    assert json.loads(app.stdout)["memoryLimitMib"] == 256
    deploy = admin(server, "record-deploy", ws, "app_cli", "dep_1", "--status", "succeeded", "--started", "now")
    assert json.loads(deploy.stdout)["status"] == "OPERATION_STATUS_SUCCEEDED"
    keys = admin(server, "list-keys", ws)
    assert secret not in keys.stdout
    assert json.loads(keys.stdout)["apiKeys"][0]["name"] == "ci"


def test_admin_cli_reports_errors_without_a_trace(server: ServerProcess) -> None:
    refused = admin(server, "create-workspace", unique_id("ws"), token="wrong")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: UNAUTHENTICATED")
    bad = admin(server, "create-workspace", "not valid")
    assert "workspace_id" in bad.stderr
