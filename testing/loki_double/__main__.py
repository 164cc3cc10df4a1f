"""``python -m testing.loki_double --host 127.0.0.1 --port P``: serve the double until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse

import uvicorn

from testing.loki_double.app import Settings, create_app


def main() -> None:
    p = argparse.ArgumentParser(prog="loki-double", description="A Loki-compatible HTTP/WebSocket test double")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3100)
    p.add_argument("--max-entries-limit", type=int, default=5000, help="max_entries_limit_per_query (0 = no cap)")
    p.add_argument("--max-concurrent-tails", type=int, default=10, help="max_concurrent_tail_requests per tenant")
    p.add_argument("--tail-max-duration", type=float, default=3600.0, help="seconds before a tail is ended (1011)")
    p.add_argument("--auth-enabled", action="store_true", help="require X-Scope-OrgID (401 `no org id` without)")
    args = p.parse_args()
    settings = Settings(
        max_entries_limit=args.max_entries_limit,
        max_concurrent_tails=args.max_concurrent_tails,
        tail_max_duration_s=args.tail_max_duration,
        auth_enabled=args.auth_enabled,
    )
    # Loki pings tail clients every second; the websockets server does it for us.
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        ws_ping_interval=1.0,
        ws_ping_timeout=20.0,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
