"""open_store: which backend MONITORING_DB names."""

from __future__ import annotations

import pathlib

import pytest

from server.store import PostgresStore, SqliteStore, open_store
from testing.postgres import PostgresCluster

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("form", ["{path}", "sqlite:///{path}"])
async def test_a_path_or_a_sqlite_url_opens_sqlite(tmp_path: pathlib.Path, form: str) -> None:
    path = tmp_path / "sub" / "m.db"
    store = await open_store(form.format(path=path))
    try:
        assert isinstance(store, SqliteStore)
        assert path.exists()
    finally:
        await store.close()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_a_postgres_url_opens_postgres(postgres_cluster: PostgresCluster, scheme: str) -> None:
    url = postgres_cluster.create_database(f"t_open_{scheme}").replace("postgresql://", f"{scheme}://")
    store = await open_store(url)
    try:
        assert isinstance(store, PostgresStore)
    finally:
        await store.close()


async def test_another_scheme_is_refused_rather_than_taken_for_a_file_name() -> None:
    with pytest.raises(ValueError, match="unsupported store URL scheme 'mysql'"):
        await open_store("mysql://user@127.0.0.1/db")
