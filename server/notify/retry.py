"""The retry policy of deliveries, as pure functions: what an answer means, and when to try again.

A receiver that is down or overloaded (a network error, a timeout, 408, 429, any 5xx) is tried again after
an exponential backoff with full jitter (AWS's "full jitter": a uniform delay between zero and the capped
exponential), so that many deliveries failing together do not retry together. Any other answer is final:
2xx is delivered; a 4xx says the request itself is wrong and would be refused again; a 3xx is final too,
since redirects are not followed (a redirect could lead a webhook to an internal address). A delivery still
failing ``give_up_after_s`` after its event is given up.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Callable

from server.config import NotifySettings
from server.convert import NS_PER_S
from server.states import DeliveryStatus

_RETRIED_CODES = frozenset({408, 429})
# The answers whose Retry-After is honoured: "too many requests", and "unavailable" as RFC 9110 allows.
_RETRY_AFTER_CODES = frozenset({429, 503})


class Verdict(enum.Enum):
    """What one attempt's outcome says about the delivery."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class Decision:
    """The delivery's status after an attempt, and when the next attempt is due (PENDING only)."""

    status: DeliveryStatus
    next_attempt_ns: int | None


def verdict(status_code: int | None) -> Verdict:
    """``status_code`` None stands for no answer at all (a network error or a timeout)."""
    if status_code is None or status_code in _RETRIED_CODES or 500 <= status_code <= 599:
        return Verdict.RETRY
    if 200 <= status_code <= 299:
        return Verdict.DELIVERED
    return Verdict.FAILED


def backoff_s(attempt: int, settings: NotifySettings, rand: Callable[[], float] = random.random) -> float:
    """The delay after the ``attempt``-th failed attempt (1 for the first): full jitter over the capped
    exponential ``min(retry_max_s, retry_initial_s × 2^(attempt-1))``."""
    exponent = min(max(attempt, 1) - 1, 64)  # 2^64 × any sane initial delay is past any cap already
    ceiling = min(settings.retry_max_s, settings.retry_initial_s * 2.0**exponent)
    return rand() * ceiling


def retry_after_s(header: str | None, settings: NotifySettings) -> float | None:
    """A Retry-After of delay-seconds, capped at ``retry_max_s``; None when absent or not a number of seconds
    (the HTTP-date form is left to the backoff: it depends on the receiver's clock)."""
    if header is None or not header.strip().isdigit():
        return None
    return min(float(header.strip()), settings.retry_max_s)


def decide(
    *,
    status_code: int | None,
    retry_after: str | None,
    attempt: int,
    created_ns: int,
    now_ns: int,
    settings: NotifySettings,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """The outcome of the ``attempt``-th attempt (1 for the first) of a delivery whose event happened at
    ``created_ns``, made at ``now_ns``."""
    match verdict(status_code):
        case Verdict.DELIVERED:
            return Decision(DeliveryStatus.DELIVERED, None)
        case Verdict.FAILED:
            return Decision(DeliveryStatus.FAILED, None)
    if now_ns - created_ns >= settings.give_up_after_s * NS_PER_S:
        return Decision(DeliveryStatus.FAILED, None)
    delay_s = retry_after_s(retry_after, settings) if status_code in _RETRY_AFTER_CODES else None
    if delay_s is None:
        delay_s = backoff_s(attempt, settings, rand)
    return Decision(DeliveryStatus.PENDING, now_ns + int(delay_s * NS_PER_S))
