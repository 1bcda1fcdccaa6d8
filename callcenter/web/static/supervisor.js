// callcenter supervisor view: the queues of the logged-in supervisor (POST /api/login; its
// token sees only the queues supervisor.queues gives it), their agents with their states and
// current calls (number, the customer's name from the agent's last offer), the callers
// waiting; one click to listen, whisper or barge on an agent's call (the server calls the
// supervisor's phone: POST/PATCH/DELETE /api/supervisor/sessions). Live: the event stream
// (agent., queue., supervisor. events) triggers a reload of the figures; a poll every 5 s.
"use strict";

const POLL_MS = 5000;
const MODES = ["listen", "whisper", "barge"];
const KEY = "callcenter.supervisor";
let login = null;  // {user, token}
try { login = JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch (e) { login = null; }
const offers = {};  // agent -> its last agent.offer (the customer's name)
let stream = null, poll = null, pending = null;

function $(id) { return document.getElementById(id); }
function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}
function fail(text) { $("error").textContent = text; $("error").hidden = !text; }
function secs(s) { s = Math.round(s || 0); return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`; }

async function api(method, path, body) {
  const resp = await fetch(path, { method, body: body && JSON.stringify(body), headers: {
    Authorization: `Bearer ${login && login.token}`, "Content-Type": "application/json" } });
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 401) { logout(); fail("logged out: log in again"); }
  return { ok: resp.ok, status: resp.status, data };
}

function customer(agent) {
  const o = offers[agent.id];
  if (!agent.call) return "";
  if (o && o.call_id === agent.call.call_id && o.customer && o.customer.name) return o.customer.name;
  return "";
}

const KINDS = { direct: "a direct call", dial_out: "an outside call", transfer: "a transferred call",
  preview: "a preview call", callback: "a callback" };

function phoneCall(p) { // the agent's call no queue gave (GET /api/agents phone_call)
  if (!p) return "";
  if (p.answered) return `on ${KINDS[p.kind] || "a call"} with ${p.other}`;
  if (p.kind === "dial_out") return `dialling out to ${p.other}`;
  return p.outgoing ? `calling ${p.other}` : `ringing: ${p.other}`;
}

function actions(agent, mine) {
  const box = el("div", undefined, "actions");
  for (const mode of MODES) {
    const b = el("button", mode[0].toUpperCase() + mode.slice(1));
    b.type = "button";
    b.dataset.agent = agent.id;
    b.dataset.mode = mode;
    if (mine && mine.mode === mode) b.classList.add("on");
    b.addEventListener("click", () => supervise(agent.id, mode, mine));
    box.append(b);
  }
  const stop = el("button", "Stop");
  stop.type = "button";
  stop.dataset.agent = agent.id;
  stop.dataset.mode = "stop";
  stop.disabled = !mine;
  stop.addEventListener("click", () => mine && end(mine));
  box.append(stop);
  return box;
}

async function supervise(agent, mode, mine) {
  fail("");
  const r = mine ? await api("PATCH", `/api/supervisor/sessions/${mine.id}`, { mode })
    : await api("POST", "/api/supervisor/sessions", { supervisor: login.user, agent, mode });
  if (!r.ok) fail(`${mode} ${agent}: ${r.data.error || "HTTP " + r.status}`);
  load();
}

async function end(session) {
  const r = await api("DELETE", `/api/supervisor/sessions/${session.id}`);
  if (!r.ok) fail(`stop: ${r.data.error || "HTTP " + r.status}`);
  load();
}

function render(queues, agents, sessions) {
  const byId = Object.fromEntries(agents.map((a) => [a.id, a]));
  const mine = Object.fromEntries(sessions.filter((s) => s.supervisor === login.user)
    .map((s) => [s.agent, s]));
  const live = sessions.filter((s) => s.supervisor === login.user);
  $("sessions").hidden = !live.length;
  $("sessions").replaceChildren(el("h3", "Your sessions"), ...live.map((s) =>
    el("p", `${s.mode} on agent ${s.agent}: ${s.state}`, "session")));
  const sections = queues.map((q) => {
    const node = $("queue-tpl").content.firstElementChild.cloneNode(true);
    node.dataset.queue = q.name;
    node.querySelector('[data-q="name"]').textContent = q.name;
    node.querySelector('[data-q="figures"]').textContent =
      `${q.waiting} waiting · longest ${secs(q.longest_wait)} · answered ${q.answered}/${q.offered}`;
    node.querySelector("tbody").replaceChildren(...q.agents.filter((id) => byId[id]).map((id) => {
      const a = byId[id];
      const row = el("tr");
      row.dataset.agent = id;
      const state = el("span", a.state.replace("_", " "), `state ${a.state}`);
      state.title = a.reason || "";
      const cells = [el("td", `${id} ${a.name || ""}`.trim()), el("td"),
        el("td", a.call ? `${a.call.caller} (${a.call.queue})` : phoneCall(a.phone_call)),
        el("td", customer(a)),
        el("td")];
      cells[1].append(state, el("span", secs(a.time_in_state), "sub"));
      cells[1].dataset.field = "state";
      cells[2].dataset.field = "call";
      cells[3].dataset.field = "customer";
      cells[4].append(actions(a, mine[id]));
      row.append(...cells);
      return row;
    }));
    node.querySelector(".waiting").replaceChildren(...(q.callers || []).map((c) =>
      el("li", c.callback ? `${c.caller} (callback)` : c.caller)));
    return node;
  });
  $("queues").replaceChildren(...sections);
  document.body.dataset.loaded = "1";
}

async function load() {
  pending = null;
  const [q, a, s] = await Promise.all([api("GET", "/api/queues"), api("GET", "/api/agents"),
    api("GET", "/api/supervisor/sessions")]);
  if (!q.ok || !a.ok) { fail(`queues: HTTP ${q.status}, agents: HTTP ${a.status}`); return; }
  await Promise.all(a.data.filter((x) => x.call && (offers[x.id] || {}).call_id !== x.call.call_id)
    .map(async (x) => { const o = await api("GET", `/api/agents/${x.id}/offer`); if (o.ok) offers[x.id] = o.data; }));
  render(q.data, a.data, s.ok ? s.data.live : []);
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

function soon() { if (!pending) pending = setTimeout(load, 150); }

function start() {
  $("login").hidden = true;
  $("board").hidden = false;
  $("logout").hidden = false;
  $("me").textContent = login.user;
  load();
  poll = setInterval(load, POLL_MS);
  stream = new EventSource("/api/events/stream?types=agent.,queue.,supervisor.,call.&token="
    + encodeURIComponent(login.token));
  stream.addEventListener("agent.offer", (e) => { const o = JSON.parse(e.data); offers[o.agent] = o; soon(); });
  for (const type of ["agent.state", "agent.status", "queue.enter", "queue.connect", "queue.leave",
    "queue.member", "supervisor.step", "call.answered", "call.ended"]) stream.addEventListener(type, soon);
  stream.onopen = () => $("link").classList.add("live");
  stream.onerror = () => $("link").classList.remove("live");
}

function logout() {
  login = null;
  try { sessionStorage.removeItem(KEY); } catch (e) { /* private mode */ }
  if (stream) stream.close();
  clearInterval(poll);
  $("login").hidden = false;
  $("board").hidden = true;
  $("logout").hidden = true;
  $("link").classList.remove("live");
  $("updated").textContent = "not logged in";
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const user = $("user").value.trim();
  const resp = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user, password: $("password").value }) });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) { fail(data.error || `HTTP ${resp.status}`); return; }
  fail("");
  login = { user, token: data.token };
  try { sessionStorage.setItem(KEY, JSON.stringify(login)); } catch (err) { /* private mode */ }
  $("password").value = "";
  start();
});
$("logout").addEventListener("click", logout);

document.body.dataset.ready = "1";
if (login) start();
