"""Opaque, URL-safe, HMAC-signed positions: ListAppLogs page tokens and StreamAppLogs cursors.

Layout (before base64url without padding): ``kind (1 byte) | payload | HMAC-SHA256(secret, kind|payload)[:16]``.
Each payload starts with an 8-byte digest of the query it belongs to (workspace, app, filters), so a
token replayed with other filters, or for another app, is refused. Numbers are big-endian; nanosecond
timestamps are signed 64-bit integers, never floats.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import hmac
import secrets
import struct
import time
from collections.abc import Awaitable, Callable, Iterable

from server.store import Store

SECRET_NAME = "log_tokens"  # the store's name for the generated HMAC key

_MAC_BYTES = 16
_PAGE = b"P"
_STREAM = b"S"
_PAGE_LAYOUT = struct.Struct(">8sqqqI")  # query digest, window start, window end, boundary ts, served at boundary
_STREAM_HEAD = struct.Struct(">8sqH")  # query digest, ts, number of entry digests that follow
ENTRY_DIGEST_BYTES = 6
MAX_CURSOR_DIGESTS = 64  # entries of one nanosecond a cursor remembers (see docs/logs.md)


class BadToken(ValueError):
    """Not a token this server issued (malformed or tampered with), or issued for another query."""


def query_digest(*parts: object) -> bytes:
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).digest()[:8]


def entry_digest(identity: tuple[str, int, str]) -> bytes:
    stream, ts, line = identity
    return hashlib.blake2b(f"{stream}\x1f{ts}\x1f{line}".encode(), digest_size=ENTRY_DIGEST_BYTES).digest()


@dataclasses.dataclass(frozen=True)
class PagePosition:
    """Everything newer than ``boundary_ns`` is served, plus the first ``served`` entries at ``boundary_ns``
    in canonical order; the window [start_ns, end_ns) is fixed by the first request."""

    start_ns: int
    end_ns: int
    boundary_ns: int
    served: int


@dataclasses.dataclass(frozen=True)
class StreamPosition:
    """The newest timestamp a subscriber got, and digests of the entries at that timestamp it got."""

    ts: int
    digests: tuple[bytes, ...]


class Signer:
    def __init__(self, secret: bytes):
        if len(secret) < 16:
            raise ValueError("the token secret must be at least 16 bytes")
        self._secret = secret

    def _seal(self, kind: bytes, payload: bytes) -> str:
        mac = hmac.new(self._secret, kind + payload, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(kind + payload + mac).rstrip(b"=").decode()

    def _open(self, kind: bytes, token: str) -> bytes:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise BadToken("is not a token issued by this server (not base64url)") from None
        if len(raw) < 1 + _MAC_BYTES or raw[:1] != kind:
            raise BadToken("is not a token issued by this server")
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        expected = hmac.new(self._secret, body, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            raise BadToken("was tampered with or not issued by this server")
        return body[1:]

    def page_token(self, digest: bytes, position: PagePosition) -> str:
        payload = _PAGE_LAYOUT.pack(digest, position.start_ns, position.end_ns, position.boundary_ns, position.served)
        return self._seal(_PAGE, payload)

    def open_page_token(self, digest: bytes, token: str) -> PagePosition:
        payload = self._open(_PAGE, token)
        if len(payload) != _PAGE_LAYOUT.size:
            raise BadToken("is not a page token")
        got, start, end, boundary, served = _PAGE_LAYOUT.unpack(payload)
        if not hmac.compare_digest(got, digest):
            raise BadToken("belongs to a request with other parameters (app, severity, start_time or end_time)")
        return PagePosition(start, end, boundary, served)

    def cursor(self, digest: bytes, position: StreamPosition) -> str:
        digests = position.digests[-MAX_CURSOR_DIGESTS:]
        return self._seal(_STREAM, _STREAM_HEAD.pack(digest, position.ts, len(digests)) + b"".join(digests))

    def open_cursor(self, digest: bytes, token: str) -> StreamPosition:
        payload = self._open(_STREAM, token)
        if len(payload) < _STREAM_HEAD.size:
            raise BadToken("is not a stream cursor")
        got, ts, count = _STREAM_HEAD.unpack_from(payload)
        rest = payload[_STREAM_HEAD.size :]
        if len(rest) != count * ENTRY_DIGEST_BYTES:
            raise BadToken("is not a stream cursor")
        if not hmac.compare_digest(got, digest):
            raise BadToken("belongs to a stream of another app or severity")
        digests = tuple(rest[i : i + ENTRY_DIGEST_BYTES] for i in range(0, len(rest), ENTRY_DIGEST_BYTES))
        return StreamPosition(ts, digests)


def advance(position: StreamPosition, identities: Iterable[tuple[str, int, str]]) -> StreamPosition:
    """The position after delivering entries (in order); entries older than the position leave it unchanged."""
    ts, digests = position.ts, list(position.digests)
    for identity in identities:
        if identity[1] > ts:
            ts, digests = identity[1], [entry_digest(identity)]
        elif identity[1] == ts:
            digests.append(entry_digest(identity))
    return StreamPosition(ts, tuple(digests[-MAX_CURSOR_DIGESTS:]))


def signer_source(secret: str, store: Store) -> Callable[[], Awaitable[Signer]]:
    """The signer for ``MONITORING_TOKEN_SECRET``; without it, a random secret generated once and kept in the
    store (read on first use), so tokens survive restarts and are valid on every replica sharing the store.
    server/config.py has checked the secret's length; :class:`Signer` checks it again."""
    signer: Signer | None = Signer(secret.encode()) if secret else None
    lock = asyncio.Lock()

    async def get() -> Signer:
        nonlocal signer
        if signer is None:
            async with lock:
                if signer is None:
                    stored = await store.server_secret(SECRET_NAME, secrets.token_bytes(32), time.time_ns())
                    signer = Signer(stored)
        return signer

    return get
