"""A real webhook receiver process for tests: checks every signature itself, fails on request, records all.

    python -m testing.webhook_receiver --secret S --record FILE [--port 0] [--port-file FILE] [--fail-first N]

It re-implements the documented recipe (docs/alerts.md) rather than calling server/notify, so a mistake in
the sender's signing cannot be hidden by the same mistake here: HMAC-SHA256 with the secret over
``"<timestamp>.<body>"`` in lowercase hex, offered as ``Dooor-Webhook-Signature: v1=<hex>`` (any of several
comma-separated ``v1=`` values may match), the timestamp within five minutes of this clock.

What it answers depends on the path, so one process serves many tests:

    /hook/...           503 to the first N requests of each event id (--fail-first), then 200
    /status/<code>/...  always <code>
    /sleep/<seconds>/.. 200 after that long (a receiver slower than the sender's timeout)
    anything else       200

Every request is appended to the record file as one JSON line (path, event id, whether the signature was
valid, status answered, headers, body) and fsynced before the answer is sent, so what a test reads there
is what the receiver saw, even if the receiver is killed.

:class:`ReceiverProcess` and :func:`running_receiver` start it on 127.0.0.1 and stop it by PID.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import hashlib
import hmac
import http.server
import json
import os
import pathlib
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from testing.procs import Process

TOLERANCE_S = 300


def signature_ok(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """The documented check, written from the recipe (headers keyed by lowercase name)."""
    timestamp = headers.get("dooor-webhook-timestamp", "")
    offered = headers.get("dooor-webhook-signature", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_S:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(
        hmac.compare_digest(expected, part.strip()[3:]) for part in offered.split(",") if part.strip().startswith("v1=")
    )


class _State:
    """What the handler threads share: the options, the per-event counts, the record file."""

    def __init__(self, secret: str, fail_first: int, record: pathlib.Path):
        self.secret = secret
        self.fail_first = fail_first
        self.record = record
        self.lock = threading.Lock()
        self.seen: collections.Counter[str] = collections.Counter()

    def answer(self, path: str, event_id: str) -> int:
        parts = path.strip("/").split("/")
        if parts[0] == "status" and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
        if parts[0] == "sleep" and len(parts) > 1:
            time.sleep(min(float(parts[1]), 60.0))  # this request's own thread: the others are not held up
            return 200
        if parts[0] == "hook":
            with self.lock:
                self.seen[event_id] += 1
                return 503 if self.seen[event_id] <= self.fail_first else 200
        return 200

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True).encode() + b"\n"
        with self.lock, self.record.open("ab") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())


class _Handler(http.server.BaseHTTPRequestHandler):
    state: _State  # set on the class made for one server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        event_id = headers.get("dooor-webhook-id", "")
        status = self.state.answer(self.path, event_id)
        self.state.write(
            {
                "path": self.path,
                "event_id": event_id,
                "signature_ok": signature_ok(self.state.secret, headers, body, time.time()),
                "status": status,
                "headers": headers,
                "body": base64.b64encode(body).decode(),
                "received_at": time.time(),
            }
        )
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def serve(port: int, secret: str, fail_first: int, record: pathlib.Path, port_file: pathlib.Path | None) -> None:
    handler = type("Handler", (_Handler,), {"state": _State(secret, fail_first, record)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    if port_file is not None:  # written whole, then renamed: a reader never sees half a number
        partial = port_file.with_suffix(".partial")
        partial.write_text(str(server.server_address[1]))
        partial.rename(port_file)
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=pathlib.Path)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--record", type=pathlib.Path, required=True)
    options = parser.parse_args(argv)
    serve(options.port, options.secret, options.fail_first, options.record, options.port_file)


# -- the tests' side -----------------------------------------------------------------------------------------


class ReceiverProcess:
    """The receiver started as a child process on 127.0.0.1 (its own port); stopped by its PID."""

    def __init__(self, work_dir: pathlib.Path, secret: str, *, fail_first: int = 0, name: str = "webhook-receiver"):
        self.secret = secret
        self.record = work_dir / f"{name}.jsonl"
        port_file = work_dir / f"{name}.port"
        port_file.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "testing.webhook_receiver", "--secret", secret, "--record", str(self.record)]
        argv += ["--fail-first", str(fail_first), "--port-file", str(port_file)]
        self.process = Process(name, argv, work_dir)
        self.process.wait_until(port_file.exists, timeout=30)
        self.port = int(port_file.read_text())
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def requests(self) -> list[dict[str, Any]]:
        """Every request received so far, oldest first (``body`` decoded back to bytes)."""
        if not self.record.exists():
            return []
        entries = [json.loads(line) for line in self.record.read_bytes().splitlines() if line.strip()]
        for entry in entries:
            entry["body"] = base64.b64decode(entry["body"])
        return entries

    def requests_for(self, event_id: str) -> list[dict[str, Any]]:
        return [entry for entry in self.requests() if entry["event_id"] == event_id]

    def stop(self) -> None:
        self.process.stop()


@contextlib.contextmanager
def running_receiver(work_dir: pathlib.Path, secret: str, *, fail_first: int = 0) -> Iterator[ReceiverProcess]:
    receiver = ReceiverProcess(work_dir, secret, fail_first=fail_first)
    try:
        yield receiver
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
