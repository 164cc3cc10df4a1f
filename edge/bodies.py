"""The JSON body of a unary reply, kept by the reply's bytes.

Dashboards and scripts ask the same question again and again (an app's health every few seconds, the open
alerts of a workspace), and between two changes the server's answer is the same bytes. A body is a function of
those bytes and of the route (its output type and ``response_body``), so each process keeps the bodies of the
replies it rendered last, in a bounded LRU: an answer seen again is neither parsed nor rendered. Exact: other
bytes are another key. Replies larger than ``MAX_REPLY_BYTES`` (long log pages, say) are rendered every time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from google.protobuf import message_factory

import jsonmap
from edge.routes import Route

# At most ENTRIES bodies of replies up to MAX_REPLY_BYTES each: a few tens of MB in the worst case.
ENTRIES = 256
MAX_REPLY_BYTES = 64 * 1024


class Bodies:
    """The bodies of the unary routes' replies; build it once per process."""

    def __init__(self, routes: Iterable[Route]):
        self._renderers = {(r.grpc_path, r.response_body): _renderer(r) for r in routes}
        self._kept = functools.lru_cache(maxsize=ENTRIES)(self._render)

    def body(self, route: Route, reply: bytes) -> bytes:
        """The JSON body of ``reply``, the serialized answer of ``route``'s method."""
        if len(reply) > MAX_REPLY_BYTES:
            return self._render(route.grpc_path, route.response_body, reply)
        return self._kept(route.grpc_path, route.response_body, reply)

    def _render(self, grpc_path: str, response_body: str, reply: bytes) -> bytes:
        return self._renderers[grpc_path, response_body](reply)


def _renderer(route: Route) -> Callable[[bytes], bytes]:
    parse = message_factory.GetMessageClass(route.method.output_type).FromString
    field = route.response_body

    def render(reply: bytes) -> bytes:
        message = parse(reply)
        return jsonmap.dumps(jsonmap.field_to_json(message, field) if field else jsonmap.to_json(message))

    return render
