"""The HTTP side shared by the Prometheus and Loki clients: the pool under httpx, an answer read to a byte cap, and
its JSON decoded. (The Prometheus client builds its requests itself, its hot path; Loki's go through
``client.stream``.)

Both clients speak the httpx API; underneath, their connections are aiohttp's, through httpx-aiohttp's
transport (:func:`http_client`). Measured side by side on a real Prometheus (``bench/bench_prom_client.py``,
docs/benchmarks.md), httpx's own pool (httpcore) costs several times the CPU per request of aiohttp's, because
requests that start together are all offered one idle connection and retry. What the transport leaves out
does not reach us: no HTTP/2 (neither backend needs it), no write timeout (each client bounds the whole
exchange with one deadline anyway), httpx's pool timeout becomes aiohttp's connect timeout (the same value).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport, HttpxAiohttpClient

from server.errors import Unavailable


async def read_capped(response: httpx.Response, cap: int, *, backend: str, advice: str = "") -> bytes:
    """The decoded body, or Unavailable once it is known to exceed ``cap`` bytes (the rest is never read).

    A Content-Length over the cap is refused up front when the body is not compressed (a compressed one's
    length says nothing of its decoded size); otherwise the decoded chunks are counted as they arrive.
    ``advice`` follows the plain message (Loki: "; ask for fewer lines").
    """
    message = f"the answer is larger than {cap / 2**20:g} MiB{advice}"
    length = response.headers.get("content-length", "")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity") and length.isdigit() and int(length) > cap:
        raise Unavailable(backend, message, detail=f"HTTP {response.status_code} with Content-Length {length}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            detail = f"HTTP {response.status_code}, more than {cap} decoded bytes; stopped reading"
            raise Unavailable(backend, message, detail=detail)
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(content: bytes | str) -> Any:
    """A backend's JSON answer as Python values; ValueError (``orjson.JSONDecodeError``) when it is not JSON.

    orjson, not the standard library: it decodes Prometheus's matrices in about half the time of ``json.loads``
    (7 days of six series: 93 → 42 µs per answer, docs/benchmarks.md), and the answers are decoded on every
    query. What the backends write decodes to the values ``json.loads`` gives (tests/server/test_backend_json.py).
    What neither writes differs: a bare ``NaN``, a number beyond a double and a lone surrogate escape are refused,
    an integer beyond 64 bits becomes a float (Go's encoders quote Prometheus's values and replace bad text).
    """
    return orjson.loads(content)


def http_client(
    base_url: str,
    timeout_s: float,
    max_connections: int,
    *,
    headers: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` over its own pool of ``max_connections`` aiohttp connections.

    As before, httpx reads the environment (HTTP(S)_PROXY, NO_PROXY, SSL_CERT_FILE) and turns credentials in
    the URL into a Basic ``Authorization`` header. ``transport`` replaces the pool (tests).
    """
    # httpx logs every request at INFO ("HTTP Request: POST …"): a line per backend query at the service's
    # default level, which repeats what the service's own log says and costs CPU on each query. Its warnings
    # stay, and a level someone set on purpose is kept.
    if (httpx_log := logging.getLogger("httpx")).level == logging.NOTSET:
        httpx_log.setLevel(logging.WARNING)
    return _Client(
        base_url=base_url,
        headers=headers,
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        transport=transport,
    )


class Transport(AiohttpTransport):
    """httpx-aiohttp's transport with every failure an ``httpx.HTTPError`` that says what happened.

    The package maps any connection error to ``ConnectTimeout`` (a server closing the connection would read as
    a deadline) and lets other aiohttp errors through unmapped; here the original stays the ``__cause__``,
    so :func:`server.errors.network_cause` still finds the OS error behind it. Credentials are taken out of
    the URL handed to aiohttp: httpx has already put them in the ``Authorization`` header, and aiohttp refuses
    both at once. Its session keeps no cookies (:meth:`get_client`).
    """

    def get_client(self) -> aiohttp.ClientSession:
        # httpx-aiohttp 0.2's session (the pool's size, keep-alive expiry and TLS context), without a cookie jar:
        # httpx's is already empty (_NoCookies), but aiohttp's own kept a named host's cookies and sent them back
        # (and filtered every request's, 0.01–0.05 ms per query, within the noise). The package's other session
        # options (a Unix socket, a local address, a session of the caller's) are never passed (_options).
        limit = {} if self.limits.max_connections is None else {"limit": self.limits.max_connections}
        connector = aiohttp.TCPConnector(keepalive_timeout=self.limits.keepalive_expiry, ssl=self.ssl_context, **limit)
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.userinfo:
            request.url = request.url.copy_with(username=None, password=None)
        with _mapped(request):
            response = await super().handle_async_request(request)
        response.stream = _Stream(response.stream, request)  # type: ignore[arg-type]
        return response


class _Client(HttpxAiohttpClient):
    """httpx's client whose direct and proxied pools are both a :class:`Transport`, and that keeps no cookies."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # Neither backend sets cookies; httpx's jar still examines every answer for them (through urllib's
        # cookie machinery), about a tenth of the client's CPU per query.
        self._cookies = _NoCookies()

    def _init_transport(
        self, *, transport: httpx.AsyncBaseTransport | None = None, **options: Any
    ) -> httpx.AsyncBaseTransport:
        return transport if transport is not None else Transport(**_options(options))

    def _init_proxy_transport(self, proxy: httpx.Proxy, **options: Any) -> httpx.AsyncBaseTransport:
        return Transport(proxy=proxy, **_options(options))


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing it is sent."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def _options(options: dict[str, Any]) -> dict[str, Any]:
    keep = ("verify", "cert", "trust_env", "http1", "http2", "limits")
    return {name: options[name] for name in keep if name in options}


class _Stream(httpx.AsyncByteStream):
    """The response body, its read errors mapped like the request's."""

    def __init__(self, stream: httpx.AsyncByteStream, request: httpx.Request):
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request):
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with _mapped(self._request):
            await self._stream.aclose()


@contextlib.contextmanager
def _mapped(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError as error:
        cause = error.__cause__
        if not isinstance(cause, aiohttp.ClientError | TimeoutError | ssl.SSLError):
            raise
        raise _http_error(cause, request) from cause
    except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as error:
        raise _http_error(error, request) from error


def _http_error(error: BaseException, request: httpx.Request) -> httpx.HTTPError:
    """The httpx error that stands for an aiohttp (or OS) failure."""
    text = str(error) or type(error).__name__
    kind: type[httpx.TransportError]
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(error, TimeoutError):  # aiohttp's ServerTimeoutError, SocketTimeoutError are TimeoutErrors
        kind = httpx.ReadTimeout
    elif isinstance(error, aiohttp.ClientConnectorError | ssl.SSLError):
        kind = httpx.ConnectError
    elif isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        kind = httpx.RemoteProtocolError
    elif isinstance(error, aiohttp.ClientOSError):
        kind = httpx.ReadError
    elif isinstance(error, aiohttp.InvalidURL):
        kind = httpx.UnsupportedProtocol
    else:
        kind = httpx.TransportError
    return kind(text, request=request)
