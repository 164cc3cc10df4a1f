"""Fixtures: one real server process per session (plus fresh ones where a test needs its own), and one real
Prometheus over backfilled data, shared by the metrics and abuse tests."""

from __future__ import annotations

import pathlib
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from testing import metrics_data
from testing.metrics_data import Backfilled
from testing.platform import Tenant, new_tenant
from testing.postgres import PostgresCluster, running_postgres
from testing.procs import ServerProcess, running_server
from testing.prometheus import running_prometheus


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def server(log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with no reachable backends: for the contract, auth, validation and store tests."""
    with running_server(log_dir, tmp_path_factory.mktemp("db") / "monitoring.db") as process:
        yield process


@pytest.fixture(scope="session")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    """A real Prometheus over a month of crafted series (testing/metrics_data.py), as of the session's start."""
    now = int(time.time())
    model, series = metrics_data.dataset(now)
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), series) as prometheus:
        yield Backfilled(now, model, prometheus)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL on loopback, started on first use; each test creates a database of its own."""
    with running_postgres() as cluster:
        yield cluster


@pytest.fixture
async def channel(server: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.addr) as ch:
        yield ch


@pytest.fixture
async def tenant(channel: grpc.aio.Channel) -> Tenant:
    return await new_tenant(channel)
