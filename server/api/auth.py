"""API keys and the admin token: minting, hashing, and resolving a call's metadata to a workspace.

A key is ``dor_sk_`` followed by 43 URL-safe characters (32 random bytes). Only its SHA-256 is stored:
the secret has 256 bits of entropy, so a slow password hash would add latency without adding safety.
The lookup is by hash, and the admin token is compared with ``hmac.compare_digest``. Keys are never
logged; errors quote at most the scheme of a malformed header.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

import grpc

from server.errors import PermissionDenied, Unauthenticated
from server.store import Store
from server.store.records import ApiKey

KEY_PREFIX = "dor_sk_"
_KEY_PATTERN = re.compile(r"dor_sk_[A-Za-z0-9_-]{43}")
_BEARER = "bearer "


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

    def __init__(self, store: Store, admin_token: str):
        self._store = store
        self._admin_hash = hash_secret(admin_token) if admin_token else None

    async def workspace_key(self, context: grpc.aio.ServicerContext) -> ApiKey:
        token = bearer_token(context.invocation_metadata())
        if not _KEY_PATTERN.fullmatch(token):
            raise Unauthenticated("malformed API key: expected 'dor_sk_' followed by 43 URL-safe characters")
        key = await self._store.find_api_key(hash_secret(token))
        if key is None or key.revoked_ns is not None:
            raise Unauthenticated("unknown or revoked API key")
        return key

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
