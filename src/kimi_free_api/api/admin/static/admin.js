// The admin console: plain DOM code over the JSON admin API (/admin/api). Data is always written with
// textContent, never as HTML, so nothing an account label or a log entry contains can run as script.
"use strict";

const API = "/admin/api";
let csrfToken = "";

const $ = (id) => document.getElementById(id);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function cell(row, content, className) {
  const td = element("td", undefined, className);
  if (content instanceof Node) td.appendChild(content);
  else td.textContent = content === null || content === undefined || content === "" ? "—" : String(content);
  row.appendChild(td);
  return td;
}

function badge(text, kind) {
  return element("span", text, "badge " + (kind || ""));
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "—";
}

function unknown(value) {
  return value === null || value === undefined ? "unknown" : String(value);
}

function notice(text, bad) {
  const box = $("notice");
  box.textContent = text || "";
  box.className = bad ? "notice bad" : "notice";
}

// Every change sends the session's CSRF token; a 401 means the session ended.
async function call(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && path !== "/login") {
    showLogin();
  }
  if (!response.ok) {
    const message = (data.error && data.error.message) || response.statusText;
    throw new Error(message);
  }
  return data;
}

function showLogin() {
  csrfToken = "";
  $("console").hidden = true;
  $("logout").hidden = true;
  $("logout-everywhere").hidden = true;
  $("login").hidden = false;
  $("login-key").focus();
}

function showConsole(session) {
  csrfToken = session.csrf_token;
  $("login").hidden = true;
  $("console").hidden = false;
  $("logout").hidden = false;
  $("logout-everywhere").hidden = false;
  refreshAll();
}

function refreshAll() {
  loadAccounts().catch((error) => notice(error.message, true));
  loadKeys().catch((error) => notice(error.message, true));
  loadLog().catch((error) => notice(error.message, true));
}

// --- accounts ---

async function loadAccounts() {
  const { data } = await call("GET", "/accounts");
  const body = $("accounts").querySelector("tbody");
  body.replaceChildren();
  for (const account of data) {
    const row = element("tr");
    row.dataset.accountId = account.id;
    cell(row, account.label || account.id);
    cell(row, element("code", account.token));
    cell(row, badge(account.health, account.health));
    const live = account.max_in_flight !== undefined;
    cell(row, live ? `${account.in_flight} / ${account.max_in_flight}` : "—");
    cell(row, account.cooldown_remaining_s ? `${account.cooldown_remaining_s} s` : "—");
    cell(row, account.last_error, "muted");
    cell(row, account.proxy || "KIMI_PROXY", account.proxy ? "" : "muted");
    const plan = cell(row, "…", "plan muted");
    const actions = cell(row, "", "actions");
    if (account.source === "store") {
      actions.replaceChildren(
        button("Label", "small", () => relabel(account)),
        button("Proxy", "small", () => reproxy(account)),
        button(account.disabled ? "Enable" : "Disable", "small", () => toggle(account)),
        button("Remove", "small danger", () => removeAccount(account)),
      );
    } else {
      actions.textContent = account.source === "env" ? "from KIMI_TOKENS" : "client token";
      actions.className = "actions muted";
    }
    body.appendChild(row);
    loadPlan(account.id, plan);
  }
  if (!data.length) {
    const row = element("tr");
    const td = cell(row, "No accounts yet: paste a refresh token above.", "muted");
    td.colSpan = 9;
    body.appendChild(row);
  }
}

async function loadPlan(accountId, target) {
  try {
    const plan = await call("GET", `/accounts/${encodeURIComponent(accountId)}/plan`);
    target.replaceChildren();
    target.className = "plan";
    target.appendChild(element("div", `${unknown(plan.plan)} · ${unknown(plan.status)}`));
    if (plan.windows === null) {
      target.appendChild(element("div", "usage windows: unknown", "muted"));
    } else {
      const list = element("ul", undefined, "windows");
      for (const w of plan.windows) {
        const resets = w.resets_at ? `, resets ${new Date(w.resets_at).toLocaleString()}` : "";
        list.appendChild(element("li", `${w.name}: ${unknown(w.used)} / ${unknown(w.limit)}${resets}`));
      }
      target.appendChild(list);
    }
    if (plan.error) target.appendChild(element("div", plan.error, "muted"));
  } catch (error) {
    target.textContent = "unknown";
  }
}

function button(text, className, onClick) {
  const node = element("button", text, className);
  node.type = "button";
  node.addEventListener("click", () => onClick().catch((error) => notice(error.message, true)));
  return node;
}

async function relabel(account) {
  const label = prompt("Label for this account", account.label);
  if (label === null) return;
  await call("PATCH", `/accounts/${account.id}`, { label });
  await loadAccounts();
}

async function reproxy(account) {
  const proxy = prompt("Proxy URL for this account (empty: KIMI_PROXY)", "");
  if (proxy === null) return;
  await call("PATCH", `/accounts/${account.id}`, { proxy });
  await loadAccounts();
}

async function toggle(account) {
  await call("PATCH", `/accounts/${account.id}`, { disabled: !account.disabled });
  await loadAccounts();
}

async function removeAccount(account) {
  if (!confirm(`Remove the account ${account.label || account.id}?`)) return;
  await call("DELETE", `/accounts/${account.id}`);
  await loadAccounts();
}

async function addAccount(event) {
  event.preventDefault();
  const added = await call("POST", "/accounts", {
    token: $("account-token").value,
    label: $("account-label").value,
    proxy: $("account-proxy").value,
  });
  $("account-form").reset();
  const live = added.live === true ? "Kimi accepts its token" : added.live === false ? "Kimi refused its token" : "";
  notice(`Added ${added.label || added.id}${live ? ": " + live : ""}.`, added.live === false);
  await loadAccounts();
}

// --- keys ---

function limitsText(limits) {
  const parts = [];
  if (limits.rpm) parts.push(`${limits.rpm}/min`);
  if (limits.concurrent) parts.push(`${limits.concurrent} at once`);
  if (limits.models.length) parts.push(`models: ${limits.models.join(", ")}`);
  return parts.length ? parts.join(" · ") : "no limits";
}

async function loadKeys() {
  const { data } = await call("GET", "/keys");
  const body = $("keys").querySelector("tbody");
  body.replaceChildren();
  for (const key of data) {
    const row = element("tr");
    row.dataset.keyId = key.id;
    cell(row, key.name);
    cell(row, element("code", key.id));
    cell(row, when(key.created));
    cell(row, limitsText(key.limits));
    const actions = cell(row, "", "actions");
    if (key.source === "store") {
      actions.replaceChildren(
        button("Limits", "small", () => editLimits(key)),
        button("Revoke", "small danger revoke", () => revoke(key)),
      );
    } else {
      actions.textContent = "from API_KEYS";
      actions.className = "actions muted";
    }
    body.appendChild(row);
  }
}

function numberOrZero(text) {
  const value = parseInt(text, 10);
  return Number.isFinite(value) && value > 0 ? value : 0;
}

async function createKey(event) {
  event.preventDefault();
  const created = await call("POST", "/keys", {
    name: $("key-name").value,
    rpm: numberOrZero($("key-rpm").value),
    concurrent: numberOrZero($("key-concurrent").value),
    models: $("key-models").value,
  });
  $("key-form").reset();
  $("new-key").textContent = created.key;
  $("new-key-box").hidden = false;
  await loadKeys();
}

async function editLimits(key) {
  const rpm = prompt("Requests per minute (0: no limit)", key.limits.rpm);
  if (rpm === null) return;
  const concurrent = prompt("Concurrent streams (0: no limit)", key.limits.concurrent);
  if (concurrent === null) return;
  const models = prompt("Allowed models, comma-separated (empty: all)", key.limits.models.join(","));
  if (models === null) return;
  await call("PATCH", `/keys/${key.id}`, { rpm: numberOrZero(rpm), concurrent: numberOrZero(concurrent), models });
  await loadKeys();
}

async function revoke(key) {
  if (!confirm(`Revoke the key ${key.name || key.id}? Clients using it are refused at once.`)) return;
  await call("DELETE", `/keys/${key.id}`);
  $("new-key-box").hidden = true;
  notice(`Revoked ${key.name || key.id}.`);
  await loadKeys();
}

// --- request log ---

async function loadLog(event) {
  if (event) event.preventDefault();
  const query = new URLSearchParams();
  for (const name of ["key", "model", "account", "status"]) {
    const value = $(`log-${name}`).value.trim();
    if (value) query.set(name, value);
  }
  const { data, enabled } = await call("GET", `/log?${query}`);
  const body = $("log").querySelector("tbody");
  body.replaceChildren();
  for (const entry of data) {
    const row = element("tr");
    cell(row, when(entry.at));
    cell(row, entry.key_name || entry.key_id);
    cell(row, `${entry.method} ${entry.path}`);
    cell(row, entry.model);
    cell(row, entry.account_label || entry.account_id);
    cell(row, badge(entry.status, "s" + String(entry.status)[0]));
    cell(row, entry.first_content_ms === null ? "—" : `${Math.round(entry.first_content_ms)} ms`);
    cell(row, `${Math.round(entry.duration_ms)} ms`);
    const tokens = entry.prompt_tokens === null ? "—" : `${entry.prompt_tokens} / ${entry.completion_tokens}`;
    cell(row, tokens);
    body.appendChild(row);
  }
  if (!enabled) notice("The request log is off (REQUEST_LOG_MAX_ENTRIES=0).");
}

// --- start ---

function selectTab(name) {
  for (const tab of document.querySelectorAll("nav .tab")) {
    tab.classList.toggle("active", tab.dataset.tab === name);
  }
  for (const section of ["accounts", "keys", "log"]) {
    $(`tab-${section}`).hidden = section !== name;
  }
  if (name === "log") loadLog().catch((error) => notice(error.message, true));
  if (name === "accounts") loadAccounts().catch((error) => notice(error.message, true));
}

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    const session = await call("POST", "/login", { key: $("login-key").value });
    $("login-key").value = "";
    showConsole(session);
  } catch (error) {
    $("login-error").textContent = error.message;
  }
}

async function logout(everywhere) {
  await call("POST", everywhere ? "/logout?everywhere=true" : "/logout").catch(() => {});
  showLogin();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout(false));
  $("logout-everywhere").addEventListener("click", () => logout(true));
  $("account-form").addEventListener("submit", (e) => addAccount(e).catch((error) => notice(error.message, true)));
  $("key-form").addEventListener("submit", (e) => createKey(e).catch((error) => notice(error.message, true)));
  $("log-form").addEventListener("submit", (e) => loadLog(e).catch((error) => notice(error.message, true)));
  for (const tab of document.querySelectorAll("nav .tab")) {
    tab.addEventListener("click", () => selectTab(tab.dataset.tab));
  }
  call("GET", "/session").then(showConsole, showLogin);
});
