// The sdgate admin page: plain JavaScript over the admin API (/admin/...). The admin token stays in
// this tab's sessionStorage and travels only as `Authorization: Bearer`, so no cookie can be
// borrowed by another site. Text from the API (key names, models) is set with textContent, never
// parsed as HTML.
"use strict";

const tokenKey = "sdgate.admin.token";
const palette = ["#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04", "#dc2626", "#4b5563", "#65a30d"];
const svgNS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

let keyNames = new Map();

class Unauthorized extends Error {}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Authorization": "Bearer " + sessionStorage.getItem(tokenKey), "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) throw new Unauthorized();
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function cell(row, text, className) {
  row.append(element("td", text, className));
}

// Decimal strings from the API, summed exactly in micro-credits (no floating point for money).
function micro(text) {
  const [whole, fraction = ""] = String(text).replace("-", "").split(".");
  const value = BigInt(whole) * 1000000n + BigInt((fraction + "000000").slice(0, 6));
  return String(text).startsWith("-") ? -value : value;
}

function credits(value) {
  const negative = value < 0n;
  const magnitude = negative ? -value : value;
  const fraction = (magnitude % 1000000n).toString().padStart(6, "0").replace(/0+$/, "");
  return (negative ? "-" : "") + (magnitude / 1000000n).toString() + (fraction ? "." + fraction : "");
}

// MARK: Sign-in

function showConsole(signedIn) {
  $("login").hidden = signedIn;
  $("console").hidden = !signedIn;
  $("session").hidden = !signedIn;
}

async function signIn(event) {
  event.preventDefault();
  sessionStorage.setItem(tokenKey, $("token").value.trim());
  $("token").value = "";
  try {
    await refresh();
    $("login-error").textContent = "";
  } catch (error) {
    sessionStorage.removeItem(tokenKey);
    $("login-error").textContent = error instanceof Unauthorized ? "That is not the admin token." : error.message;
  }
}

function signOut() {
  sessionStorage.removeItem(tokenKey);
  showConsole(false);
}

// MARK: Data

async function refresh() {
  const period = $("period").value;
  const [keys, series, recent] = await Promise.all([
    api("GET", "/admin/keys"),
    api("GET", `/admin/usage/series?since=${period}&step=${period === "24h" ? "1h" : "1d"}`),
    api("GET", "/admin/usage?since=24h&limit=50"),
  ]);
  showConsole(true);
  keyNames = new Map(keys.map((key) => [key.id, key.name]));
  renderKeys(keys, series);
  renderSpend(series);
  renderRequests(recent.requests);
  document.body.dataset.refreshed = String(Date.now());
}

async function act(action) {
  $("notice").textContent = "";
  try {
    await action();
    await refresh();
  } catch (error) {
    if (error instanceof Unauthorized) return signOut();
    $("notice").textContent = error.message;
  }
}

// MARK: Keys

function renderKeys(keys, series) {
  const spent = new Map(series.by_key.map((entry) => [entry.key_id, entry.cost.reduce((sum, cost) => sum + micro(cost), 0n)]));
  const body = $("keys").tBodies[0];
  body.replaceChildren();
  for (const key of keys) {
    const row = element("tr");
    row.dataset.key = key.id;
    cell(row, key.name);
    cell(row, key.id, "mono");
    cell(row, key.team_id || "");
    cell(row, key.available, "number available");
    cell(row, key.held, "number");
    cell(row, credits(spent.get(key.id) || 0n), "number");
    row.append(budgetCell(key));
    const state = key.revoked_at ? "revoked" : key.expires_at && Date.parse(key.expires_at) < Date.now() ? "expired" : "active";
    cell(row, state, "state " + state);
    const topUp = element("td");
    if (!key.revoked_at) {
      const form = element("form", undefined, "inline top-up");
      const amount = element("input");
      amount.name = "amount";
      amount.placeholder = "credits";
      amount.inputMode = "decimal";
      amount.required = true;
      form.append(amount, element("button", "Add"));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        act(() => api("POST", `/admin/keys/${encodeURIComponent(key.id)}/credits`, { amount: amount.value.trim(), reason: "top-up from the admin page" }));
      });
      topUp.append(form);
    }
    row.append(topUp);
    const revoke = element("td");
    if (!key.revoked_at) {
      const button = element("button", "Revoke", "danger revoke");
      button.type = "button";
      button.addEventListener("click", () => {
        if (confirm(`Revoke ${key.name}'s key? Its requests are refused from now on.`)) {
          act(() => api("POST", `/admin/keys/${encodeURIComponent(key.id)}/revoke`));
        }
      });
      revoke.append(button);
    }
    row.append(revoke);
    body.append(row);
  }
}

// A key's budget per day, week or month: what it has spent and has left in the current period,
// and a form to set, change or remove it.
function budgetCell(key) {
  const td = element("td", undefined, "budget");
  const budget = key.period_budget;
  const named = budget && `${budget.rolling ? "rolling " : ""}${budget.per}`;
  td.append(element("span", budget ? `${named} ${budget.amount}: spent ${budget.spent}, left ${budget.left}` : "none", "budget-state"));
  if (key.revoked_at) return td;
  const form = element("form", undefined, "inline budget-form");
  const per = element("select");
  per.name = "per";
  // Calendar periods in the time zone given, or rolling windows (which have none).
  for (const name of ["day", "week", "month", "rolling day", "rolling week", "rolling month"]) {
    per.append(new Option(name, name, false, budget ? named === name : name === "day"));
  }
  const amount = element("input");
  amount.name = "amount";
  amount.placeholder = "credits";
  amount.inputMode = "decimal";
  amount.required = true;
  amount.value = budget ? budget.amount : "";
  const zone = element("input");
  zone.name = "time_zone";
  zone.value = budget ? budget.time_zone : Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  form.append(per, amount, zone, element("button", "Set"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const rolling = per.value.startsWith("rolling ");
    const body = { per: per.value.replace("rolling ", ""), amount: amount.value.trim(), rolling };
    if (!rolling) body.time_zone = zone.value.trim();
    act(() => api("PUT", `/admin/keys/${encodeURIComponent(key.id)}/budget`, body));
  });
  td.append(form);
  if (budget) {
    const remove = element("button", "Remove", "danger remove-budget");
    remove.type = "button";
    remove.addEventListener("click", () => act(() => api("DELETE", `/admin/keys/${encodeURIComponent(key.id)}/budget`)));
    td.append(remove);
  }
  return td;
}

async function createKey(event) {
  event.preventDefault();
  const form = event.target;
  const body = { name: form.name.value.trim(), credits: form.credits.value.trim() || "0" };
  if (form.team.value.trim()) body.team = form.team.value.trim();
  await act(async () => {
    const created = await api("POST", "/admin/keys", body);
    $("new-secret-name").textContent = created.name;
    $("new-secret-value").textContent = created.secret;
    $("new-secret").hidden = false;
    form.reset();
  });
}

// MARK: Spend

function renderSpend(series) {
  const total = series.by_key.reduce((sum, entry) => sum + entry.cost.reduce((s, cost) => s + micro(cost), 0n), 0n);
  $("spend-total").textContent = `${credits(total)} credits from ${new Date(series.from).toLocaleString()} to ${new Date(series.to).toLocaleString()}`;
  drawStackedBars($("chart-keys"), series.buckets, series.by_key.map((entry) => ({ name: keyNames.get(entry.key_id) || entry.key_id, cost: entry.cost })), series.step_seconds);
  drawStackedBars($("chart-models"), series.buckets, series.by_model.map((entry) => ({ name: entry.model, cost: entry.cost })), series.step_seconds);
}

// Stacked bars, one per bucket, one colour per series, with a legend; drawn as SVG.
function drawStackedBars(figure, buckets, series, stepSeconds) {
  figure.replaceChildren();
  if (series.length === 0) {
    figure.append(element("p", "Nothing was spent in this period.", "empty"));
    return;
  }
  const width = 760, height = 220, left = 56, bottom = 24, top = 8;
  const totals = buckets.map((_, index) => series.reduce((sum, entry) => sum + Number(entry.cost[index]), 0));
  const highest = Math.max(...totals) || 1;
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  const plotHeight = height - bottom - top;
  for (let line = 0; line <= 4; line++) {
    const y = top + plotHeight - (plotHeight * line) / 4;
    const grid = document.createElementNS(svgNS, "line");
    Object.entries({ x1: left, x2: width, y1: y, y2: y, class: "grid" }).forEach(([name, value]) => grid.setAttribute(name, value));
    const label = document.createElementNS(svgNS, "text");
    Object.entries({ x: left - 6, y: y + 4, class: "axis", "text-anchor": "end" }).forEach(([name, value]) => label.setAttribute(name, value));
    label.textContent = ((highest * line) / 4).toPrecision(3).replace(/\.?0+$/, "");
    svg.append(grid, label);
  }
  const slot = (width - left) / buckets.length;
  buckets.forEach((start, index) => {
    let y = top + plotHeight;
    series.forEach((entry, position) => {
      const value = Number(entry.cost[index]);
      if (value <= 0) return;
      const barHeight = (plotHeight * value) / highest;
      y -= barHeight;
      const bar = document.createElementNS(svgNS, "rect");
      Object.entries({ x: left + index * slot + slot * 0.15, y, width: slot * 0.7, height: barHeight, fill: palette[position % palette.length], class: "bar" })
        .forEach(([name, value]) => bar.setAttribute(name, value));
      const title = document.createElementNS(svgNS, "title");
      title.textContent = `${entry.name}: ${entry.cost[index]} credits`;
      bar.append(title);
      svg.append(bar);
    });
    const every = Math.ceil(buckets.length / 8);
    if (index % every === 0) {
      const label = document.createElementNS(svgNS, "text");
      Object.entries({ x: left + index * slot + slot / 2, y: height - 6, class: "axis", "text-anchor": "middle" }).forEach(([name, value]) => label.setAttribute(name, value));
      const date = new Date(start);
      label.textContent = stepSeconds < 86400 ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : date.toLocaleDateString([], { month: "short", day: "numeric" });
      svg.append(label);
    }
  });
  const legend = element("figcaption", undefined, "legend");
  series.forEach((entry, position) => {
    const item = element("span", entry.name);
    item.style.setProperty("--swatch", palette[position % palette.length]);
    legend.append(item);
  });
  figure.append(svg, legend);
}

// MARK: Requests

function renderRequests(requests) {
  const body = $("requests").tBodies[0];
  body.replaceChildren();
  for (const request of requests.slice().reverse()) {
    const row = element("tr");
    cell(row, new Date(request.at).toLocaleString());
    cell(row, keyNames.get(request.key_id) || request.key_id);
    cell(row, request.model);
    cell(row, request.dialect || "-");
    cell(row, String(request.status), request.status === 200 ? "ok" : "failed");
    // A counted row: the requests of one minute that held nothing (refusals, replays).
    cell(row, String(request.requests ?? 1), "number");
    cell(row, request.cost, "number");
    cell(row, `${request.duration_ms} ms`, "number");
    cell(row, request.backend);
    body.append(row);
  }
  if (requests.length === 0) {
    const row = element("tr");
    const empty = element("td", "No requests in the last 24 hours.", "empty");
    empty.colSpan = 9;
    row.append(empty);
    body.append(row);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("refresh").addEventListener("click", () => act(async () => {}));
  $("period").addEventListener("change", () => act(async () => {}));
  $("create-key").addEventListener("submit", createKey);
  if (sessionStorage.getItem(tokenKey)) act(async () => {});
});
