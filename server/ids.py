"""Ids that sort by creation time: a prefix and a ULID (48-bit milliseconds, 80 random bits, Crockford base32)."""

from __future__ import annotations

import secrets

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str, now_ns: int) -> str:
    """``<prefix>_`` + a ULID of ``now_ns``, for example ``alr_01hx…``: ids of one kind sort by time."""
    value = (now_ns // 1_000_000) << 80 | secrets.randbits(80)
    return prefix + "_" + "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))
