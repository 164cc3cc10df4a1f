"""The per-process API key cache ([api] key_cache_s): one store read per key and period, and revocation within
the bound: at once in the process that revokes, within key_cache_s in every other one.

In-process, over a store double that counts its reads and a clock the test moves; the same bound between two
real server processes is tests/api/test_revocation_bound.py.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from server.api.auth import Authenticator, hash_secret, new_secret
from server.config import ApiSettings
from server.errors import Unauthenticated
from server.store.records import ApiKey

pytestmark = pytest.mark.timeout(10)

TTL_S = ApiSettings().key_cache_s


class _Keys:
    """The store's side of auth: keys by secret hash, every read counted. With a ``gate``, a read answers what
    it found when it began, once the gate opens (``reading`` is set when it began)."""

    def __init__(self) -> None:
        self.keys: dict[bytes, ApiKey] = {}
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.reading = asyncio.Event()

    def add(self, key_id: str, workspace_id: str = "ws_a") -> str:
        secret = new_secret()
        self.keys[hash_secret(secret)] = ApiKey(key_id, workspace_id, key_id, secret[:11], 1, None)
        return secret

    def revoke(self, key_id: str) -> None:
        for secret_hash, key in self.keys.items():
            if key.id == key_id:
                self.keys[secret_hash] = dataclasses.replace(key, revoked_ns=2)

    async def find_api_key(self, secret_hash: bytes) -> ApiKey | None:
        self.reads += 1
        found = self.keys.get(secret_hash)
        self.reading.set()
        if self.gate is not None:
            await self.gate.wait()
        return found


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Call:
    """What the authenticator reads of a call: its metadata."""

    def __init__(self, secret: str):
        self._metadata = (("authorization", f"Bearer {secret}"),)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


def _auth(store: _Keys, clock: _Clock, **kwargs: float) -> Authenticator:
    return Authenticator(store, "admin-token-0123456789", clock=clock, **kwargs)  # type: ignore[arg-type]


async def _refused(auth: Authenticator, secret: str) -> bool:
    try:
        await auth.workspace_key(_Call(secret))  # type: ignore[arg-type]
    except Unauthenticated:
        return True
    return False


async def test_a_key_is_read_from_the_store_once_per_key_cache_s() -> None:
    store, clock = _Keys(), _Clock()
    auth = _auth(store, clock)
    secret = store.add("key_a")
    for _ in range(5):
        assert (await auth.workspace_key(_Call(secret))).id == "key_a"  # type: ignore[arg-type]
    assert store.reads == 1
    clock.now += TTL_S
    await auth.workspace_key(_Call(secret))  # type: ignore[arg-type]
    assert store.reads == 2


async def test_a_key_revoked_by_another_process_is_refused_once_key_cache_s_has_passed() -> None:
    store, clock = _Keys(), _Clock()
    auth = _auth(store, clock)
    secret = store.add("key_a")
    await auth.workspace_key(_Call(secret))  # type: ignore[arg-type]
    store.revoke("key_a")  # committed through another process: this one is not told
    clock.now += TTL_S * 0.99
    assert not await _refused(auth, secret)  # within the documented bound, the cached answer stands
    clock.now += TTL_S * 0.01
    assert await _refused(auth, secret)


async def test_the_process_that_revokes_refuses_the_key_on_its_next_call() -> None:
    store, clock = _Keys(), _Clock()
    auth = _auth(store, clock)
    secret, other = store.add("key_a"), store.add("key_b")
    for key_secret in (secret, other):
        await auth.workspace_key(_Call(key_secret))  # type: ignore[arg-type]
    store.revoke("key_a")
    auth.forget_key("key_a")
    assert await _refused(auth, secret)
    reads = store.reads
    assert not await _refused(auth, other)  # the other key is still cached
    assert store.reads == reads


async def test_a_read_that_began_before_a_revocation_here_is_not_cached() -> None:
    store, clock = _Keys(), _Clock()
    auth = _auth(store, clock)
    secret = store.add("key_a")
    store.gate = asyncio.Event()
    in_flight = asyncio.create_task(auth.workspace_key(_Call(secret)))  # type: ignore[arg-type]
    await store.reading.wait()  # the read found the key valid ...
    store.revoke("key_a")  # ... and the revocation commits before its answer arrives
    auth.forget_key("key_a")
    store.gate.set()
    assert (await in_flight).id == "key_a"  # that call was accepted: it began before the revocation
    store.gate = None
    assert await _refused(auth, secret)  # ... but its answer was not kept for the next one


async def test_unknown_and_revoked_keys_are_never_cached() -> None:
    store, clock = _Keys(), _Clock()
    auth = _auth(store, clock)
    secret = new_secret()
    assert await _refused(auth, secret)
    key = ApiKey("key_new", "ws_a", "new", secret[:11], 1, None)
    store.keys[hash_secret(secret)] = key  # created since: works on its first call, not a key_cache_s later
    assert (await auth.workspace_key(_Call(secret))).id == "key_new"  # type: ignore[arg-type]
    store.revoke("key_new")
    clock.now += TTL_S
    assert await _refused(auth, secret)
    reads = store.reads
    assert await _refused(auth, secret)
    assert store.reads == reads + 1


async def test_zero_asks_the_store_on_every_call() -> None:
    store, clock = _Keys(), _Clock()
    auth = _auth(store, clock, key_cache_s=0)
    secret = store.add("key_a")
    await auth.workspace_key(_Call(secret))  # type: ignore[arg-type]
    store.revoke("key_a")
    assert await _refused(auth, secret)
    assert store.reads == 2


async def test_a_fresh_check_asks_the_store_whatever_is_cached() -> None:
    store, clock = _Keys(), _Clock()
    auth = _auth(store, clock)
    secret = store.add("key_a")
    await auth.workspace_key(_Call(secret))  # type: ignore[arg-type]
    store.revoke("key_a")
    with pytest.raises(Unauthenticated):
        await auth.workspace_key(_Call(secret), fresh=True)  # type: ignore[arg-type]
    assert await _refused(auth, secret)  # and the stale entry is gone


async def test_the_cache_holds_at_most_max_cached_keys() -> None:
    store, clock = _Keys(), _Clock()
    auth = _auth(store, clock, max_cached_keys=3)
    secrets = [store.add(f"key_{i}") for i in range(5)]
    for secret in secrets:
        await auth.workspace_key(_Call(secret))  # type: ignore[arg-type]
    assert len(auth._keys) == 3
    reads = store.reads
    for secret in secrets[-3:]:  # the newest stayed
        await auth.workspace_key(_Call(secret))  # type: ignore[arg-type]
    assert store.reads == reads
    clock.now += TTL_S  # all expired: the next one replaces them
    await auth.workspace_key(_Call(secrets[0]))  # type: ignore[arg-type]
    assert len(auth._keys) == 1
