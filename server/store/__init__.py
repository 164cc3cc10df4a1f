"""The service's own state behind one interface (:class:`Store`); SQLite is the embedded default."""

from server.store.base import Store
from server.store.sqlite import SqliteStore, open_sqlite

__all__ = ["SqliteStore", "Store", "open_sqlite"]
