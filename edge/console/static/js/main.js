// The router: `#/` overview, `#/apps/<id>?period=…` one app, `#/alerts` alerts; the sign-in form while no
// key is kept. Each page returns a function that stops its timers and streams when it is left.

import { whenUnauthenticated } from "./api.js";
import { alertsPage } from "./alerts.js";
import { appPage } from "./app.js";
import { overviewPage } from "./overview.js";
import * as session from "./session.js";
import { signinPage } from "./signin.js";

const main = document.getElementById("main");
const header = document.querySelector("header.top");
let leave = () => {};
let signinReason = "";

function page(path, params) {
  const [first, second] = path.split("/").filter(Boolean);
  if (first === "apps" && second) return ["app", () => appPage(main, decodeURIComponent(second), params)];
  if (first === "alerts") return ["alerts", () => alertsPage(main, params)];
  return ["overview", () => overviewPage(main)];
}

function route() {
  leave();
  delete main.dataset.ready;
  const signedIn = session.current();
  header.hidden = !signedIn;
  if (!signedIn) {
    document.title = "Sign in · Dooor Monitoring";
    leave = signinPage(main, signinReason, () => {
      signinReason = "";
      history.replaceState(null, "", "#/");
      route();
    });
    return;
  }
  document.getElementById("workspace-name").textContent = signedIn.workspace;
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const [name, render] = page(path, new URLSearchParams(query || ""));
  for (const link of header.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${name === "app" ? "App" : name[0].toUpperCase() + name.slice(1)} · Dooor Monitoring`;
  leave = render();
}

// Any 401 while signed in: the key is wrong or was revoked. Drop it and say so on the sign-in form.
whenUnauthenticated(() => {
  if (!session.current()) return;
  session.signOut();
  signinReason = "The API key was refused: it is wrong or has been revoked. Sign in with a valid key.";
  route();
});

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  signinReason = "";
  route();
});

// A sign-in link, also one opened in a tab already showing the console; a broken one is said so on the form.
function takeLink() {
  const taken = session.takeFragment();
  if (taken === false) signinReason = "The sign-in link is incomplete or its key is malformed: sign in below.";
  else if (taken) signinReason = "";
}

takeLink();
window.addEventListener("hashchange", () => {
  takeLink();
  route();
  main.focus({ preventScroll: true }); // keyboard and screen-reader users land on the new page
});
route();
