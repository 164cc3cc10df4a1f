"""Debian's headless Chromium driven over the Chrome DevTools Protocol (CDP) with ``websockets``.

No PyPI browser driver: those download a browser of their own, which this machine cannot. Chromium starts
with ``--remote-debugging-port=0`` and writes the port it chose to ``DevToolsActivePort`` in its profile;
one WebSocket to the browser then carries every page's commands in CDP's flat session mode (each message
names its ``sessionId``). A page collects what would show as an error in DevTools' console: console.error
calls, uncaught exceptions and the browser's own error entries (failed loads, CSP refusals).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import pathlib
import shutil
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import websockets

from testing.procs import Process

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What headless Chromium needs as root in a container, and nothing that talks to another host.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
COMMAND_TIMEOUT_S = 30.0


class CdpError(RuntimeError):
    """A CDP command answered with an error, or a page's script threw."""


class Connection:
    """One CDP WebSocket: numbered commands matched to their answers, events handed to their session."""

    def __init__(self, socket: websockets.ClientConnection):
        self._socket = socket
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: dict[str, Callable[[str, dict[str, Any]], None]] = {}
        self._reader = asyncio.create_task(self._read())

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        command_id = next(self._ids)
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        answer = asyncio.get_running_loop().create_future()
        self._pending[command_id] = answer
        await self._socket.send(json.dumps(message))
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            reply = await answer
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def listen(self, session: str, listener: Callable[[str, dict[str, Any]], None]) -> None:
        self._listeners[session] = listener

    async def _read(self) -> None:
        try:
            async for raw in self._socket:
                message = json.loads(raw)
                if "id" in message:
                    pending = self._pending.pop(message["id"], None)
                    if pending is not None and not pending.done():
                        pending.set_result(message)
                elif (listener := self._listeners.get(message.get("sessionId", ""))) is not None:
                    listener(message["method"], message.get("params", {}))
        except websockets.ConnectionClosed:
            pass
        finally:
            for pending in self._pending.values():
                if not pending.done():
                    pending.set_exception(CdpError("the browser closed the DevTools connection"))

    async def close(self) -> None:
        await self._socket.close()
        await self._reader


def _describe(args: list[dict[str, Any]]) -> str:
    return " ".join(str(a.get("value", a.get("description", a.get("type")))) for a in args)


class Page:
    """One tab, attached in flat mode; ``errors`` holds every console error it produced, ``requests`` the URL
    of every request it made (to show that a page talks to no other host)."""

    def __init__(self, connection: Connection, target_id: str, session: str):
        self._connection = connection
        self.target_id = target_id
        self.session = session
        self.errors: list[str] = []
        self.requests: list[str] = []
        self._loaded = asyncio.Event()
        connection.listen(session, self._event)

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired":
            self._loaded.set()
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.errors.append(f"console.{params['type']}: {_describe(params.get('args', []))}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(f"exception: {details.get('exception', {}).get('description') or details['text']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}".strip())

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return await self._connection.send(method, params, self.session)

    async def goto(self, url: str) -> None:
        """Loads ``url`` and returns after its load event (at once when only the fragment changed)."""
        self._loaded.clear()
        reply = await self.send("Page.navigate", {"url": url})
        if "errorText" in reply:
            raise CdpError(f"{url}: {reply['errorText']}")
        if "loaderId" not in reply:
            return  # a same-document navigation: no new load
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            await self._loaded.wait()

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited), or CdpError with the page's exception."""
        reply = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            raise CdpError(details.get("exception", {}).get("description") or details["text"])
        return reply["result"].get("value")

    async def wait_for(self, expression: str, within: float = 10.0) -> Any:
        """The first truthy value of ``expression``, checked every 50 ms for up to ``within`` seconds."""
        deadline = time.monotonic() + within
        value = None
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.05)
        body = await self.evaluate("document.body.innerText.slice(0, 1500)")
        raise TimeoutError(f"not true within {within} s: {expression}\nlast value: {value!r}\npage text:\n{body}")

    async def viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    async def press(self, key: str) -> None:
        """A key press on the focused element (``Enter``, ``Tab``, `` ``), as a keyboard user makes it."""
        codes = {"Enter": (13, "\r"), "Tab": (9, ""), " ": (32, " ")}
        code, text = codes[key]
        base = {"key": key, "code": "Space" if key == " " else key, "windowsVirtualKeyCode": code}
        await self.send("Input.dispatchKeyEvent", {"type": "keyDown", **base, **({"text": text} if text else {})})
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", **base})

    async def type_text(self, text: str) -> None:
        await self.send("Input.insertText", {"text": text})

    async def screenshot(self, path: pathlib.Path, *, full_page: bool = False) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = await self.send("Page.getLayoutMetrics")
            content = size["cssContentSize"]
            params |= {
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": content["width"], "height": content["height"], "scale": 1},
            }
        reply = await self.send("Page.captureScreenshot", params)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(reply["data"]))


class Browser:
    """A Chromium process with a fresh profile, and the DevTools connection to it."""

    def __init__(self, process: Process, connection: Connection):
        self.process = process
        self._connection = connection

    async def new_page(self, width: int = 1280, height: int = 800, *, mobile: bool = False) -> Page:
        target = await self._connection.send("Target.createTarget", {"url": "about:blank"})
        attached = await self._connection.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self._connection, target["targetId"], attached["sessionId"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            await page.send(f"{domain}.enable")
        await page.viewport(width, height, mobile=mobile)
        return page

    async def close_page(self, page: Page) -> None:
        await self._connection.send("Target.closeTarget", {"targetId": page.target_id})

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._connection.close()
        await asyncio.to_thread(self.process.stop)


def _devtools_url(profile: pathlib.Path) -> str:
    # Line 1: the port Chromium chose; line 2: the browser target's path.
    port, path = (profile / "DevToolsActivePort").read_text().split()[:2]
    return f"ws://127.0.0.1:{port}{path}"


@contextlib.asynccontextmanager
async def running_browser(log_dir: pathlib.Path, profile: pathlib.Path) -> AsyncIterator[Browser]:
    """Chromium with a new profile in ``profile`` (which must not exist yet), stopped on exit."""
    await asyncio.to_thread(profile.mkdir, parents=True)
    argv = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"]
    process = Process(f"chromium-{profile.name}", argv, log_dir)
    try:
        await asyncio.to_thread(process.wait_until, lambda: _devtools_url(profile).startswith("ws://"))
        socket = await websockets.connect(_devtools_url(profile), max_size=64 * 2**20, ping_interval=None)
    except BaseException:
        process.stop()
        raise
    browser = Browser(process, Connection(socket))
    try:
        yield browser
    finally:
        await browser.close()
