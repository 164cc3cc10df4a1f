"""A Loki-compatible test double: real HTTP and WebSocket, behaviour per the team's Loki reference
(Loki's HTTP API as the real Loki behaves), checked against tests/fixtures/loki by tests/logs/test_double.py.

Run it as its own process: ``python -m testing.loki_double --host 127.0.0.1 --port 3100``.
"""

from testing.loki_double.app import Settings, create_app

__all__ = ["Settings", "create_app"]
