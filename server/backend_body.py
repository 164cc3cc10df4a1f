"""Reading a backend's HTTP answer up to a byte cap: shared by the Prometheus and Loki clients."""

from __future__ import annotations

import httpx

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
