"""The JSON body of a unary reply, kept by the reply's bytes.

Dashboards and scripts ask the same question again and again (an app's health every few seconds, the open
alerts of a workspace), and between two changes the server's answer is the same bytes. A body is a function of
those bytes and of the route (its output type and ``response_body``), so each process keeps the bodies of the
replies it rendered last, least recently used out first, within a budget of bytes: an answer seen again is
neither parsed nor rendered. Exact: other bytes are another key. A reply larger than ``MAX_REPLY_BYTES`` or a
body larger than ``MAX_BODY_BYTES`` (long log pages, say) is rendered every time and not kept.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable

from google.protobuf import message_factory

import jsonmap
from edge.routes import Route

# What one edge process keeps at most: the replies' bytes and their bodies together. A body is several times its
# reply (field names, nulls for unset fields): 20 alerts are 5 KB of reply and 10 KB of JSON.
BUDGET_BYTES = 16 * 2**20
MAX_REPLY_BYTES = 64 * 2**10
MAX_BODY_BYTES = 256 * 2**10

_Key = tuple[str, str, bytes]


class Bodies:
    """The bodies of the unary routes' replies; build it once per process (one event loop: no locking)."""

    def __init__(self, routes: Iterable[Route], *, budget_bytes: int = BUDGET_BYTES):
        self._renderers = {(r.grpc_path, r.response_body): _renderer(r) for r in routes}
        self._kept: collections.OrderedDict[_Key, bytes] = collections.OrderedDict()
        self._budget = budget_bytes
        self._used = 0

    def body(self, route: Route, reply: bytes) -> bytes:
        """The JSON body of ``reply``, the serialized answer of ``route``'s method."""
        key = (route.grpc_path, route.response_body, reply)
        if len(reply) <= MAX_REPLY_BYTES and (body := self._kept.get(key)) is not None:
            self._kept.move_to_end(key)
            return body
        body = self._renderers[route.grpc_path, route.response_body](reply)
        if len(reply) <= MAX_REPLY_BYTES and len(body) <= MAX_BODY_BYTES:
            self._keep(key, body)
        return body

    @property
    def kept_bytes(self) -> int:
        """The bytes kept now (replies and bodies), never over the budget."""
        return self._used

    def _keep(self, key: _Key, body: bytes) -> None:
        self._kept[key] = body
        self._used += len(key[2]) + len(body)
        while self._used > self._budget:
            (_, _, reply), dropped = self._kept.popitem(last=False)
            self._used -= len(reply) + len(dropped)


def _renderer(route: Route) -> Callable[[bytes], bytes]:
    parse = message_factory.GetMessageClass(route.method.output_type).FromString
    field = route.response_body

    def render(reply: bytes) -> bytes:
        message = parse(reply)
        return jsonmap.dumps(jsonmap.field_to_json(message, field) if field else jsonmap.to_json(message))

    return render
