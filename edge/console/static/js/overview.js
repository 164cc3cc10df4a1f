// The workspace overview: counts, the health mix, today's deploys and failed builds, the estimated cost,
// recent activity, and the workspace's apps (ListWorkspaceApps, plus any id added by hand), each with its badge.

import * as api from "./api.js";
import { h, replace } from "./dom.js";
import { count, dollars, duration, since, time, utc, withUnit } from "./format.js";
import { every } from "./poll.js";
import * as session from "./session.js";
import { healthBadge, notice, stat } from "./widgets.js";

const MIX = ["healthy", "degraded", "unhealthy", "unknown"];
// Apps whose GetAppHealth is asked on each refresh (instances, errors, latency, uptime); the others show the
// status ListWorkspaceApps gives. Keeps a large workspace within the per-key rate limit.
const DETAILED = 24;

function healthMix(summary) {
  const total = MIX.reduce((sum, k) => sum + (summary[k] || 0), 0);
  const bar = h("div", {
    class: "mix-bar",
    role: "img",
    "aria-label": MIX.map((k) => `${summary[k] || 0} ${k}`).join(", "),
  });
  for (const k of MIX) {
    if (summary[k]) bar.append(h("span", { class: `mix-${k}`, dataset: { share: String(summary[k] / total) } }));
  }
  // Widths through the CSSOM: the Content-Security-Policy forbids inline style attributes.
  for (const part of bar.children) part.style.flexGrow = part.dataset.share;
  const legend = h(
    "ul",
    { class: "mix-legend" },
    MIX.map((k) => h("li", {}, h("span", { class: `dot mix-${k}` }), `${count(summary[k] || 0)} ${k}`)),
  );
  return h("div", { class: "stat wide" }, h("div", { class: "stat-label" }, "Health"), bar, legend);
}

function stats(overview, openAlerts) {
  return [
    stat("Apps", count(overview.totalApps), h("div", { class: "stat-sub" }, `${count(overview.activeApps)} active`)),
    healthMix(overview.appHealthSummary || {}),
    stat(
      "Deploys today",
      count(overview.deploysToday),
      h("div", { class: "stat-sub" }, `${count(overview.totalDeploys)} in total`),
    ),
    stat("Failed builds today", count(overview.failedBuildsToday)),
    stat("Estimated cost", dollars(overview.estimatedMonthlyCost), h("div", { class: "stat-sub" }, "this month")),
    stat(
      "Open alerts",
      openAlerts === null ? "—" : count(openAlerts.length),
      h("a", { href: "#/alerts", class: "stat-sub" }, "See alerts"),
    ),
  ];
}

function activityItem(item) {
  const what = item.type === "alert" ? item.message : `${item.type} ${item.status || ""}`.trim();
  return h(
    "li",
    { class: `activity act-${item.type}` },
    h("span", { class: `badge kind-${item.type}` }, item.type),
    h("span", { class: "act-text" }, h("strong", {}, item.appName), " ", what),
    h("span", { class: "muted act-time" }, time(item.timestamp)),
  );
}

// A <div> per term: valid inside <dl>, and lets the facts wrap as blocks on a narrow screen.
const fact = (term, value, title) => h("div", {}, h("dt", {}, term), h("dd", { title }, value));

function appRow(id, result, names, onRemove) {
  const name = names[id] || id;
  const link = h("a", { href: `#/apps/${encodeURIComponent(id)}` }, name);
  // Only an id added by hand can be removed: the workspace's own apps come back with the next list.
  const remove = onRemove
    ? h(
        "button",
        { type: "button", class: "link small", "aria-label": `Stop watching ${id}`, onclick: () => onRemove(id) },
        "Remove",
      )
    : null;
  if (result.status === "rejected") {
    return h(
      "li",
      { class: "app-row", dataset: { app: id } },
      h("div", { class: "app-name" }, link, h("span", { class: "muted" }, id)),
      h("span", { class: "notice error small" }, result.reason.message),
      remove,
    );
  }
  const health = result.value;
  return h(
    "li",
    { class: "app-row", dataset: { app: id, health: health.status } },
    h("div", { class: "app-name" }, link, name !== id ? h("span", { class: "muted" }, id) : null),
    healthBadge(health.status),
    h(
      "dl",
      { class: "app-facts" },
      fact("Instances", count(health.instanceCount)),
      fact("Errors", withUnit(health.errorRate, "%")),
      fact("Latency", withUnit(health.avgLatencyMs, "ms")),
      fact("Uptime", duration(health.uptime)),
      fact("Checked", since(health.lastCheckedAt), health.lastCheckedAt ? utc(health.lastCheckedAt) : undefined),
    ),
    remove,
  );
}

function addAppForm(onAdd) {
  const input = h("input", {
    id: "add-app",
    name: "app",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "app id",
  });
  return h(
    "form",
    {
      class: "add-app",
      onsubmit: (event) => {
        event.preventDefault();
        onAdd(input.value.trim());
        input.value = "";
      },
    },
    h("label", { for: "add-app" }, "Watch an app by id"),
    input,
    h("button", { type: "submit" }, "Add"),
  );
}

// The control that has the focus inside an app row or a summary card, as a function that focuses the same
// control (same app, same kind, same text) once the page is redrawn; null when the focus is elsewhere.
function focusedControl(root) {
  const active = document.activeElement;
  if (!active || active === document.body || !root.contains(active)) return null;
  const row = active.closest("[data-app]");
  const scope = row ? `[data-app="${CSS.escape(row.dataset.app)}"] ` : "";
  const tag = active.tagName.toLowerCase();
  const text = active.textContent;
  return () => {
    const again = [...root.querySelectorAll(`${scope}${tag}`)].find((el) => el.textContent === text);
    again?.focus();
  };
}

export function overviewPage(main) {
  const summary = h("section", { class: "stats", "aria-label": "Workspace summary" });
  const apps = h("ul", { class: "apps" });
  const appsNote = h("p", { class: "muted small" });
  const activity = h("ol", { class: "activity-list" });
  const problem = h("div");
  replace(
    main,
    h("h1", {}, "Overview"),
    problem,
    summary,
    h(
      "div",
      { class: "columns" },
      h(
        "section",
        { class: "card", "aria-labelledby": "apps-title" },
        h("h2", { id: "apps-title" }, "Apps"),
        apps,
        appsNote,
        addAppForm(add),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "activity-title" },
        h("h2", { id: "activity-title" }, "Recent activity"),
        activity,
      ),
    ),
  );

  function add(id) {
    if (id) session.addApp(id);
    poll.now();
  }

  function remove(id) {
    session.removeApp(id);
    poll.now();
  }

  let shown = "";
  async function refresh() {
    const [overview, open, listed] = await Promise.allSettled([
      api.overview(),
      api.alerts({ resolved: false, limit: 500 }),
      api.workspaceApps(),
    ]);
    if (overview.status === "rejected") {
      replace(problem, notice(overview.reason));
      return;
    }
    const summaries = new Map(listed.status === "fulfilled" ? listed.value.apps.map((a) => [a.id, a]) : []);
    for (const app of summaries.values()) session.rememberName(app.id, app.name);
    const ids = [...summaries.keys(), ...session.apps().filter((id) => !summaries.has(id))];
    const healths = await Promise.allSettled(
      ids.map((id, i) => (i < DETAILED || !summaries.has(id) ? api.health(id) : Promise.resolve(summaries.get(id)))),
    );
    // Re-render only on a change; each evaluation moves lastCheckedAt, so a redraw also puts the keyboard focus
    // back on the same control of the same app.
    const signature = JSON.stringify([ids, overview, open, healths]);
    if (signature === shown) return;
    shown = signature;
    const focused = focusedControl(main);
    const alerts = open.status === "fulfilled" ? open.value : null;
    for (const alert of alerts || []) session.rememberName(alert.appId, alert.appName);
    replace(problem);
    replace(summary, stats(overview.value, alerts));
    const names = session.names();
    replace(
      apps,
      ids.length
        ? ids.map((id, i) => appRow(id, healths[i], names, summaries.has(id) ? null : remove))
        : h("li", { class: "muted" }, "No app in this workspace yet."),
    );
    appsNote.textContent =
      ids.length > DETAILED ? `Instances, errors and latency are shown for the first ${DETAILED} apps.` : "";
    const items = overview.value.recentActivity || [];
    replace(activity, items.length ? items.map(activityItem) : h("li", { class: "muted" }, "Nothing yet."));
    focused?.();
    main.dataset.ready = "overview";
  }

  // An id added by hand and not in the workspace's list has no name from it; its metrics carry its
  // serviceName. Asked once per app and page (then kept in localStorage), one call at a time.
  const asked = new Set();
  let naming = false;
  let left = false;
  async function learnNames(ids) {
    const unnamed = ids.filter((id) => !(id in session.names()) && !asked.has(id));
    if (naming || !unnamed.length) return;
    naming = true;
    for (const id of unnamed) {
      if (left) return;
      asked.add(id);
      const reply = await api.metrics(id, "1h").catch(() => null);
      if (reply?.serviceName) session.rememberName(id, reply.serviceName);
    }
    naming = false;
    shown = "";
    if (!left) poll.now();
  }

  const poll = every(15000, async () => {
    await refresh();
    learnNames(session.apps());
  });
  return () => {
    left = true;
    poll.stop();
  };
}
