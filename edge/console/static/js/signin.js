// The sign-in form: workspace id and API key (the workspace's apps come from ListWorkspaceApps). The key is
// checked with one ordinary call before it is kept; a refusal is explained on the spot.

import { call } from "./api.js";
import { h, replace } from "./dom.js";
import * as session from "./session.js";
import { explain } from "./widgets.js";

export function signinPage(main, reason, done) {
  const known = session.remembered();
  const message = h("div", { class: "signin-message", role: "alert" });
  if (reason) replace(message, h("p", { class: "notice error" }, reason));
  const workspace = h("input", {
    id: "ws",
    name: "workspace",
    required: true,
    value: known.workspace,
    autocomplete: "off",
    spellcheck: "false",
  });
  const key = h("input", {
    id: "key",
    name: "key",
    type: "password",
    required: true,
    autocomplete: "off",
    placeholder: "dor_sk_…",
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");

  async function signIn(event) {
    event.preventDefault();
    replace(message);
    const secret = key.value.trim();
    if (!session.KEY_PATTERN.test(secret)) {
      replace(message, h("p", { class: "notice error" }, "An API key starts with dor_sk_ followed by its secret."));
      key.focus();
      return;
    }
    submit.disabled = true;
    const ws = workspace.value.trim();
    try {
      await call(`/api/v1/workspaces/${encodeURIComponent(ws)}/monitoring/overview`, { key: secret });
      session.signIn(secret, ws, known.apps);
      done();
    } catch (error) {
      replace(message, h("p", { class: "notice error" }, explain(error)));
      key.select();
    } finally {
      submit.disabled = false;
    }
  }

  replace(
    main,
    h(
      "form",
      { class: "card signin", onsubmit: signIn, "aria-labelledby": "signin-title" },
      h("h1", { id: "signin-title" }, "Sign in"),
      h("p", { class: "muted" }, "With an API key of the workspace. The key is kept for this tab only."),
      message,
      h("label", { for: "ws" }, "Workspace id"),
      workspace,
      h("label", { for: "key" }, "API key"),
      key,
      submit,
    ),
  );
  (known.workspace ? key : workspace).focus();
  main.dataset.ready = "signin";
  return () => {};
}
