"""The web console: the static files under ``static/``, served at ``/`` beside the API (docs/console.md).

There is no build step: what is in ``static/`` is what the browser gets, shipped as package data. The files
are read once at import (about 70 KB) so that a request costs one dict lookup and no disk access. The page
talks to the same public REST/SSE API as any client; this module only serves bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import urllib.parse

from starlette.types import Scope, Send

STATIC = pathlib.Path(__file__).resolve().parent / "static"
# Everything from this origin, nothing inline, nothing from another host; no framing, no <base>, no plugins.
# uPlot styles its elements through the CSSOM (element.style), which style-src does not govern.
CSP = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_TEXT = "text/plain; charset=utf-8"  # LICENSE and other suffix-less files
# A vendored library lives in a folder named after its version, so its URL changes with its content.
_IMMUTABLE = "public, max-age=31536000, immutable"
# Our own files keep their names across releases: the browser revalidates them (a 304 by ETag).
_REVALIDATE = "no-cache"
_SECURITY = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


@dataclasses.dataclass(frozen=True)
class Asset:
    body: bytes
    etag: bytes
    headers: list[tuple[bytes, bytes]]


def _asset(path: pathlib.Path, relative: str) -> Asset:
    body = path.read_bytes()
    etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'.encode()
    cache = _IMMUTABLE if relative.startswith("vendor/") else _REVALIDATE
    headers = [
        (b"content-type", _TYPES.get(path.suffix, _TEXT).encode()),
        (b"cache-control", cache.encode()),
        (b"etag", etag),
        *_SECURITY,
    ]
    return Asset(body, etag, headers)


def load(root: pathlib.Path = STATIC) -> dict[str, Asset]:
    """URL path → asset for every file under ``root``; ``/`` is ``index.html``."""
    assets = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            relative = path.relative_to(root).as_posix()
            assets["/" + relative] = _asset(path, relative)
    assets["/"] = assets["/index.html"]
    return assets


ASSETS = load()


def _if_none_match(scope: Scope) -> bytes | None:
    return next((value for name, value in scope["headers"] if name == b"if-none-match"), None)


async def serve(scope: Scope, send: Send) -> bool:
    """Answers a GET or HEAD of a console file and returns True; returns False for anything else."""
    asset = ASSETS.get(scope["path"])
    if asset is None or scope["method"] not in ("GET", "HEAD"):
        return False
    if _if_none_match(scope) == asset.etag:
        await send({"type": "http.response.start", "status": 304, "headers": asset.headers[1:]})
        await send({"type": "http.response.body", "body": b""})
        return True
    length = (b"content-length", str(len(asset.body)).encode())
    await send({"type": "http.response.start", "status": 200, "headers": [*asset.headers, length]})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else asset.body})
    return True


def signed_in_url(edge_url: str, workspace_id: str, key: str, app_ids: list[str]) -> str:
    """A link that opens the console signed in (``make run`` prints one): the key travels in the fragment,
    which browsers never send, and the page moves it to sessionStorage and clears it (js/session.js)."""
    fragment = urllib.parse.urlencode({"key": key, "workspace": workspace_id, "apps": ",".join(app_ids)}, safe=",")
    return f"{edge_url}/#{fragment}"
