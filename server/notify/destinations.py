"""Where a channel may send: the URL's shape when a channel is saved, and its resolved addresses when it is sent to.

A tenant chooses the URL, and the service POSTs to it from inside its own network, so a URL naming a loopback,
private, link-local or otherwise internal address would let a tenant reach what only the service should
(server-side request forgery). :func:`check_url` refuses such literal addresses when the channel is saved;
:func:`refused_reason` resolves the host name again before each attempt, since a name can point anywhere
and can change after it was checked. ``allow_private`` (``[notify] allow_private_destinations``) lifts both
for development and the tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse

import httpx

from server.errors import InvalidArgument

MAX_URL_LENGTH = 2048
_SCHEMES = ("http", "https")
_ALLOWED = "an http or https URL with a host, without user:password@, at most 2048 characters"
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_url(url: str, *, field: str, allow_private: bool) -> str:
    """``url`` stripped of surrounding blanks, or InvalidArgument naming ``field`` and what is allowed."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidArgument(field, f"must be {_ALLOWED}")
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in 0..65535
        httpx.URL(url).host  # noqa: B018 - read as the sender will: an invalid A-label (xn--zz) fails here
    except (ValueError, httpx.InvalidURL) as error:
        raise InvalidArgument(field, f"must be {_ALLOWED}") from error
    if parts.scheme.lower() not in _SCHEMES or not host:
        raise InvalidArgument(field, f"must be {_ALLOWED}")
    if "@" in parts.netloc:
        raise InvalidArgument(field, "must not carry a user name or password (user:password@); use the secret")
    if any(char.isspace() or ord(char) < 0x20 for char in url):
        raise InvalidArgument(field, f"must be {_ALLOWED}")
    if not allow_private and _literal_not_public(host):
        raise InvalidArgument(
            field, "must point at a public address, not loopback, private, link-local or other internal ones"
        )
    return url


async def refused_reason(url: str, *, allow_private: bool) -> str | None:
    """Plain words for why ``url`` may not be sent to now (its host resolves to an internal address), else None.

    A name that does not resolve is not refused here: the attempt itself fails with "host name not resolved"
    and is retried like any network error.
    """
    if allow_private:
        return None
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if _literal_not_public(host):
        return "the destination is not a public address"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        return None
    for info in infos:
        address = _address(str(info[4][0]))
        if address is None or not _public(address):
            return "the destination's host name resolves to an address that is not public"
    return None


def _literal_not_public(host: str) -> bool:
    """Whether ``host`` is ``localhost`` (or a name under it) or a literal IP address that is not public."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _address(name) or _legacy_ipv4(name)
    return address is not None and not _public(address)


def _address(text: str) -> _IPAddress | None:
    # getaddrinfo gives IPv6 link-local addresses with their zone ("fe80::1%eth0"); the zone does not change
    # what kind of address it is.
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


def _legacy_ipv4(name: str) -> ipaddress.IPv4Address | None:
    """The address of the old spellings the resolver still takes ("2130706433", "0x7f.1", "127.1")."""
    if not name or not all(char in "0123456789abcdefx." for char in name):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        return None


def _public(address: _IPAddress) -> bool:
    # An IPv4 address written as IPv6 (::ffff:127.0.0.1) reaches the IPv4 host: judge that one.
    if isinstance(address, ipaddress.IPv6Address):
        # 6to4 (2002:7f00:1::) and Teredo addresses carry an IPv4 host too: a relay may take them there.
        teredo = address.teredo[1] if address.teredo else None
        embedded = address.ipv4_mapped or address.sixtofour or teredo
        if embedded is not None and not _public(embedded):
            return False
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    )
