"""The ASGI application: route → request message → gRPC call on the shared channel → JSON or SSE.

Besides the routes read from the descriptors it serves ``/healthz`` (this process is up),
``/readyz`` (the upstream health service says SERVING) and ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import http.cookies
import logging
import re
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from google.protobuf import descriptor, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.types import Message, Receive, Scope, Send

import jsonmap
from edge import console, openapi, request, sse
from edge.bodies import Bodies
from edge.config import Config
from edge.errors import ApiError, error_info, from_rpc_error, invalid_argument, method_not_allowed, route_not_found
from edge.routes import Route, Router, routes_from

log = logging.getLogger("edge")
access_log = logging.getLogger("edge.access")


OPENAPI_PATH = "/api/v1/openapi.json"
TOKEN_PARAM = "access_token"
_JSON_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_GRPC_TIMEOUT = re.compile(r"(\d{1,8})([HMSmun])")
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
# What gRPC accepts in an ASCII metadata value: visible ASCII and the space (after "Bearer").
_METADATA_VALUE = re.compile(r"[\x20-\x7e]*")
# C0 and C1 controls, DEL, Unicode's line and paragraph separators, the quote and the backslash.
_LOG_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f\u2028\u2029"\\]')


def parse_grpc_timeout(value: str, cap_s: float) -> float:
    m = _GRPC_TIMEOUT.fullmatch(value.strip())
    if m is None:
        raise invalid_argument(
            "Grpc-Timeout", f"expected up to 8 digits and a unit H, M, S, m, u or n (e.g. 500m), got {value!r}"
        )
    if int(m.group(1)) == 0:
        raise invalid_argument("Grpc-Timeout", "must be greater than zero")
    return min(int(m.group(1)) * _TIMEOUT_UNITS[m.group(2)], cap_s)


def escape_log(text: str) -> str:
    """``text`` with what could forge or garble a log line escaped as ``\\xNN``/``\\uNNNN``.

    The path is percent-decoded, so ``%0A`` would start a new, client-written line; the quote would end the
    quoted request early; the backslash is escaped so that an escape in the log is never the client's own.
    """
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text  # the common case, without a regex pass: isprintable() is False for every control
    return _LOG_UNSAFE.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def redact_query(query: str) -> str:
    # Decide on the decoded names, as the request parser does: `access%5Ftoken` is the token too. Without a
    # percent sign a decoded name differs from its raw form only by '+' → ' ', so the raw text decides.
    if "%" not in query and TOKEN_PARAM not in query.lower():
        return query
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, errors="replace")
    if not any(name.lower() == TOKEN_PARAM for name, _ in pairs):
        return query
    return urllib.parse.urlencode([(n, "REDACTED" if n.lower() == TOKEN_PARAM else v) for n, v in pairs])


class Edge:
    """One ASGI app over one gRPC channel. Build it inside the running event loop."""

    def __init__(self, config: Config, channel: grpc.aio.Channel, services: Iterable[descriptor.ServiceDescriptor]):
        self.config = config
        self.routes = routes_from(services)
        self.router = Router(self.routes)
        self._calls = {route.grpc_path: _callable(channel, route.method) for route in self.routes}
        self._bodies = Bodies(route for route in self.routes if not route.method.server_streaming)
        # Read from the options once, not per request.
        self._query_token = frozenset(r.grpc_path for r in self.routes if jsonmap.allow_query_token(r.method))
        self._health = health_pb2_grpc.HealthStub(channel)
        self._ready_service = self.routes[0].method.containing_service.full_name if self.routes else ""
        self._openapi = jsonmap.dumps(openapi.document(self.routes, title="Dooor OS Monitoring API", version="v1"))
        self._sse = sse.Settings(
            config.heartbeat_s,
            config.sse_retry_ms,
            config.stream_accept_wait_s,
            config.upstream,
            config.max_receive_bytes,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if not self.config.access_log:
            await self._handle(scope, receive, send)
            return
        status = 0
        started = time.perf_counter()

        async def logged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, logged_send)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            target = escape_log(scope["path"] + ("?" + redact_query(query) if query else ""))
            client = (scope.get("client") or ("-", 0))[0]
            ms = (time.perf_counter() - started) * 1000
            access_log.info('%s "%s %s" %d %.1fms', client, scope["method"], target, status, ms)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        try:
            if path in console.ASSETS and await console.serve(scope, send):  # the web console (edge/console/)
                return
            if path in ("/healthz", "/readyz", OPENAPI_PATH):
                await self._builtin(method, path, send)
                return
            raw_path = (scope.get("raw_path") or path.encode()).decode("latin-1").split("?", 1)[0]
            match = self.router.match(method, raw_path)
            if match is None:
                raise route_not_found(method, path)
            if isinstance(match, list):
                raise method_not_allowed(method, path, match)
            await self._call(match.route, match.path_params, scope, receive, send)
        except ApiError as error:
            await _respond(send, error.http_status, error.body(), error.headers)
        except UnicodeDecodeError:
            await _respond_error(send, invalid_argument("path", "the URL path is not valid percent-encoded UTF-8"))
        except Exception:
            # A bug in the edge: logged with its trace here, answered with a plain INTERNAL body.
            log.exception("unhandled error on %s %s", method, escape_log(path))
            await _respond_error(send, ApiError(grpc.StatusCode.INTERNAL, "internal error in the REST edge"))

    async def _builtin(self, method: str, path: str, send: Send) -> None:
        if method != "GET":
            raise method_not_allowed(method, path, ["GET"])
        if path == OPENAPI_PATH:
            await _respond(send, 200, self._openapi)
        elif path == "/healthz":
            await _respond(send, 200, b'{"status":"SERVING"}')
        else:
            status = await self._upstream_status()
            await _respond(send, 200 if status == "SERVING" else 503, jsonmap.dumps({"status": status}))

    async def _upstream_status(self) -> str:
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(service=self._ready_service), timeout=2.0)
        except grpc.aio.AioRpcError as error:
            return f"UPSTREAM_{error.code().name}"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    async def _call(
        self, route: Route, path_params: Mapping[tuple[str, ...], str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        headers = _headers(scope)
        raw_query = scope.get("query_string", b"")
        query = request.parse_query(raw_query.decode("latin-1")) if raw_query else []
        allow_token = route.grpc_path in self._query_token
        if not allow_token and any(name == TOKEN_PARAM for name, _ in query):
            raise invalid_argument(
                TOKEN_PARAM, "is only accepted by streaming endpoints; send the header 'Authorization: Bearer <key>'"
            )
        body = await _read_body(receive) if route.body else b""
        message = request.build(
            route,
            path_params,
            query,
            headers,
            body,
            system_params=frozenset({TOKEN_PARAM}) if allow_token else frozenset(),
        )
        metadata = _metadata(headers, query if allow_token else None)
        timeout = self._deadline(headers, streaming=route.method.server_streaming)
        call = self._calls[route.grpc_path]
        try:
            if route.method.server_streaming:
                stream = call(message, metadata=metadata, timeout=timeout)
                first = await sse.accept(stream, self._sse)
                await sse.run(stream, first, send, receive, self._sse)
                return
            try:
                reply = await call(message, metadata=metadata, timeout=timeout)
            except grpc.aio.AioRpcError as error:
                raise from_rpc_error(error, self.config.upstream, self.config.max_receive_bytes) from None
        except ApiError as error:
            if error.code == grpc.StatusCode.UNAUTHENTICATED and metadata:
                # RFC 6750: credentials were sent and refused (no error code when none were sent).
                error.headers["www-authenticate"] = 'Bearer realm="monitoring", error="invalid_token"'
            raise
        await _respond(send, 200, self._bodies.body(route, reply))

    def _deadline(self, headers: Mapping[str, str], *, streaming: bool) -> float | None:
        raw = headers.get("grpc-timeout")
        if raw is not None:
            return parse_grpc_timeout(raw, self.config.max_deadline_s)
        return None if streaming else self.config.default_deadline_s


def _callable(channel: grpc.aio.Channel, method: descriptor.MethodDescriptor) -> Any:
    path = f"/{method.containing_service.full_name}/{method.name}"
    if method.client_streaming:
        raise ValueError(f"{method.full_name}: client streaming cannot be mapped to HTTP")
    if method.server_streaming:
        kind, parse = channel.unary_stream, message_factory.GetMessageClass(method.output_type).FromString
    else:
        kind, parse = channel.unary_unary, None  # the reply's bytes: edge/bodies.py parses them when it must
    return kind(
        path,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=parse,
        # As grpcio-tools' generated stubs do: C-core resolves the method once, not on every call.
        _registered_method=True,
    )


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _metadata(headers: Mapping[str, str], query: list[tuple[str, str]] | None) -> tuple[tuple[str, str], ...]:
    """``authorization`` as sent; where the method allows it, else from ``access_token`` (query, then cookie)."""
    auth = headers.get("authorization")
    if auth is None and query is not None:
        token = next((v for k, v in query if k == TOKEN_PARAM), None) or _cookie(headers, TOKEN_PARAM)
        if token:
            auth = f"Bearer {token}"
    if auth and not _METADATA_VALUE.fullmatch(auth):
        # gRPC would refuse this metadata (a 500 from the channel); it is the client's malformed credential.
        raise ApiError(
            grpc.StatusCode.UNAUTHENTICATED,
            "malformed credential: send 'Authorization: Bearer dor_sk_…' (or access_token where allowed) "
            "with a key of visible ASCII characters only",
            [error_info("MALFORMED_CREDENTIAL")],
            {"www-authenticate": 'Bearer realm="monitoring", error="invalid_token"'},
        )
    return (("authorization", auth),) if auth else ()


def _cookie(headers: Mapping[str, str], name: str) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar = http.cookies.SimpleCookie()
    try:
        jar.load(raw)
    except http.cookies.CookieError:
        return None
    morsel = jar.get(name)
    return urllib.parse.unquote(morsel.value) if morsel else None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
    extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _respond_error(send: Send, error: ApiError) -> None:
    await _respond(send, error.http_status, error.body(), error.headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
