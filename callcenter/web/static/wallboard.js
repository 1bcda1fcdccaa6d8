// callcenter wallboard: queues and agents live, calls and service level per 15 minutes.
// Token: ?token=... in the URL (kept in localStorage, then removed from the address bar), or
// typed into the form once. Live: server-sent events from /api/events/stream trigger a refresh
// of /api/queues and /api/agents; a poll every 5 s keeps it right if the stream is cut.
// ?live=poll polls only (no stream: for proxies that buffer, and headless --virtual-time-budget).
"use strict";

const POLL_MS = 5000;
const CHART_MS = 60000;
const STATE_LABEL = {
  logged_out: "logged out", available: "available", ringing: "ringing",
  on_call: "on call", wrap_up: "wrap-up", paused: "paused",
};

let token = null;
let fetchedAt = 0;
let queues = [];
let agents = [];
let refreshTimer = null;
let source = null;

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function mmss(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
}

function pct(value) { return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`; }

function slClass(value) {
  if (value === null || value === undefined) return "";
  return value >= 0.8 ? "sl-good" : value >= 0.6 ? "sl-warn" : "sl-bad";
}

function findToken() {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get("token");
  if (fromUrl) {
    try { localStorage.setItem("callcenter.token", fromUrl); } catch (e) { /* private mode */ }
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
    return fromUrl;
  }
  try { return localStorage.getItem("callcenter.token"); } catch (e) { return null; }
}

async function api(path) {
  const resp = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
  if (resp.status === 401) {
    try { localStorage.removeItem("callcenter.token"); } catch (e) { /* ignore */ }
    showLogin("That token was not accepted.");
    throw new Error("unauthorized");
  }
  if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
  return resp.json();
}

function showLogin(message) {
  $("login").hidden = false;
  if (message) showError(message);
  if (source) { source.close(); source = null; }
}

function showError(message) {
  const e = $("error");
  e.textContent = message;
  e.hidden = !message;
}

function renderQueues() {
  const box = $("queues");
  const elapsed = (Date.now() - fetchedAt) / 1000;
  box.replaceChildren(...queues.map((q) => {
    const longest = q.waiting ? q.longest_wait + elapsed : 0;
    const sl = q.service_level;
    const level = sl === null || sl === undefined ? "" : sl >= 0.8 ? "" : sl >= 0.6 ? "warn" : "bad";
    const fig = (name, label, value, extra) =>
      el("div", { class: `fig ${name} ${extra || ""}` },
        el("div", { class: "v", "data-field": name }, String(value)),
        el("div", { class: "l" }, label));
    return el("section", { class: `queue ${level}`, "data-queue": q.name },
      el("h2", {}, q.name),
      el("div", { class: "figures" },
        fig("waiting", "waiting", q.waiting, q.waiting && longest > (q.sl_seconds || 20) ? "hot" : ""),
        fig("longest_wait", "longest wait", mmss(longest)),
        fig("service_level", `SL ${q.sl_seconds || 20} s`, pct(sl), slClass(sl)),
        fig("answered", "answered", q.answered),
        fig("abandoned", "abandoned", q.abandoned),
        fig("callbacks_pending", "callbacks", q.callbacks_pending || 0)));
  }));
  if (!queues.length) box.replaceChildren(el("p", { class: "empty" }, "No queues configured."));
}

function renderAgents() {
  const elapsed = (Date.now() - fetchedAt) / 1000;
  const counts = {};
  $("agents").replaceChildren(...agents.map((a) => {
    counts[a.state] = (counts[a.state] || 0) + 1;
    const label = STATE_LABEL[a.state] || a.state;
    const phone = a.registered === false ? " · no phone" : "";
    // in_use: on a call the queue did not give (direct, consultation, dial-out): not offered
    const busy = a.in_use && a.state !== "on_call" ? " · phone in use" : "";
    return el("div", { class: `agent${phone ? " nophone" : ""}`, "data-agent": a.id, "data-state": a.state },
      el("div", { class: "n" }, a.name ? `${a.name} (${a.id})` : a.id),
      el("div", { class: "s" },
        el("span", { "data-field": "state" }, (a.reason ? `${label} ${a.reason}` : label) + phone + busy),
        el("span", { class: "t", "data-field": "time_in_state" }, mmss(a.time_in_state + elapsed))));
  }));
  $("agent-summary").textContent = Object.entries(counts)
    .map(([s, n]) => `${n} ${STATE_LABEL[s] || s}`).join(" · ");
}

async function refresh() {
  refreshTimer = null;
  try {
    const [q, a] = await Promise.all([api("/api/queues"), api("/api/agents")]);
    queues = q; agents = a; fetchedAt = Date.now();
    renderQueues(); renderAgents(); showError("");
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "1";
  } catch (e) {
    if (e.message !== "unauthorized") showError(String(e.message || e));
  }
}

function soon() { if (!refreshTimer) refreshTimer = setTimeout(refresh, 250); }

function svg(tag, attrs, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function chart() {
  let data;
  try { data = await api("/api/stats/intervals?minutes=15"); } catch (e) { return; }
  const rows = data.intervals;
  const box = $("chart");
  if (!rows.length) { box.replaceChildren(el("p", { class: "empty" }, "No calls yet today.")); return; }
  const W = 900, H = 300, L = 40, R = 44, T = 14, B = 28;
  const pw = W - L - R, ph = H - T - B;
  const peak = Math.max(1, ...rows.map((r) => r.offered));
  const step = Math.max(1, Math.ceil(peak / 4));
  const top = step * 4;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "calls and service level per 15 minutes" });
  for (let k = 0; k <= 4; k++) {
    const y = T + ph - (k * ph) / 4;
    root.append(svg("line", { x1: L, x2: L + pw, y1: y, y2: y, stroke: "#2a3650" }));
    root.append(svg("text", { x: L - 8, y: y + 4, "text-anchor": "end" }, String(k * step)));
    root.append(svg("text", { x: L + pw + 6, y: y + 4 }, `${k * 25}%`));
  }
  const slot = pw / rows.length;
  const bw = Math.max(2, (slot * 0.8) / 3);
  const every = Math.ceil(rows.length / 12);
  const points = [];
  rows.forEach((r, i) => {
    const x = L + i * slot + slot * 0.1;
    [["offered", "#5a8ee6"], ["answered", "#3ecf7a"], ["abandoned", "#ef5b52"]].forEach(([k, c], j) => {
      const h = (r[k] / top) * ph;
      root.append(svg("rect", { x: x + j * bw, y: T + ph - h, width: bw - 1, height: h, fill: c, rx: 1 },
      ));
    });
    if (i % every === 0) root.append(svg("text", { x: x, y: H - 8 }, r.start));
    if (r.service_level !== null) points.push([L + (i + 0.5) * slot, T + ph - r.service_level * ph]);
  });
  if (points.length) {
    root.append(svg("polyline", { points: points.map((p) => p.join(",")).join(" "), fill: "none",
      stroke: "#f3c13a", "stroke-width": 3 }));
    points.forEach(([x, y]) => root.append(svg("circle", { cx: x, cy: y, r: 4, fill: "#f3c13a" })));
  }
  box.replaceChildren(root);
}

function stream() {
  if (!window.EventSource) { $("link").className = "dot poll"; return; }
  source = new EventSource(`/api/events/stream?types=queue.,agent.,callback.&token=${encodeURIComponent(token)}`);
  source.onopen = () => { $("link").className = "dot live"; $("link").title = "live"; };
  source.onerror = () => { $("link").className = "dot poll"; $("link").title = "polling"; };
  for (const type of ["queue.status", "agent.status", "queue.enter", "queue.leave", "queue.connect",
                      "callback.requested", "callback.changed", "callback.result"]) {
    source.addEventListener(type, soon);
  }
}

function tick() {
  $("clock").textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (fetchedAt) { renderQueues(); renderAgents(); }
}

function start() {
  $("login").hidden = true;
  refresh(); chart();
  if (new URLSearchParams(location.search).get("live") === "poll") $("link").className = "dot poll";
  else stream();
  setInterval(refresh, POLL_MS);
  setInterval(chart, CHART_MS);
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  if (!token) return;
  try { localStorage.setItem("callcenter.token", token); } catch (e) { /* ignore */ }
  showError("");
  start();
});

setInterval(tick, 1000);
tick();
token = findToken();
if (token) start(); else showLogin("");
