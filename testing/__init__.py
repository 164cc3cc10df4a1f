"""Development helpers shared by the test suite, the benchmarks and `make run`; not tests themselves.

- ``procs``       real processes on loopback (the server, started and stopped by PID), free ports
- ``prometheus``  a real Prometheus over series backfilled with promtool
- ``loki`` / ``loki_double``  the Loki-compatible server that stands in for Loki, and its process
- ``edge``        the REST/SSE edge as a process
- ``platform``    a workspace, key and apps registered through PlatformService (``Tenant``)
- ``metrics_data``  the month of known metric values the metrics tests and benchmark backfill
- ``alert_rows``  alert rows written straight into a server's SQLite file
- ``fleet`` / ``status``  many-app store seeding; reading a gRPC status's details

The double is checked against real Loki payloads by tests/logs/test_double.py.
"""
