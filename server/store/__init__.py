"""The service's own state behind one interface (:class:`Store`): SQLite is the embedded default, PostgreSQL
the choice for several replicas on one database. :func:`open_store` picks the backend from ``MONITORING_DB``.
"""

from server.store.base import LeaseLost, Store
from server.store.postgres import PostgresStore, is_postgres_url, open_postgres
from server.store.sqlite import SqliteStore, open_sqlite

__all__ = ["LeaseLost", "PostgresStore", "SqliteStore", "Store", "open_postgres", "open_sqlite", "open_store"]

_SQLITE_SCHEME = "sqlite:///"


async def open_store(url: str) -> Store:
    """Opens and migrates the store ``url`` names: ``postgresql://`` or ``postgres://`` → PostgreSQL;
    ``sqlite:///<path>`` (``sqlite:////abs/path`` for an absolute one) or a plain path → SQLite."""
    if is_postgres_url(url):
        return await open_postgres(url)
    if url.startswith(_SQLITE_SCHEME):
        return await open_sqlite(url.removeprefix(_SQLITE_SCHEME))
    if "://" in url:  # a URL of another kind would otherwise become a strangely named SQLite file
        scheme = url.partition("://")[0]
        raise ValueError(f"unsupported store URL scheme {scheme!r}: use a path, sqlite:/// or postgresql://")
    return await open_sqlite(url)
