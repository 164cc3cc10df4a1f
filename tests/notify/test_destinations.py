"""Which channel URLs are accepted, and which destinations are refused at send time."""

from __future__ import annotations

import pytest

from server.errors import InvalidArgument
from server.notify.destinations import check_url, refused_reason


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/services/T0/B0/x",
        "http://8.8.8.8:8080/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://example.com/" + "a" * 2000,
    ],
)
def test_public_http_urls_are_accepted(url: str) -> None:
    assert check_url(f"  {url} ", field="channel.url", allow_private=False) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "example.com/hook",
        "http://",
        "https://user:pass@example.com/",
        "https://token@example.com/",
        "http://example.com:99999/",
        "https://example.com/" + "a" * 2048,
        "http://exa mple.com/",
        "http://xn--zz.com/hook",  # not a valid A-label: the HTTP client could not send to it
    ],
)
def test_malformed_urls_are_refused_naming_the_field(url: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        check_url(url, field="channel.url", allow_private=True)
    assert raised.value.field == "channel.url"
    assert "http or https URL" in raised.value.description or "user name or password" in raised.value.description


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1:9093",
        "http://localhost:8080/",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://0x7f.1/",
        "http://127.1/",
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::]/",  # 6to4 of 169.254.169.254 (cloud metadata)
    ],
)
def test_internal_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        check_url(url, field="channel.url", allow_private=False)
    assert "public address" in raised.value.description
    assert check_url(url, field="channel.url", allow_private=True) == url


async def test_send_time_check_resolves_the_host() -> None:
    assert await refused_reason("http://127.0.0.1:1/", allow_private=False) is not None
    # "localhost" resolves to loopback through the resolver as well as by name.
    assert await refused_reason("http://localhost:1/", allow_private=False) is not None
    assert await refused_reason("http://127.0.0.1:1/", allow_private=True) is None
    # A public literal address needs no lookup; a name that does not resolve is left to the attempt.
    assert await refused_reason("https://8.8.8.8/", allow_private=False) is None
    assert await refused_reason("https://no-such-host.invalid/", allow_private=False) is None
