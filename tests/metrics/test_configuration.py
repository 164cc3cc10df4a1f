"""Templates, label names and health thresholds come from the config file, end to end (the tables' unit
tests are tests/server/test_config.py)."""

from __future__ import annotations

import pathlib
import subprocess
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import config
from server.metrics.prometheus import PrometheusClient
from testing import metrics_data as data
from testing.metrics_data import seed_apps
from testing.platform import new_tenant
from testing.procs import BIN, free_port, running_server
from tests.metrics.conftest import Backfilled, wait_evaluated

pytestmark = pytest.mark.timeout(60)

CONFIG = """
[prometheus.range]
# Count the pause container instead of the app's: a visible, checkable change.
memory = 'sum(container_memory_working_set_bytes{$app, container="POD"}) / 1048576'

[health]
degraded_error_rate_percent = 0.5
"""


async def test_label_names_are_configurable(backfilled: Backfilled) -> None:
    # The month-long app's container series also carry pod="full-0": select the app by that label.
    queries = config.from_tables({"prometheus": {"app_label": "pod"}})["queries"]
    client = PrometheusClient(backfilled.prometheus.url, 5.0)
    try:
        end = backfilled.now // 60 * 60
        promql = queries.range_query("memory", data.WORKSPACE, "full-0", 60)
        found = await client.query_range(promql, start=end - 120, end=end, step=60)
    finally:
        await client.close()
    assert 'pod="full-0"' in promql
    assert [v for _, v in found[0].points] == [data.memory_bytes(t) / data.MIB for t in (end - 120, end - 60, end)]


@pytest.fixture(scope="module")
async def configured(
    backfilled: Backfilled, log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[grpc.aio.Channel]:
    folder = tmp_path_factory.mktemp("configured")
    (folder / "monitoring.toml").write_text(CONFIG)
    env = {
        "MONITORING_PROMETHEUS_URL": backfilled.prometheus.url,
        "MONITORING_EVAL_INTERVAL": "0.5",
        "MONITORING_CONFIG_FILE": str(folder / "monitoring.toml"),
    }
    with running_server(log_dir, folder / "monitoring.db", env) as server:
        async with grpc.aio.insecure_channel(server.addr) as channel:
            yield channel


async def test_a_config_file_changes_queries_and_thresholds_end_to_end(configured: grpc.aio.Channel) -> None:
    tenant = await new_tenant(configured, data.WORKSPACE)
    await seed_apps(tenant)
    await wait_evaluated(tenant, ["app_healthy"], time.time_ns())

    request = pb.GetAppMetricsRequest(workspace_id=data.WORKSPACE, app_id=data.FULL, period=pb.PERIOD_1H)
    reply = await tenant.monitoring.GetAppMetrics(request, metadata=tenant.auth)
    assert set(reply.memory.values) == {7e9 / data.MIB}  # the POD series, as configured
    assert len(reply.cpu.values) == 61  # the other templates keep their defaults

    health = await tenant.monitoring.GetAppHealth(
        pb.GetAppHealthRequest(workspace_id=data.WORKSPACE, app_id="app_healthy"), metadata=tenant.auth
    )
    assert health.status == pb.HEALTH_STATUS_DEGRADED  # 1 % errors now crosses the 0.5 % threshold
    assert list(health.reasons) == ["error rate 1% ≥ 0.5%"]


def test_the_server_refuses_to_start_with_a_bad_template(tmp_path: pathlib.Path) -> None:
    config_path = tmp_path / "bad.toml"
    config_path.write_text("[prometheus.grouped]\nlatency = 'avg(x{$app})'\n")
    env = {
        "MONITORING_CONFIG_FILE": str(config_path),
        "MONITORING_DB": str(tmp_path / "m.db"),
        "MONITORING_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run([str(BIN / "monitoring-server")], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    says = f"monitoring-server: config file {config_path}: [prometheus.grouped] latency: bad placeholder $app"
    assert says in done.stderr
