"""The two store backends as test parameters: a fresh, empty database of either kind, named the way
``MONITORING_DB`` names it, and plain SQL on it from outside the store (as another process would)."""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from testing.postgres import PostgresCluster

BACKENDS = ("sqlite", "postgres")
# What a broken unique index raises, per backend.
UNIQUE_VIOLATION = (sqlite3.IntegrityError, asyncpg.UniqueViolationError)

Sql = Callable[[str], Awaitable[list[tuple[Any, ...]]]]


def fresh_database(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """A new empty database for the backend ``request.param`` names: a file, or a database of the session's
    cluster (started only when a PostgreSQL test runs)."""
    name = f"t_{secrets.token_hex(6)}"
    if request.param == "sqlite":
        return str(tmp_path / f"{name}.db")
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database(name)


def is_postgres(location: str) -> bool:
    return location.startswith("postgresql://")


@contextlib.asynccontextmanager
async def raw_sql(location: str) -> AsyncIterator[Sql]:
    """A connection of its own, each statement committed on its own; statements take no parameters."""
    if is_postgres(location):
        connection = await asyncpg.connect(location)
        try:

            async def run_pg(sql: str) -> list[tuple[Any, ...]]:
                return [tuple(row) for row in await connection.fetch(sql)]

            yield run_pg
        finally:
            await connection.close()
    else:
        db = sqlite3.connect(location, isolation_level=None)
        try:

            async def run_sqlite(sql: str) -> list[tuple[Any, ...]]:
                return list(db.execute(sql).fetchall())

            yield run_sqlite
        finally:
            db.close()


async def schema_versions(location: str) -> list[int]:
    async with raw_sql(location) as sql:
        return [row[0] for row in await sql("SELECT version FROM schema_migrations ORDER BY version")]


@dataclasses.dataclass(frozen=True)
class Schema:
    columns: dict[str, tuple[str, ...]]  # table → its columns, in order
    indexes: frozenset[str]  # indexes the migrations name (not those behind PRIMARY KEY and UNIQUE)


async def schema_of(location: str) -> Schema:
    async with raw_sql(location) as sql:
        if is_postgres(location):
            rows = await sql(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
                " ORDER BY table_name, ordinal_position"
            )
            indexes = await sql(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
                " AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'"
            )
        else:
            tables = await sql("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            rows = []
            for (table,) in tables:
                rows += [(table, column[1]) for column in await sql(f"PRAGMA table_info({table})")]
            indexes = await sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'"
            )
    columns: dict[str, tuple[str, ...]] = {}
    for table, column in rows:
        columns[table] = (*columns.get(table, ()), column)
    return Schema(columns, frozenset(name for (name,) in indexes))
