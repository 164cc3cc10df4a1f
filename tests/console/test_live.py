"""What moves: live log lines (within 2 s of reaching Loki), pause/resume, paging back, the severity filter,
a stream that reconnects and catches up after its edge went away, and alerts resolved or fired while shown."""

from __future__ import annotations

import asyncio
import pathlib
import secrets
import shutil
import time

import httpx
import pytest

from testing.browser import Page
from testing.console_stack import LOG_APP, ConsoleStack
from testing.edge import EdgeProcess
from testing.procs import BIN, Process
from tests.console.conftest import READY, signed_in

pytestmark = [
    pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (scripts/system-deps.sh)"),
    pytest.mark.timeout(180),  # generous: the first test also waits for the stack and the browser on 2 busy cores
]

STATE = "document.querySelector('.stream-state').dataset.state"
LINES = "[...document.querySelectorAll('.log-lines li .msg')].map(m => m.textContent)"


async def _following(stack: ConsoleStack, within: float = 10.0) -> None:
    """Until the server has a Loki tail open: it then follows the app's logs (one tail per app, shared by every
    stream of it, so a tail kept from an earlier test serves this page as well)."""
    deadline = time.monotonic() + within
    while (await asyncio.to_thread(stack.loki.stats))["tails_open"] < 1:
        assert time.monotonic() < deadline, "the server opened no Loki tail"
        await asyncio.sleep(0.05)


async def _live_app_page(page: Page, stack: ConsoleStack, base: str | None = None) -> None:
    url = stack.signed_in_url()
    await page.goto(url if base is None else url.replace(stack.edge.url, base))
    await page.wait_for(READY.format(page="overview"))
    await page.evaluate(f"location.hash = '#/apps/{LOG_APP}'")
    await page.wait_for(f"{STATE} === 'live'")
    await _following(stack)


async def test_a_line_pushed_to_loki_is_shown_within_2_s(page: Page, console_stack: ConsoleStack) -> None:
    await _live_app_page(page, console_stack)
    text = f"order {secrets.token_hex(4)} shipped"
    pushed = time.monotonic()
    await asyncio.to_thread(console_stack.push_logs, LOG_APP, [("warning", text)])
    await page.wait_for(f"{LINES}.includes({text!r})", within=2.0)
    elapsed = time.monotonic() - pushed
    first = await page.evaluate("document.querySelector('.log-lines li').dataset.severity")
    assert first == "WARNING"
    assert elapsed < 2.0
    assert page.errors == []


async def test_pause_holds_new_lines_until_resume(page: Page, console_stack: ConsoleStack) -> None:
    await _live_app_page(page, console_stack)
    await page.evaluate("[...document.querySelectorAll('.logs button')].find(b => b.textContent === 'Pause').click()")
    text = f"held {secrets.token_hex(4)}"
    await asyncio.to_thread(console_stack.push_logs, LOG_APP, [("info", text)])
    await page.wait_for("document.querySelector('.stream-state').textContent.includes('1 new')", within=5)
    assert text not in await page.evaluate(LINES)
    await page.evaluate("[...document.querySelectorAll('.logs button')].find(b => b.textContent === 'Resume').click()")
    await page.wait_for(f"{LINES}.includes({text!r})", within=2)
    assert await page.evaluate(STATE) == "live"


async def test_load_older_pages_back_with_the_next_page_token(page: Page, console_stack: ConsoleStack) -> None:
    await _live_app_page(page, console_stack)
    await page.wait_for(f"{LINES}.length >= 50")
    first_page = await page.evaluate(LINES)
    oldest = await page.evaluate("[...document.querySelectorAll('.log-lines time')].at(-1).dateTime")
    await page.evaluate("document.querySelector('button.older').focus()")
    await page.press("Enter")
    await page.wait_for(f"{LINES}.length > {len(first_page)}")
    older = await page.evaluate("[...document.querySelectorAll('.log-lines time')].map(t => t.dateTime)")
    added = older[len(first_page) :]
    assert added and all(stamp <= oldest for stamp in added)
    assert page.errors == []


async def test_the_severity_filter_shows_only_that_severity(page: Page, console_stack: ConsoleStack) -> None:
    await _live_app_page(page, console_stack)
    await page.evaluate(
        "const s = document.querySelector('select[name=severity]'); s.value = 'ERROR';"
        " s.dispatchEvent(new Event('change'))"
    )
    await page.wait_for(f"{STATE} === 'live' && {LINES}.length > 0")
    severities = await page.evaluate("[...document.querySelectorAll('.log-lines li.log')].map(l => l.dataset.severity)")
    assert set(severities) == {"ERROR"}
    text = f"failed {secrets.token_hex(4)}"
    await asyncio.to_thread(console_stack.push_logs, LOG_APP, [("info", "not shown"), ("error", text)])
    await page.wait_for(f"{LINES}.includes({text!r})", within=2)
    assert "not shown" not in await page.evaluate(LINES)


def _edge_at(log_dir: pathlib.Path, upstream: str, addr: str, env: dict[str, str]) -> Process:
    """``monitoring-edge`` on a given address (EdgeProcess always picks a new port); the caller stops it."""
    settings = {"MONITORING_EDGE_ADDR": addr, "MONITORING_UPSTREAM": upstream, **env}
    return Process(f"monitoring-edge-again-{addr.rsplit(':', 1)[1]}", [str(BIN / "monitoring-edge")], log_dir, settings)


async def test_the_stream_reconnects_by_itself_and_shows_that_it_catches_up(
    page: Page, console_stack: ConsoleStack, log_dir: pathlib.Path
) -> None:
    # An edge of its own, stopped and started again on the same address while the page stays open.
    retry = {"MONITORING_EDGE_SSE_RETRY_MS": "200", "MONITORING_EDGE_SHUTDOWN_GRACE": "0.5"}
    first = EdgeProcess(log_dir, console_stack.server.addr, retry)
    second = None
    try:
        await _live_app_page(page, console_stack, first.url)
        await asyncio.to_thread(first.stop)
        await page.wait_for(f"{STATE} === 'reconnecting'")
        missed = f"missed {secrets.token_hex(4)}"
        await asyncio.to_thread(console_stack.push_logs, LOG_APP, [("info", missed)])
        second = _edge_at(log_dir, console_stack.server.addr, first.addr, retry)
        await page.wait_for(f"{LINES}.includes({missed!r})", within=15)
        assert int(await page.evaluate("document.querySelector('.stream-state').dataset.replayed")) >= 1
        await page.wait_for(f"{STATE} === 'live'", within=5)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    # Chromium reports the refused reconnections (the edge was down) as network errors; nothing else.
    assert [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e] == []


def _resolved_by_api(stack: ConsoleStack, alert_id: str) -> bool:
    url = f"{stack.edge.url}/api/v1/workspaces/{stack.workspace_id}/monitoring/alerts?resolved=true&limit=500"
    alerts = httpx.get(url, headers={"authorization": f"Bearer {stack.key}"}, timeout=10).json()
    return any(a["id"] == alert_id for a in alerts)


async def test_resolve_moves_the_alert_to_the_resolved_list(page: Page, console_stack: ConsoleStack) -> None:
    alert_id = f"alr_console_{secrets.token_hex(4)}"
    await asyncio.to_thread(
        console_stack.insert_alert, alert_id, "app_recovered", alert_type="high_cpu", message="CPU over 80%"
    )
    await signed_in(page, console_stack, "#/alerts", "alerts")
    row = f"""document.querySelector('[data-alert-id="{alert_id}"]')"""
    await page.wait_for(f"{row}?.dataset.state === 'open'")
    await page.evaluate(f"{row}.querySelector('button.resolve').focus()")
    await page.press("Enter")
    await page.wait_for(f"{row}?.dataset.state === 'resolved'", within=5)
    assert await page.evaluate(f"{row}.closest('[data-list]').dataset.list") == "resolved"
    assert await asyncio.to_thread(_resolved_by_api, console_stack, alert_id)
    assert page.errors == []


async def test_an_alert_that_fires_while_the_list_is_shown_appears_without_a_reload(
    page: Page, console_stack: ConsoleStack
) -> None:
    await signed_in(page, console_stack, "#/alerts", "alerts")
    alert_id = f"alr_console_{secrets.token_hex(4)}"
    await asyncio.to_thread(
        console_stack.insert_alert, alert_id, "app_some_down", alert_type="high_cpu", message="CPU over 80%"
    )
    row = f"""document.querySelector('[data-alert-id="{alert_id}"]')"""
    await page.wait_for(f"{row}?.dataset.state === 'open'", within=10)
    assert page.errors == []
