"""The versioned migrations of each backend: ``migrations/<backend>/NNNN_name.sql``, applied in version order.

Each backend keeps its own history (SQL dialects differ), but both end at the same tables, indexes and
constraints; a test compares them. How a backend applies them atomically is its own concern.
"""

from __future__ import annotations

import importlib.resources
import re

_MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


def migrations(backend: str) -> list[tuple[int, str]]:
    """``(version, sql)`` of every migration of ``backend`` ("sqlite" or "postgres"), by version."""
    folder = importlib.resources.files("server.store") / "migrations" / backend
    found: dict[int, str] = {}
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:  # two files would race for one row of schema_migrations
            raise RuntimeError(f"two {backend} migrations share version {version:04d}")
        found[version] = entry.read_text(encoding="utf-8")
    return sorted(found.items())
