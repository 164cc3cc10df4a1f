// The public REST API, exactly as any client calls it: same paths, `Authorization: Bearer <key>`, the
// documented JSON. Errors come back as ApiError carrying the AIP-193 body's status and message.

import { current } from "./session.js";

export class ApiError extends Error {
  constructor(httpStatus, status, message, reason) {
    super(message);
    this.httpStatus = httpStatus;
    this.status = status;
    this.reason = reason;
  }
}

// Called on any 401: the key is wrong or was revoked, so every page must go back to sign-in.
let onUnauthenticated = () => {};
export function whenUnauthenticated(handler) {
  onUnauthenticated = handler;
}

const enc = encodeURIComponent;
const base = (ws) => `/api/v1/workspaces/${enc(ws)}/monitoring`;

async function errorOf(response) {
  try {
    const { error } = await response.json();
    const reason = (error.details || []).map((d) => d.reason).find(Boolean);
    return new ApiError(response.status, error.status, error.message, reason);
  } catch {
    return new ApiError(response.status, "UNKNOWN", `${response.status} ${response.statusText}`);
  }
}

export async function call(path, { method = "GET", key = current()?.key, signal } = {}) {
  let response;
  try {
    response = await fetch(path, { method, signal, headers: { Authorization: `Bearer ${key}` }, cache: "no-store" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "UNAVAILABLE", "The console cannot reach the edge (network error).");
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401) onUnauthenticated(error);
    throw error;
  }
  return response.json();
}

function query(params) {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return entries.length ? `?${new URLSearchParams(entries)}` : "";
}

const ws = () => current().workspace;

export const overview = (opts) => call(`${base(ws())}/overview`, opts);
export const workspaceApps = (opts) => call(`${base(ws())}/apps`, opts);
export const health = (app, opts) => call(`${base(ws())}/apps/${enc(app)}/health`, opts);
export const metrics = (app, period, opts) => call(`${base(ws())}/apps/${enc(app)}/metrics${query({ period })}`, opts);
export const logs = (app, params, opts) => call(`${base(ws())}/apps/${enc(app)}/logs${query(params)}`, opts);
export const alerts = (params, opts) => call(`${base(ws())}/alerts${query(params)}`, opts);
export const resolve = (id) => call(`${base(ws())}/alerts/${enc(id)}/resolve`, { method: "PATCH" });

// EventSource cannot send headers: the stream takes the key as `access_token` (the edge redacts it from
// its access log). A query parameter, not the cookie: a cookie would reach every tab of the browser.
export function streamUrl(app, params) {
  return `${base(ws())}/apps/${enc(app)}/logs/stream${query({ ...params, access_token: current().key })}`;
}
