"""API keys and the admin token: minting, hashing, and resolving a call's metadata to a workspace.

A key is ``dor_sk_`` followed by 43 URL-safe characters (32 random bytes). Only its SHA-256 is stored:
the secret has 256 bits of entropy, so a slow password hash would add latency without adding safety.
The lookup is by hash, and the admin token is compared with ``hmac.compare_digest``. Keys are never
logged; errors quote at most the scheme of a malformed header.

Each server process keeps the keys it has looked up for ``[api] key_cache_s`` (1 s by default), by hash, so
that a busy key costs one store read a second rather than one a call. Revocation stays bounded: the process
that revokes a key forgets it at once, and every other process (workers, replicas) asks the store again
within ``key_cache_s`` of the revocation. A key is never cached as unknown or revoked: a new key works on its
first call everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence

import grpc

from server.config import ApiSettings
from server.errors import PermissionDenied, Unauthenticated
from server.store import Store
from server.store.records import ApiKey

KEY_PREFIX = "dor_sk_"
_KEY_PATTERN = re.compile(r"dor_sk_[A-Za-z0-9_-]{43}")
_BEARER = "bearer "
# Keys held at most per process: a full cache drops what expired, then the oldest entries.
MAX_CACHED_KEYS = 10_000


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def display_prefix(secret: str) -> str:
    return secret[: len(KEY_PREFIX) + 4]


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The token of the call's ``authorization: Bearer …`` metadata; Unauthenticated when absent."""
    values = [v for k, v in (metadata or ()) if k == "authorization"]
    if not values:
        raise Unauthenticated("missing authorization metadata: send 'authorization: Bearer dor_sk_…'")
    value = values[0] if isinstance(values[0], str) else values[0].decode("latin-1")
    if len(values) > 1 or not value.lower().startswith(_BEARER):
        raise Unauthenticated("malformed authorization metadata: expected exactly one 'Bearer <token>'")
    return value[len(_BEARER) :].strip()


class Authenticator:
    """Resolves calls to the workspace their key belongs to, and checks the admin token."""

    def __init__(
        self,
        store: Store,
        admin_token: str,
        *,
        key_cache_s: float = ApiSettings.key_cache_s,
        clock: Callable[[], float] = time.monotonic,
        max_cached_keys: int = MAX_CACHED_KEYS,
    ):
        self._store = store
        self._admin_hash = hash_secret(admin_token) if admin_token else None
        self._key_cache_s = key_cache_s
        self._clock = clock
        self._max_cached_keys = max_cached_keys
        # Secret hash → (the valid key, when the entry expires on the clock); oldest entries first.
        self._keys: dict[bytes, tuple[ApiKey, float]] = {}
        # Grows with each forget_key: a read that began before a revocation here must not cache its older answer.
        self._revocations = 0

    async def workspace_key(self, context: grpc.aio.ServicerContext, *, fresh: bool = False) -> ApiKey:
        """The call's valid key. ``fresh``: asked of the store whatever is cached (a stream's periodic re-check)."""
        token = bearer_token(context.invocation_metadata())
        if not _KEY_PATTERN.fullmatch(token):
            raise Unauthenticated("malformed API key: expected 'dor_sk_' followed by 43 URL-safe characters")
        secret_hash = hash_secret(token)
        if not fresh and (cached := self._keys.get(secret_hash)) is not None and self._clock() < cached[1]:
            return cached[0]
        # The expiry counts from before the read: an entry never outlives a revocation by more than key_cache_s.
        expires = self._clock() + self._key_cache_s
        revocations = self._revocations
        key = await self._store.find_api_key(secret_hash)
        if key is None or key.revoked_ns is not None:
            self._keys.pop(secret_hash, None)
            raise Unauthenticated("unknown or revoked API key")
        if self._key_cache_s > 0 and revocations == self._revocations:
            self._remember(secret_hash, key, expires)
        return key

    def forget_key(self, key_id: str) -> None:
        """Drops ``key_id`` from this process's cache once its revocation is committed: refused here from the
        next call on."""
        self._revocations += 1
        for secret_hash in [h for h, (key, _) in self._keys.items() if key.id == key_id]:
            del self._keys[secret_hash]

    def _remember(self, secret_hash: bytes, key: ApiKey, expires: float) -> None:
        self._keys.pop(secret_hash, None)  # re-inserted at the end: the entries stay in expiry order
        if len(self._keys) >= self._max_cached_keys:
            now = self._clock()
            for oldest in [h for h, (_, until) in self._keys.items() if until <= now] or [next(iter(self._keys))]:
                del self._keys[oldest]
        self._keys[secret_hash] = (key, expires)

    @staticmethod
    def check_workspace(key: ApiKey, workspace_id: str) -> None:
        """Refuses a key used outside its own workspace (before any existence check, so nothing leaks)."""
        if key.workspace_id != workspace_id:
            raise PermissionDenied(
                f"this API key does not grant access to workspace {workspace_id!r}",
                metadata={"workspace_id": workspace_id},
            )

    def authorize_admin(self, context: grpc.aio.ServicerContext) -> None:
        if self._admin_hash is None:
            raise PermissionDenied("PlatformService is disabled: the server has no MONITORING_ADMIN_TOKEN")
        token = bearer_token(context.invocation_metadata())
        if not hmac.compare_digest(hash_secret(token), self._admin_hash):
            raise Unauthenticated("invalid admin token")
