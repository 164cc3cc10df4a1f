// Alerts: the open and the resolved ones, filtered by app, severity and type, with a resolve button. The
// page re-reads alerts and the watched apps' health every few seconds and redraws when either changed.

import * as api from "./api.js";
import { h, replace } from "./dom.js";
import { count, time } from "./format.js";
import { every } from "./poll.js";
import * as session from "./session.js";
import { notice, select } from "./widgets.js";

const TYPES = {
  high_cpu: "High CPU",
  high_memory: "High memory",
  high_error_rate: "High error rate",
  high_latency: "High latency",
};
const REFRESH_MS = 5000;

function row(alert, onResolve) {
  const resolve = alert.resolved
    ? null
    : h(
        "button",
        {
          type: "button",
          class: "resolve",
          "aria-label": `Resolve alert ${alert.id}: ${alert.message}`,
          onclick: (event) => onResolve(alert, event.currentTarget),
        },
        "Resolve",
      );
  return h(
    "li",
    { class: "alert-row", dataset: { alertId: alert.id, state: alert.resolved ? "resolved" : "open" } },
    h("span", { class: `badge sev-${alert.severity}` }, alert.severity),
    h(
      "div",
      { class: "alert-main" },
      h(
        "div",
        {},
        h("strong", {}, TYPES[alert.type] || alert.type),
        " · ",
        h("a", { href: `#/apps/${encodeURIComponent(alert.appId)}` }, alert.appName || alert.appId),
      ),
      h("div", { class: "alert-message" }, alert.message),
      h(
        "div",
        { class: "muted small" },
        "Triggered ",
        time(alert.triggeredAt),
        alert.resolved ? [" · resolved ", time(alert.resolvedAt)] : null,
      ),
    ),
    resolve,
  );
}

export function alertsPage(main, params) {
  const filters = { appId: params.get("app") || "", severity: "", type: "" };
  const status = h("p", { class: "sr-status", role: "status" });
  const problem = h("div");
  const openTitle = h("h2", { id: "open-title", tabindex: "-1" }, "Open");
  const openList = h("ul", { class: "alert-list", dataset: { list: "open" } });
  const resolvedTitle = h("h2", { id: "resolved-title" }, "Resolved");
  const resolvedList = h("ul", { class: "alert-list", dataset: { list: "resolved" } });
  const filterBar = h("div", { class: "toolbar filters" });
  let shown = "";
  let filterKey = null;
  let last = { open: [], resolved: [] };

  replace(
    main,
    h("h1", {}, "Alerts"),
    filterBar,
    status,
    problem,
    h("section", { class: "card", "aria-labelledby": "open-title" }, openTitle, openList),
    h("section", { class: "card", "aria-labelledby": "resolved-title" }, resolvedTitle, resolvedList),
  );

  function drawFilters() {
    const apps = new Set([...session.apps(), ...last.open.map((a) => a.appId), ...last.resolved.map((a) => a.appId)]);
    const names = session.names();
    const key = [...apps].sort().join();
    if (key === filterKey) return; // redrawn only when the apps change, so a focused select keeps its focus
    filterKey = key;
    replace(
      filterBar,
      select(
        "App",
        "app",
        [["", "All apps"], ...[...apps].sort().map((id) => [id, names[id] || id])],
        filters.appId,
        (v) => {
          filters.appId = v;
          shown = "";
          poll.now();
        },
      ),
      select(
        "Severity",
        "severity",
        [
          ["", "All"],
          ["warning", "Warning"],
          ["critical", "Critical"],
        ],
        filters.severity,
        (v) => {
          filters.severity = v;
          draw();
        },
      ),
      select("Type", "type", [["", "All"], ...Object.entries(TYPES)], filters.type, (v) => {
        filters.type = v;
        draw();
      }),
    );
  }

  const wanted = (alert) =>
    (!filters.severity || alert.severity === filters.severity) && (!filters.type || alert.type === filters.type);

  function draw() {
    const open = last.open.filter(wanted);
    const resolved = last.resolved.filter(wanted);
    openTitle.textContent = `Open (${count(open.length)})`;
    resolvedTitle.textContent = `Resolved (${count(resolved.length)})`;
    replace(
      openList,
      open.length ? open.map((a) => row(a, resolveOne)) : h("li", { class: "muted" }, "No open alert."),
    );
    replace(
      resolvedList,
      resolved.length ? resolved.map((a) => row(a, resolveOne)) : h("li", { class: "muted" }, "No resolved alert."),
    );
  }

  async function resolveOne(alert, button) {
    button.disabled = true;
    button.textContent = "Resolving…";
    try {
      await api.resolve(alert.id);
      status.textContent = `Resolved: ${alert.message}`;
      await refresh();
      openTitle.focus();
    } catch (error) {
      button.disabled = false;
      button.textContent = "Resolve";
      replace(problem, notice(error));
    }
  }

  async function refresh() {
    const appId = filters.appId || undefined;
    const [open, resolved, ...healths] = await Promise.all([
      api.alerts({ resolved: false, appId, limit: 200 }),
      api.alerts({ resolved: true, appId, limit: 50 }),
      ...session.apps().map((id) =>
        api.health(id).then(
          (x) => x.status,
          () => "error",
        ),
      ),
    ]);
    replace(problem);
    // Health is part of the signature: an app changing state usually comes with an alert firing or recovering.
    const signature = JSON.stringify([open, resolved, healths]);
    if (signature !== shown) {
      shown = signature;
      last = { open, resolved };
      for (const alert of [...open, ...resolved]) session.rememberName(alert.appId, alert.appName);
      drawFilters();
      draw();
    }
    main.dataset.ready = "alerts";
  }

  const poll = every(REFRESH_MS, async () => {
    try {
      await refresh();
    } catch (error) {
      replace(problem, notice(error));
    }
  });
  return poll.stop;
}
