"""The console's browser tests: one stack per session over the backfilled Prometheus (tests/conftest.py),
one headless Chromium per module, a fresh tab (so a fresh sessionStorage) per test."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from testing.browser import Browser, Page, running_browser
from testing.console_stack import ConsoleStack, running_console_stack
from testing.metrics_data import Backfilled

READY = "document.getElementById('main').dataset.ready === {page!r}"


@pytest.fixture(scope="session")
async def console_stack(
    backfilled: Backfilled, log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ConsoleStack]:
    async with running_console_stack(log_dir, tmp_path_factory.mktemp("console"), backfilled.prometheus.url) as stack:
        yield stack


@pytest.fixture(scope="module")
async def browser(log_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    async with running_browser(log_dir, tmp_path_factory.mktemp("chromium") / "profile") as running:
        yield running


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    tab = await browser.new_page()
    yield tab
    await browser.close_page(tab)


async def signed_in(page: Page, stack: ConsoleStack, hash_path: str = "#/", ready: str = "overview") -> None:
    """Opens the `make run` style URL, then ``hash_path``; returns once that page says it is ready."""
    await page.goto(stack.signed_in_url())
    await page.wait_for(READY.format(page="overview"))
    if hash_path != "#/":
        await page.evaluate(f"location.hash = {hash_path!r}")
        await page.wait_for(READY.format(page=ready))
