// The live log view of one app: a first page from ListAppLogs, then the SSE stream on top of it, newest
// first; a severity filter, pause/resume, "load older" through nextPageToken, and a stream that reconnects
// by itself (EventSource's own retry with Last-Event-ID, or ours with the last cursor) and says so.

import * as api from "./api.js";
import { ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { time } from "./format.js";
import { explain, select, severityBadge } from "./widgets.js";

const SEVERITIES = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const PAGE = 50;
const MAX_LINES = 2000; // lines kept on screen; older ones are dropped from the bottom
const MAX_HELD = 1000; // lines kept while paused
const MAX_RETRIES = 8; // our own reconnections in a row before giving up (1 s, 2 s, … 30 s apart)
const HISTORY_MS = 24 * 3600 * 1000; // "load older" pages back through the last day
const STATES = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  "catching-up": "Catching up…",
  paused: "Paused",
  stopped: "Disconnected",
};

function line(entry) {
  return h(
    "li",
    { class: `log lvl-${entry.severity.toLowerCase()}`, dataset: { severity: entry.severity } },
    time(entry.timestamp, { clock: true }),
    severityBadge(entry.severity),
    h("span", { class: "msg" }, entry.message),
  );
}

export function liveLogs(appId) {
  let severity = "";
  let source = null;
  let cursor = "";
  let lostAt = null; // when the stream broke, until it is caught up again
  let reopenedAt = 0; // when it reopened: entries older than this are the replay of what was missed
  let replayed = 0;
  let streamSince = 0; // when the current stream first opened: what a cursor-less reconnection must fetch from
  let retries = 0;
  let retryTimer = null;
  let catchUpTimer = null;
  let paused = false;
  let held = [];
  let heldDropped = 0;
  let listParams = null;
  let olderToken = null;
  let closed = false;
  const seen = new Set();

  const status = h("span", { class: "stream-state", role: "status", dataset: { state: "connecting" } });
  const pause = h("button", { type: "button", "aria-pressed": "false", onclick: togglePause }, "Pause");
  const retry = h("button", { type: "button", hidden: true, onclick: reconnectByHand }, "Reconnect");
  // Focusable, so that the keyboard can scroll it.
  const list = h("ol", { class: "log-lines", tabindex: "0", "aria-label": "Log lines, newest first" });
  const older = h("button", { type: "button", class: "older", onclick: loadOlder }, "Load older");
  const olderNote = h("span", { class: "muted" });
  const message = h("div", { class: "log-message" });
  const filter = select(
    "Severity",
    "severity",
    [["", "All severities"], ...SEVERITIES.map((s) => [s, s])],
    "",
    (value) => {
      severity = value;
      restart();
    },
  );
  const element = h(
    "section",
    { class: "card logs", "aria-labelledby": "logs-title" },
    h("div", { class: "card-head" }, h("h2", { id: "logs-title" }, "Logs"), status),
    h("div", { class: "toolbar" }, filter, pause, retry),
    message,
    list,
    h("div", { class: "toolbar" }, older, olderNote),
  );

  function setState(state, detail = "") {
    status.dataset.state = state;
    status.textContent = detail ? `${STATES[state]} ${detail}` : STATES[state];
  }

  function showState() {
    if (paused) setState("paused", held.length ? `(${held.length + heldDropped} new)` : "");
  }

  const keyOf = (entry) => `${entry.timestamp}|${entry.severity}|${entry.message}`;

  function remember(entry) {
    const key = keyOf(entry);
    if (seen.has(key)) return false;
    seen.add(key);
    if (seen.size > MAX_LINES * 2) seen.delete(seen.values().next().value);
    return true;
  }

  function prepend(entries) {
    const fresh = entries.filter(remember);
    if (!fresh.length) return;
    list.prepend(...fresh.reverse().map(line));
    let dropped = false;
    while (list.children.length > MAX_LINES) {
      list.lastElementChild.remove();
      dropped = true;
    }
    if (dropped && olderToken) {
      olderToken = null;
      older.disabled = true;
      olderNote.textContent = "Older lines were dropped from view; change the filter to page from the top.";
    }
  }

  function arrived(entry) {
    if (paused) {
      if (held.length < MAX_HELD) held.push(entry);
      else heldDropped += 1;
      showState();
      return;
    }
    prepend([entry]);
  }

  function togglePause() {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (paused) {
      showState();
      return;
    }
    prepend(held);
    if (heldDropped) list.prepend(h("li", { class: "log gap" }, `${heldDropped} lines were not kept while paused`));
    held = [];
    heldDropped = 0;
    setState(source && source.readyState === EventSource.OPEN ? (lostAt ? "catching-up" : "live") : "reconnecting");
  }

  function caughtUp() {
    lostAt = null;
    clearTimeout(catchUpTimer);
    if (!paused) setState("live");
  }

  // Replayed entries come at once after a reconnection; a moment without one means the stream is current.
  function expectReplay() {
    clearTimeout(catchUpTimer);
    catchUpTimer = setTimeout(caughtUp, 1500);
  }

  function opened() {
    retries = 0;
    retry.hidden = true;
    replace(message);
    if (lostAt === null) {
      streamSince ||= Date.now();
      return paused ? showState() : setState("live");
    }
    reopenedAt = Date.now();
    replayed = 0;
    if (!paused) setState("catching-up");
    expectReplay();
    if (!cursor) backfill(reopenedAt);
  }

  function countReplayed(entries) {
    replayed += entries.length;
    status.dataset.replayed = String(Number(status.dataset.replayed || 0) + entries.length);
    if (!paused && lostAt !== null) setState("catching-up", `(${replayed} missed lines)`);
  }

  // A stream that broke before its first message has no cursor to resume from, so the server cannot replay
  // what was missed: fetch it as a page instead (what the page already shows is skipped).
  async function backfill(until) {
    const params = { severity, limit: 1000, startTime: new Date(streamSince - 2000).toISOString() };
    params.endTime = new Date(until + 1000).toISOString();
    try {
      const page = await api.logs(appId, params);
      const missed = page.logs
        .slice()
        .reverse()
        .filter((entry) => !seen.has(keyOf(entry)));
      countReplayed(missed);
      missed.forEach(arrived);
    } catch (error) {
      replace(message, h("p", { class: "notice error" }, explain(error)));
    }
  }

  function received(event) {
    cursor = event.lastEventId || cursor;
    const entry = JSON.parse(event.data);
    if (lostAt !== null) {
      if (Date.parse(entry.timestamp) >= reopenedAt) caughtUp();
      else {
        countReplayed([entry]);
        expectReplay();
      }
    }
    arrived(entry);
  }

  function gap(event) {
    cursor = event.lastEventId || cursor;
    const { droppedEntries, reason } = JSON.parse(event.data);
    const count = Number(droppedEntries) ? `${droppedEntries} lines` : "Some lines";
    list.prepend(h("li", { class: "log gap" }, `${count} skipped (${String(reason).replace("_", " ")})`));
  }

  function ended(event) {
    cursor = event.lastEventId || cursor;
    const { reason } = JSON.parse(event.data);
    close();
    if (reason === "revoked_key") {
      stop("The API key was revoked; the stream ended.");
      return api.health(appId).catch(() => {}); // a 401 here signs the console out
    }
    lostAt = Date.now();
    reopen(true); // a planned end (lifetime, shutdown): resume from the cursor at once
  }

  function failed(event) {
    if (closed) return;
    if (event.data) {
      // An in-band `event: error`: the same error body a request gets; the server ended the stream.
      const { error } = JSON.parse(event.data);
      close();
      if (error.code === 401) return api.health(appId).catch(() => {});
      replace(
        message,
        h("p", { class: "notice error" }, explain(new ApiError(error.code, error.status, error.message))),
      );
    }
    lostAt ??= Date.now();
    if (source && source.readyState === EventSource.CONNECTING) {
      setState("reconnecting"); // EventSource retries by itself, sending Last-Event-ID
      return;
    }
    close();
    reopen(false);
  }

  function open() {
    const params = { severity };
    if (cursor) params.cursor = cursor;
    source = new EventSource(api.streamUrl(appId, params));
    source.onopen = opened;
    source.onmessage = received;
    source.addEventListener("gap", gap);
    source.addEventListener("end", ended);
    source.addEventListener("error", failed);
  }

  function close() {
    if (source) source.close();
    source = null;
  }

  function stop(text) {
    setState("stopped");
    retry.hidden = false;
    replace(message, h("p", { class: "notice error", role: "alert" }, text));
  }

  // Our own reconnection, for when EventSource gave up (an HTTP error, or the server's `end`): first an
  // ordinary call, so that a revoked key signs the console out instead of retrying forever.
  function reopen(now) {
    clearTimeout(retryTimer);
    if (closed) return;
    if (retries >= MAX_RETRIES) return stop("The live stream could not be reopened.");
    setState("reconnecting");
    const delay = now ? 0 : Math.min(30000, 1000 * 2 ** retries);
    retries += 1;
    retryTimer = setTimeout(async () => {
      try {
        await api.health(appId);
      } catch (error) {
        if (error.httpStatus === 401 || error.httpStatus === 403 || error.httpStatus === 404) {
          return stop(explain(error));
        }
      }
      if (!closed && !source) open();
    }, delay);
  }

  function reconnectByHand() {
    retries = 0;
    lostAt ??= Date.now();
    reopen(true);
  }

  async function loadFirst() {
    listParams = { limit: PAGE, startTime: new Date(Date.now() - HISTORY_MS).toISOString(), severity };
    olderToken = null;
    older.disabled = true;
    olderNote.textContent = "";
    const params = listParams;
    try {
      const page = await api.logs(appId, params);
      if (params !== listParams) return; // the filter changed meanwhile
      list.append(...page.logs.filter(remember).map(line));
      setOlder(page.nextPageToken);
    } catch (error) {
      replace(message, h("p", { class: "notice error" }, explain(error)));
    }
  }

  function setOlder(token) {
    olderToken = token || null;
    older.disabled = !olderToken;
    olderNote.textContent = olderToken ? "" : "No older lines in the last 24 hours.";
  }

  async function loadOlder() {
    if (!olderToken) return;
    older.disabled = true;
    const params = listParams;
    try {
      const page = await api.logs(appId, { ...params, pageToken: olderToken });
      if (params !== listParams) return;
      list.append(...page.logs.filter(remember).map(line));
      setOlder(page.nextPageToken);
    } catch (error) {
      older.disabled = false;
      replace(message, h("p", { class: "notice error" }, explain(error)));
    }
  }

  function restart() {
    close();
    clearTimeout(retryTimer);
    clearTimeout(catchUpTimer);
    cursor = "";
    streamSince = 0;
    lostAt = null;
    retries = 0;
    held = [];
    heldDropped = 0;
    seen.clear();
    list.replaceChildren();
    replace(message);
    setState("connecting");
    open(); // the stream first, then the page before it: a line logged in between is in one or the other
    loadFirst();
  }

  restart();
  return {
    element,
    dispose() {
      closed = true;
      close();
      clearTimeout(retryTimer);
      clearTimeout(catchUpTimer);
    },
  };
}
