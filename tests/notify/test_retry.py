"""The retry policy: which answers retry, the backoff's bounds, Retry-After, giving up."""

from __future__ import annotations

import pytest

from server.config import NotifySettings
from server.notify import retry
from server.notify.retry import Verdict
from server.states import DeliveryStatus

S = 10**9
SETTINGS = NotifySettings(retry_initial_s=1.0, retry_max_s=600.0, give_up_after_s=86400.0)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (None, Verdict.RETRY),  # network error or timeout
        (200, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (301, Verdict.FAILED),  # redirects are not followed
        (302, Verdict.FAILED),
        (400, Verdict.FAILED),
        (401, Verdict.FAILED),
        (404, Verdict.FAILED),
        (408, Verdict.RETRY),
        (410, Verdict.FAILED),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (599, Verdict.RETRY),
    ],
)
def test_verdict_of_each_answer(code: int | None, expected: Verdict) -> None:
    assert retry.verdict(code) is expected


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (10, 512.0), (11, 600.0), (500, 600.0)])
def test_backoff_is_full_jitter_under_the_capped_exponential(attempt: int, ceiling: float) -> None:
    assert retry.backoff_s(attempt, SETTINGS, rand=lambda: 0.0) == 0.0
    assert retry.backoff_s(attempt, SETTINGS, rand=lambda: 0.999999) == pytest.approx(ceiling, rel=1e-5)
    assert retry.backoff_s(attempt, SETTINGS, rand=lambda: 0.5) == pytest.approx(ceiling / 2)


def test_decide_schedules_a_retry_and_records_final_outcomes() -> None:
    args = {"retry_after": None, "attempt": 3, "created_ns": 0, "now_ns": 10 * S, "settings": SETTINGS}
    retried = retry.decide(status_code=503, rand=lambda: 0.5, **args)  # type: ignore[arg-type]
    assert retried == retry.Decision(DeliveryStatus.PENDING, 10 * S + 2 * S)
    assert retry.decide(status_code=200, **args) == retry.Decision(DeliveryStatus.DELIVERED, None)  # type: ignore[arg-type]
    assert retry.decide(status_code=400, **args) == retry.Decision(DeliveryStatus.FAILED, None)  # type: ignore[arg-type]


def test_retry_after_seconds_are_honoured_up_to_the_cap() -> None:
    args = {"attempt": 1, "created_ns": 0, "now_ns": 0, "settings": SETTINGS, "rand": lambda: 0.0}
    assert retry.decide(status_code=429, retry_after="30", **args).next_attempt_ns == 30 * S  # type: ignore[arg-type]
    assert retry.decide(status_code=429, retry_after="99999", **args).next_attempt_ns == 600 * S  # type: ignore[arg-type]
    # An HTTP date is left to the backoff (here: no delay at all, rand 0).
    dated = retry.decide(status_code=429, retry_after="Wed, 21 Oct 2026 07:28:00 GMT", **args)  # type: ignore[arg-type]
    assert dated.next_attempt_ns == 0


def test_a_delivery_failing_past_the_give_up_time_is_failed() -> None:
    args = {"retry_after": None, "attempt": 40, "created_ns": 0, "settings": SETTINGS}
    assert retry.decide(status_code=503, now_ns=86399 * S, **args).status == DeliveryStatus.PENDING  # type: ignore[arg-type]
    assert retry.decide(status_code=503, now_ns=86400 * S, **args).status == DeliveryStatus.FAILED  # type: ignore[arg-type]
    assert retry.decide(status_code=None, now_ns=90000 * S, **args).status == DeliveryStatus.FAILED  # type: ignore[arg-type]
