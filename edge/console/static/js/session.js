// Who is signed in. The key lives in sessionStorage: this tab only, gone when the tab closes. The workspace
// and app ids are not secret and live in localStorage, so that signing in again only asks for the key.

const KEY = "dooor.key";
const WORKSPACE = "dooor.workspace";
const APPS = "dooor.apps";
const NAMES = "dooor.appNames";
export const KEY_PATTERN = /^dor_sk_[A-Za-z0-9_-]{20,}$/;

export function current() {
  const key = sessionStorage.getItem(KEY);
  const workspace = localStorage.getItem(WORKSPACE);
  return key && workspace ? { key, workspace } : null;
}

export function remembered() {
  return { workspace: localStorage.getItem(WORKSPACE) || "", apps: apps() };
}

export function signIn(key, workspace, appIds) {
  sessionStorage.setItem(KEY, key);
  localStorage.setItem(WORKSPACE, workspace);
  setApps(appIds);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

// App ids watched besides the workspace's own list (ListWorkspaceApps): given in the `make run` link or
// added by hand on the overview.
export function apps() {
  try {
    const list = JSON.parse(localStorage.getItem(APPS) || "[]");
    return Array.isArray(list) ? list.filter((id) => typeof id === "string") : [];
  } catch {
    return [];
  }
}

export function setApps(ids) {
  const unique = [...new Set(ids.map((id) => id.trim()).filter(Boolean))];
  localStorage.setItem(APPS, JSON.stringify(unique));
}

export function addApp(id) {
  setApps([...apps(), id]);
}

export function removeApp(id) {
  setApps(apps().filter((known) => known !== id));
}

export function names() {
  try {
    return JSON.parse(localStorage.getItem(NAMES) || "{}");
  } catch {
    return {};
  }
}

export function rememberName(id, name) {
  if (!id || !name || names()[id] === name) return;
  localStorage.setItem(NAMES, JSON.stringify({ ...names(), [id]: name }));
}

// `#key=dor_sk_…&workspace=ws_…&apps=a,b` (what `make run` prints): taken into storage, then wiped from the
// address bar and from this history entry. A fragment is never sent to the server, so it reaches no log.
// True: signed in from the link; false: a link whose key or workspace cannot be used; null: no link.
export function takeFragment() {
  const raw = location.hash.startsWith("#key=") ? location.hash.slice(1) : "";
  if (!raw) return null;
  const params = new URLSearchParams(raw);
  history.replaceState(null, "", location.pathname + location.search + "#/");
  const key = params.get("key") || "";
  const workspace = params.get("workspace") || localStorage.getItem(WORKSPACE) || "";
  if (!KEY_PATTERN.test(key) || !workspace) return false;
  const listed = (params.get("apps") || "").split(",");
  signIn(key, workspace, listed.some(Boolean) ? listed : apps());
  return true;
}
