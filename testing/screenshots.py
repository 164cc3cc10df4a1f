"""``make screenshots``: every console page at 1280×800 and at a phone's 390×844, as PNGs in docs/screenshots/.

The stack is the console tests' (testing/console_stack.py) over a fresh Prometheus holding the metrics data
set, so the pictures show known data. Each page is captured once it says it is ready (desktop pages whole,
beyond the viewport; phone pages as the screen shows them), and the run fails if any page logged a console
error.

    python -m testing.screenshots [OUTPUT_DIR]
"""

from __future__ import annotations

import asyncio
import pathlib
import sys
import tempfile
import time

from testing import metrics_data
from testing.browser import Browser, Page, running_browser
from testing.console_stack import APPS, LOG_APP, ConsoleStack, running_console_stack
from testing.prometheus import running_prometheus

REPO = pathlib.Path(__file__).resolve().parents[1]
VIEWPORTS = {"desktop": (1280, 800, False), "phone": (390, 844, True)}
READY = "document.getElementById('main').dataset.ready === {page!r}"
# The app page is ready when its charts are drawn and the live stream is open with lines in view.
APP_READY = (
    "document.querySelector('.metrics')?.dataset.period === '24h'"
    " && document.querySelector('.stream-state')?.dataset.state === 'live'"
    " && document.querySelectorAll('.log-lines li').length > 0"
)
# Every app shown with its health, and by name (learnt from its metrics' serviceName after the first draw).
OVERVIEW_READY = (
    f"document.querySelectorAll('.app-row [data-health]').length === {len(APPS)}"
    f" && document.querySelectorAll('.app-row .app-name .muted').length === {len(APPS)}"
)


async def _shoot(page: Page, out: pathlib.Path, name: str, viewport: str) -> pathlib.Path:
    path = out / f"{name}-{viewport}.png"
    await page.evaluate("window.scrollTo(0, 0)")
    # A desktop page whole; a phone page as the phone shows it first (a whole one is a strip too long to read).
    await page.screenshot(path, full_page=viewport == "desktop")
    return path


async def _pages(browser: Browser, stack: ConsoleStack, out: pathlib.Path, viewport: str) -> list[pathlib.Path]:
    width, height, mobile = VIEWPORTS[viewport]
    page = await browser.new_page(width, height, mobile=mobile)
    shots = []
    await page.goto(stack.edge.url + "/")
    await page.wait_for(READY.format(page="signin"))
    shots.append(await _shoot(page, out, "signin", viewport))
    await page.goto(stack.signed_in_url())
    await page.wait_for(READY.format(page="overview"))
    await page.wait_for(OVERVIEW_READY)
    shots.append(await _shoot(page, out, "overview", viewport))
    await page.evaluate(f"location.hash = '#/apps/{LOG_APP}?period=24h'")
    await page.wait_for(APP_READY, within=20)
    shots.append(await _shoot(page, out, "app", viewport))
    await page.evaluate("location.hash = '#/alerts'")
    await page.wait_for(READY.format(page="alerts"))
    shots.append(await _shoot(page, out, "alerts", viewport))
    if page.errors:
        raise RuntimeError(f"console errors on the {viewport} pages: {page.errors}")
    await browser.close_page(page)
    return shots


async def main(out: pathlib.Path) -> None:
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="console-shots-") as temp:
        work = pathlib.Path(temp)
        started = time.monotonic()
        _model, series = metrics_data.dataset(int(time.time()))
        with running_prometheus(work / "prometheus", series) as prometheus:
            async with (
                running_console_stack(work, work, prometheus.url) as stack,
                running_browser(work, work / "profile") as browser,
            ):
                for viewport in VIEWPORTS:
                    for path in await _pages(browser, stack, out, viewport):
                        print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
        print(f"screenshots done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots"))
