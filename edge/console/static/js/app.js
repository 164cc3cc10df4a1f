// One app: its health (badge, reasons, uptime, instances, last check), the six metrics as charts over a
// chosen period with current/avg/max, and its live logs.

import * as api from "./api.js";
import { lineChart } from "./charts.js";
import { h, replace } from "./dom.js";
import { count, duration, time, withUnit } from "./format.js";
import { liveLogs } from "./logs.js";
import { every } from "./poll.js";
import * as session from "./session.js";
import { PERIODS, healthBadge, notice, segmented } from "./widgets.js";

const METRICS = [
  ["cpu", "CPU", "#2f6fdf"],
  ["memory", "Memory", "#8a4fd6"],
  ["requestCount", "Requests", "#1c9a6c"],
  ["requestLatency", "Latency", "#d9822b"],
  ["errorRate", "Error rate", "#d64550"],
  ["instanceCount", "Instances", "#3b8ea5"],
];

function healthCard(health) {
  const reasons = health.reasons || [];
  return [
    h("div", { class: "card-head" }, h("h2", { id: "health-title" }, "Health"), healthBadge(health.status)),
    reasons.length
      ? h(
          "ul",
          { class: "reasons" },
          reasons.map((r) => h("li", {}, r)),
        )
      : h("p", { class: "muted" }, health.status === "healthy" ? "Every rule passes." : "No reason given."),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Uptime"),
      h("dd", {}, duration(health.uptime)),
      h("dt", {}, "Instances"),
      h("dd", {}, count(health.instanceCount)),
      h("dt", {}, "Error rate (5 min)"),
      h("dd", {}, withUnit(health.errorRate, "%")),
      h("dt", {}, "Latency (5 min)"),
      h("dd", {}, withUnit(health.avgLatencyMs, "ms")),
      h("dt", {}, "Last deployed"),
      h("dd", {}, time(health.lastDeployedAt)),
      h("dt", {}, "Last check"),
      h("dd", {}, time(health.lastCheckedAt)),
    ),
  ];
}

function metricCard(key, title) {
  const chart = h("div", { class: "chart", dataset: { metric: key } });
  const figures = h("dl", { class: "figures" });
  const unit = h("span", { class: "unit" });
  const card = h("figure", { class: "card metric" }, h("figcaption", {}, h("h3", {}, title), unit), figures, chart);
  return { card, chart, figures, unit };
}

function showFigures(slot, series) {
  slot.unit.textContent = series.unit;
  replace(
    slot.figures,
    ["current", "avg", "max"].map((k) => [
      h("dt", {}, k),
      h("dd", { dataset: { figure: k } }, withUnit(series[k], series.unit)),
    ]),
  );
}

export function appPage(main, appId, params) {
  let period = PERIODS.includes(params.get("period")) ? params.get("period") : "24h";
  const title = h("h1", {}, session.names()[appId] || appId);
  const subtitle = h("p", { class: "muted" }, appId);
  const healthSection = h(
    "section",
    { class: "card health", "aria-labelledby": "health-title" },
    h("h2", { id: "health-title" }, "Health"),
  );
  const slots = Object.fromEntries(METRICS.map(([key, label]) => [key, metricCard(key, label)]));
  const grid = h(
    "div",
    { class: "metric-grid" },
    Object.values(slots).map((s) => s.card),
  );
  const metricsProblem = h("div");
  const metricsSection = h("section", { class: "metrics", "aria-labelledby": "metrics-title" });
  const logs = liveLogs(appId);
  let removeCharts = [];
  let loading = null;

  const periods = () =>
    segmented("Period", PERIODS, period, (value) => {
      period = value;
      history.replaceState(null, "", `#/apps/${encodeURIComponent(appId)}?period=${value}`);
      replace(selector, periods());
      selector.querySelector(`[data-value="${value}"]`).focus();
      loadMetrics();
    });
  const selector = h("div", {}, periods());
  replace(
    metricsSection,
    h("div", { class: "card-head" }, h("h2", { id: "metrics-title" }, "Metrics"), selector),
    metricsProblem,
    grid,
  );
  replace(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Overview"), " / ", appId),
    h("div", { class: "title-row" }, title, subtitle),
    h("div", { class: "app-layout" }, healthSection, metricsSection),
    logs.element,
  );

  async function loadHealth() {
    try {
      replace(healthSection, healthCard(await api.health(appId)));
    } catch (error) {
      replace(healthSection, h("h2", { id: "health-title" }, "Health"), notice(error));
    }
  }

  async function loadMetrics() {
    const asked = period;
    const controller = new AbortController();
    if (loading) loading.abort();
    loading = controller;
    metricsSection.dataset.loading = asked;
    try {
      const reply = await api.metrics(appId, asked, { signal: controller.signal });
      if (asked !== period) return;
      if (reply.serviceName) {
        title.textContent = reply.serviceName;
        session.rememberName(appId, reply.serviceName);
      }
      replace(metricsProblem);
      removeCharts.forEach((remove) => remove());
      removeCharts = METRICS.map(([key, , color]) => {
        showFigures(slots[key], reply[key]);
        return lineChart(slots[key].chart, reply[key], color, asked);
      });
      metricsSection.dataset.period = asked;
      main.dataset.ready = "app";
    } catch (error) {
      if (error.name !== "AbortError") replace(metricsProblem, notice(error));
    }
  }

  const healthPoll = every(15000, loadHealth);
  const metricsPoll = every(60000, loadMetrics);
  return () => {
    healthPoll.stop();
    metricsPoll.stop();
    if (loading) loading.abort();
    logs.dispose();
    removeCharts.forEach((remove) => remove());
  };
}
