"""Webhook signatures: HMAC-SHA256 over the timestamp and the body, in a header pair like Stripe's.

Every delivery carries::

    Dooor-Webhook-Id: evt_…                  the event's idempotency key: the same on every retry
    Dooor-Webhook-Timestamp: 1767225600      Unix seconds when this attempt was signed
    Dooor-Webhook-Signature: v1=<hex>        HMAC-SHA256(secret, "<timestamp>.<body>"), lowercase hex

A receiver recomputes the HMAC over the timestamp it received, a ``.``, and the raw body bytes, compares in
constant time, and refuses timestamps too far from its clock (replays). ``v1=`` names the scheme, so a
second one can be added beside it during a rotation (``v1=…,v1=…``: any match is valid). docs/notifications.md has
the recipe in Python and in shell.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

ID_HEADER = "Dooor-Webhook-Id"
TIMESTAMP_HEADER = "Dooor-Webhook-Timestamp"
SIGNATURE_HEADER = "Dooor-Webhook-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The lowercase hex HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def headers(secrets: list[str], event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of one attempt, signed with each of ``secrets`` (more than one while rotating)."""
    signed = ",".join(f"{SCHEME}={signature(secret, timestamp, body)}" for secret in secrets)
    return {ID_HEADER: event_id, TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signed}


def verify(
    secret: str, received: Mapping[str, str], body: bytes, *, now: int, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> bool:
    """What a receiver does: True when one ``v1`` signature matches and the timestamp is within tolerance.

    ``received`` maps lowercase header names to values (as most frameworks give them)."""
    try:
        timestamp = int(received[TIMESTAMP_HEADER.lower()])
        offered = received[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    candidates = [part.partition("=")[2] for part in offered.split(",") if part.startswith(f"{SCHEME}=")]
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
