"""Webhook signatures: the documented recipe (HMAC-SHA256 over "<timestamp>.<body>", hex) checked three ways:
against a hand-computed value, by the receiver's verify(), and by openssl as the shell recipe does it."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

from server.notify import signing

SECRET = "whsec_test_0123456789abcdef"
BODY = b'{"id":"evt_1","type":"alert.fired"}'
T = 1_767_225_600


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() -> None:
    # Computed independently: printf '%s' '1767225600.{"id":"evt_1","type":"alert.fired"}' |
    #   openssl dgst -sha256 -hmac whsec_test_0123456789abcdef
    assert signing.signature(SECRET, T, BODY) == _openssl(SECRET, f"{T}.".encode() + BODY)


def test_verify_accepts_the_headers_as_sent_and_refuses_any_change() -> None:
    sent = {name.lower(): value for name, value in signing.headers([SECRET], "evt_1", T, BODY).items()}
    assert sent["dooor-webhook-id"] == "evt_1" and sent["dooor-webhook-timestamp"] == str(T)
    assert signing.verify(SECRET, sent, BODY, now=T + 10)
    assert not signing.verify(SECRET, sent, BODY + b" ", now=T)  # another body
    assert not signing.verify("whsec_other_0123456789abcdef", sent, BODY, now=T)  # another secret
    assert not signing.verify(SECRET, {**sent, "dooor-webhook-timestamp": str(T + 1)}, BODY, now=T)  # replayed time
    assert not signing.verify(SECRET, sent, BODY, now=T + signing.DEFAULT_TOLERANCE_S + 1)  # too old
    assert not signing.verify(SECRET, {k: v for k, v in sent.items() if "signature" not in k}, BODY, now=T)


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    new = "whsec_new_0123456789abcdefgh"
    sent = {k.lower(): v for k, v in signing.headers([SECRET, new], "evt_2", T, BODY).items()}
    assert sent["dooor-webhook-signature"].count("v1=") == 2
    assert signing.verify(SECRET, sent, BODY, now=T) and signing.verify(new, sent, BODY, now=T)


def _openssl(secret: str, payload: bytes) -> str:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is missing: make test installs it (scripts/system-deps.sh)")
    done = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", secret], input=payload, capture_output=True, check=True, timeout=10
    )
    return done.stdout.decode().rsplit("= ", 1)[-1].strip()


def test_the_documented_test_vector() -> None:
    doc = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "notifications.md").read_text()
    documented = doc.split("<!-- signature-vector -->", 1)[1].split("v1=", 1)[1].split()[0]
    body = b'{"id":"evt_1","event":"test"}'
    assert len(body) == 29
    assert documented == signing.signature("whsec_example_0123456789abcdef", 1767225600, body)
    assert documented == _openssl("whsec_example_0123456789abcdef", b"1767225600." + body)
