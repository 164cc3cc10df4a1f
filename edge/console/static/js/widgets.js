// Small pieces shared by the pages: the health badge, error notices, the period selector.

import { h } from "./dom.js";

const HEALTH = {
  healthy: "Healthy",
  degraded: "Degraded",
  unhealthy: "Unhealthy",
  unknown: "Unknown",
};

export function healthBadge(status) {
  const known = status in HEALTH ? status : "unknown";
  return h("span", { class: `badge health-${known}`, dataset: { health: known } }, HEALTH[known]);
}

export function severityBadge(severity) {
  return h("span", { class: `badge sev-${String(severity).toLowerCase()}` }, severity);
}

// An error from the API as a sentence a person can act on.
export function explain(error) {
  switch (error.httpStatus) {
    case 0:
      return error.message;
    case 401:
      return "The API key was refused: it is wrong or has been revoked.";
    case 403:
      return "This key cannot read that workspace (a key belongs to exactly one workspace).";
    case 404:
      return "Not found: the app or alert does not exist in this workspace.";
    case 429:
      return "Too many requests for this key right now; the console will try again.";
    case 503:
    case 504:
      return `The monitoring service is unavailable: ${error.message}`;
    default:
      return error.message || String(error);
  }
}

export function notice(error, kind = "error") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, explain(error));
}

export const PERIODS = ["1h", "6h", "24h", "7d", "30d"];

// A group of toggle buttons (one pressed): reachable with Tab, each activated with Enter or Space.
export function segmented(label, values, selected, onChange) {
  const group = h("div", { class: "segmented", role: "group", "aria-label": label });
  for (const value of values) {
    group.append(
      h(
        "button",
        {
          type: "button",
          "aria-pressed": String(value === selected),
          dataset: { value },
          onclick: () => onChange(value),
        },
        value,
      ),
    );
  }
  return group;
}

export function stat(label, value, extra) {
  return h(
    "div",
    { class: "stat" },
    h("div", { class: "stat-label" }, label),
    h("div", { class: "stat-value" }, value),
    extra,
  );
}

export function select(label, name, options, selected, onChange) {
  const id = `select-${name}`;
  return h(
    "label",
    { class: "field", for: id },
    h("span", {}, label),
    h(
      "select",
      { id, name, onchange: (event) => onChange(event.target.value) },
      options.map(([value, text]) => h("option", { value, selected: value === selected }, text)),
    ),
  );
}
