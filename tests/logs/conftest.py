"""Fixtures for the logs tests: one Loki double process and one server pointed at it (session-wide)."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from testing.loki import LokiDouble, running_loki
from testing.platform import Tenant, new_tenant
from testing.procs import ServerProcess, running_server

TOKEN_SECRET = "logs-tests-secret-0123456789abcdef"
# Real Loki payloads, copied into the repository (tests/fixtures/README.md says from where).
FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "loki"


def loki_env(url: str, **extra: str) -> dict[str, str]:
    return {"MONITORING_LOKI_URL": url, "MONITORING_TOKEN_SECRET": TOKEN_SECRET, **extra}


@pytest.fixture(scope="session")
def loki(log_dir: pathlib.Path) -> Iterator[LokiDouble]:
    with running_loki(log_dir) as double:
        yield double


@pytest.fixture(scope="session")
def logs_server(
    log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory, loki: LokiDouble
) -> Iterator[ServerProcess]:
    config = tmp_path_factory.mktemp("logs-config") / "monitoring.toml"
    # Shorter linger and watchdog keep the tests quick (defaults: 5 s each); a small buffer shows slow consumers;
    # one key opens a hundred streams in the fan-out test (default cap: 20 per key); the search tests page through
    # hundreds of small pages with one key (the per-key rate limit is tested in tests/api).
    config.write_text(
        "[loki]\ntail_linger_s = 1.0\ntail_watchdog_s = 1.0\nstream_buffer = 256\nmax_streams_per_key = 200\n"
        "[api]\nrate_per_key = 0\n"
    )
    env = loki_env(loki.url, MONITORING_CONFIG_FILE=str(config))
    with running_server(log_dir, tmp_path_factory.mktemp("logs-db") / "monitoring.db", env) as process:
        yield process


@pytest.fixture
async def logs_channel(logs_server: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(logs_server.addr) as ch:
        yield ch


@pytest.fixture
async def logs_tenant(logs_channel: grpc.aio.Channel) -> Tenant:
    return await new_tenant(logs_channel)
