// callcenter agent desk. The agent signs in (POST /api/login; the token is kept in this tab's
// sessionStorage), sees and changes its state (ready, pause with a reason, log in/out per
// queue), its figures of today, the card of the call offered to it before it answers
// (agent.offer), transfer/consult/conference buttons during the call, then a note, the
// disposition (the queue's or the campaign's) and a callback to book; campaign preview
// contacts. Live: the event stream (scoped to the agent by its role); ?live=poll polls only.
// Kiosks and tests may pass ?agent=1001&token=...; /desk/call/<id>?token=... shows that call's
// card (the link a ringing phone gets in its Call-Info).
"use strict";

const POLL_MS = 3000;
const KEY = "callcenter.desk";
const params = new URLSearchParams(location.search);
const call = (location.pathname.match(/^\/desk\/call\/([^/]+)$/) || [])[1] || "";
const STATES = { available: "Ready", ringing: "Ringing", on_call: "On a call",
  wrap_up: "Wrap-up", paused: "Paused", logged_out: "Logged out" };

let session = null;   // {token, user}
let offered = null;   // the offer on the card
let attempt = null;   // {campaign, attempt}: the campaign call to dispose
let reserved = null;  // the preview contact held for the agent
let consulting = false;  // a consultation (attended transfer) of the offered call is on
let agentState = {};
let events = null;
let poller = null;

function $(id) { return document.getElementById(id); }
function field(name, text) {
  for (const node of document.querySelectorAll(`[data-field="${name}"]`)) node.textContent = text;
}
function when(ts) { return new Date(ts * 1000).toLocaleString(); }
function minutes(s) {
  const t = Math.round(s || 0);
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, "0")}`;
}
function say(id, text) { $(id).textContent = text; }
function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}
function me() { return (session && session.user) || ""; }
const enc = encodeURIComponent;

function store(s) {
  session = s;
  try {
    if (s) sessionStorage.setItem(KEY, JSON.stringify(s)); else sessionStorage.removeItem(KEY);
  } catch (e) { /* storage off: this page only */ }
}

async function api(method, path, body) {
  const resp = await fetch(path, { method, body: body && JSON.stringify(body), headers: {
    Authorization: `Bearer ${session && session.token}`, "Content-Type": "application/json" } });
  if (resp.status === 401 && !call) { signOut("signed out: the login has expired"); }
  const data = await resp.json().catch(() => ({}));
  return { ok: resp.ok, status: resp.status, data,
    error: resp.ok ? "" : (data.error || `HTTP ${resp.status}`) };
}

// ------------------------------------------------------------------ the call's card

function describe(item) {
  const parts = [when(item.at), item.kind];
  if (item.queue) parts.push(item.queue);
  if (item.agents && item.agents.length) parts.push("agent " + item.agents.join(", "));
  else if (item.agent) parts.push("agent " + item.agent);
  if (item.disposition) parts.push(item.disposition);
  if (item.text) parts.push("“" + item.text + "”");
  return parts.join(" · ");
}

function pairs(obj) { return Object.entries(obj || {}).map(([k, v]) => `${k}: ${v}`).join(", "); }

async function render(offer) {
  document.body.dataset.loaded = "1";
  if (!offer) return;
  const fresh = !offered || offered.call_id !== offer.call_id;
  offered = offer;
  if (fresh) consulting = false;
  const c = offer.customer || {};
  const why = offer.why || {};
  const recent = offer.recent || [];
  const current = recent.find((i) => i.call_id === offer.call_id) || {};
  document.body.dataset.call = offer.call_id;
  field("name", c.name || why.contact || "Unknown caller");
  field("known", c.known ? "returning customer" : "new customer");
  field("caller", offer.caller);
  field("queue", offer.queue || "–");
  field("why", [why.kind, why.campaign].filter(Boolean).join(" · ") || "–");
  field("tier", (c.fields || {}).tier || "–");
  field("open_callbacks", String(c.open_callbacks || 0));
  field("choices", (current.ivr_choices || []).map((x) => x.key).join(" ") || "–");
  field("typed", pairs(current.collected) || "–");
  field("contact_fields", pairs(why.fields) || "–");
  $("contacts").replaceChildren(...recent
    .filter((i) => i.call_id !== offer.call_id || i.kind === "note").map((i) => el("li", describe(i))));
  $("card").hidden = false;
  $("idle").hidden = true;
  if (fresh && !call) await codes(offer);
  controls();
}

async function codes(offer) {
  // the disposition codes: the campaign's for a campaign or preview call, else the queue's
  const why = offer.why || {};
  let names = {};
  if (why.campaign) {
    const r = await api("GET", "/api/campaigns");
    const camp = (r.ok ? r.data : []).find((x) => x.name === why.campaign) || {};
    names = camp.dispositions || {};
    const mine = (camp.calls || []).find((x) => x.agent === me());
    if (mine) attempt = { campaign: why.campaign, attempt: mine.attempt };
  } else if (offer.queue) {
    const r = await api("GET", `/api/queues/${enc(offer.queue)}`);
    names = (r.ok && r.data.settings && r.data.settings.dispositions) || {};
    attempt = null;
  }
  $("codes").replaceChildren(...Object.entries(names).map(([k, v]) => el("option", v, { value: k })));
  say("code-names", pairs(names));
}

async function refreshOffer() {
  const r = await api("GET", call ? `/api/calls/${enc(call)}/offer` : `/api/agents/${enc(me())}/offer`);
  if (r.status === 404) { render(null); return; }
  if (!r.ok) { showError(`offer: ${r.error}`); return; }
  await render(r.data);
  say("updated", "updated " + new Date().toLocaleTimeString());
}

function showError(text) { $("error").textContent = text; $("error").hidden = !text; }

async function timeline() {  // the customer's contacts as they are now, this call's too
  const c = (offered && offered.customer) || {};
  if (call || !c.id) return;
  const r = await api("GET", `/api/customers/${c.id}/timeline`);
  if (r.ok) $("contacts").replaceChildren(...(r.data.items || []).slice(0, 10).map((i) => el("li", describe(i))));
}

async function save(what, path, body) {
  const r = await api("POST", path, body);
  say("saved", r.ok ? what(r.data) : `not saved: ${r.error}`);
  if (r.ok) await timeline();
  return r.ok;
}

$("note-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const c = (offered && offered.customer) || {};
  if (!c.id || !$("note").value.trim()) return;
  if (await save(() => "note added", `/api/customers/${c.id}/notes`,
    { text: $("note").value, call_id: offered.call_id || null })) $("note").value = "";
});

$("disposition-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const code = $("code").value.trim();
  if (!offered || !code) return;
  const why = offered.why || {};
  if (why.campaign && attempt && attempt.campaign === why.campaign) {
    await save((d) => `disposition: ${d.disposition || code}`,
      `/api/campaigns/${enc(why.campaign)}/dispositions`, { attempt: attempt.attempt, code });
  } else {
    await save((d) => `disposition: ${d.disposition}`, `/api/agents/${enc(me() || offered.agent)}/disposition`,
      { code, call: offered.call_id || null });
  }
});

$("callback-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!offered) return;
  const at = $("callback-at").value;
  const queue = offered.queue || (agentState.queues || [])[0];
  const body = { queue, number: offered.caller };
  if (at) body.at = at;
  const r = await api("POST", "/api/callbacks", body);
  if (!r.ok) { say("saved", `callback not booked: ${r.error}`); return; }
  const c = offered.customer || {};
  const note = $("callback-note").value.trim();
  if (c.id) {
    await api("POST", `/api/customers/${c.id}/notes`, { call_id: offered.call_id || null,
      text: `Callback booked for ${r.data.at || "now"}${note ? ": " + note : ""}` });
  }
  $("callback-note").value = "";
  say("saved", `callback booked: ${r.data.at || "now"} (request ${r.data.id})`);
  await timeline();
});

// ------------------------------------------------------------------ transfer, conference

function controls() {  // the ACD counts a consulting agent as done with the queue call
  $("call-controls").hidden = call !== "" || !offered || (agentState.state !== "on_call" && !consulting);
  $("consult").hidden = !consulting;
}

async function transfer(body, done) {
  if (!offered) return;
  const r = await api("POST", `/api/calls/${enc(offered.call_id)}/transfer`, body);
  say("call-said", r.ok ? done(r.data) : `not done: ${r.error}`);
  return r.ok;
}

function target() { return $("transfer-to").value.trim(); }
$("blind").addEventListener("click", () => target() &&
  transfer({ to: target() }, () => `transferring to ${target()}`));
$("attended").addEventListener("click", async () => {
  consulting = Boolean(target()) && await transfer({ to: target(), attended: true },
    () => `consulting ${target()}`);
  controls();
});
for (const [id, action, text] of [["complete", "complete", "transferred"],
  ["conference", "conference", "conference"], ["cancel-consult", "cancel", "back to the caller"]]) {
  $(id).addEventListener("click", async () => {
    if (await transfer({ action }, () => text)) { consulting = false; controls(); }
  });
}

// ------------------------------------------------------------------ the agent's state

async function command(name, body) {
  const r = await api("POST", `/api/agents/${enc(me())}/${name}`, body);
  if (!r.ok) showError(`${name}: ${r.error}`); else { showError(""); showState(r.data); }
}

function showState(a) {
  agentState = a;
  // in_use: the phone is on a call the ACD does not count (a consultation, a preview call)
  $("state").textContent = (STATES[a.state] || a.state) +
    (a.in_use && a.state !== "on_call" ? " · phone in use" : "");
  $("state").dataset.state = a.state;
  $("reason").textContent = a.reason || "";
  for (const li of $("queues").children) {
    const inside = (a.queues || []).includes(li.dataset.queue);
    li.classList.toggle("in", inside);
    li.querySelector("button").textContent = inside ? "Log out" : "Log in";
  }
  controls();
}

async function refreshState() {
  const r = await api("GET", `/api/agents/${enc(me())}`);
  if (r.ok) showState(r.data);
  say("updated", "updated " + new Date().toLocaleTimeString());
  const f = await api("GET", "/api/stats/agents");
  const none = { calls: 0, talk: 0, wrap_up: 0, paused: 0, pause_by_reason: {}, occupancy: null };
  const mine = f.ok && (f.data.agents.find((x) => x.agent === me()) || none);
  if (mine) {
    say("fig-calls", String(mine.calls));
    say("fig-talk", minutes(mine.talk));
    say("fig-wrap", minutes(mine.wrap_up));
    const by = Object.entries(mine.pause_by_reason).map(([k, v]) => `${k} ${minutes(v)}`);
    say("fig-paused", minutes(mine.paused) + (by.length ? ` (${by.join(", ")})` : ""));
    say("fig-occupancy", mine.occupancy == null ? "–" : Math.round(mine.occupancy * 100) + " %");
  }
}

async function setUpState() {
  const reasons = await api("GET", "/api/pause-reasons");
  $("pause-reason").replaceChildren(...(reasons.ok ? reasons.data : [])
    .map((r) => el("option", r.name, { value: r.code })));
  const queues = await api("GET", "/api/queues");
  $("queues").replaceChildren(...(queues.ok ? queues.data : []).map((q) => {
    const li = el("li", null, { "data-queue": q.name });
    li.append(el("span", `${q.name} (${q.number})`), el("button", "Log in", { type: "button" }));
    li.querySelector("button").addEventListener("click", () => command(
      li.classList.contains("in") ? "logout" : "login", { queue: q.name }));
    return li;
  }));
}

$("pause").addEventListener("click", () => command("pause", { reason: $("pause-reason").value }));
$("ready").addEventListener("click", () => command(
  agentState.state === "logged_out" ? "login" : "unpause"));

// ------------------------------------------------------------------ campaign preview

async function setUpPreview() {
  const r = await api("GET", "/api/campaigns");
  const preview = (r.ok ? r.data : []).filter((c) => c.mode === "preview");
  $("preview-campaign").replaceChildren(...preview.map((c) => el("option", c.name, { value: c.name })));
  $("preview").hidden = preview.length === 0;
}

function showContact(c) {
  reserved = c;
  $("preview-contact").hidden = !c;
  if (!c) return;
  say("preview-name", c.name || "(no name)");
  say("preview-number", c.number);
  $("preview-fields").replaceChildren(...Object.entries(c.fields || {})
    .flatMap(([k, v]) => [el("dt", k), el("dd", String(v))]));
}

$("preview-next").addEventListener("click", async () => {
  const name = $("preview-campaign").value;
  const r = await api("POST", `/api/campaigns/${enc(name)}/preview`, { agent: me() });
  showContact(r.ok ? r.data : null);
  say("preview-said", r.ok ? `held for ${Math.round(r.data.reserved_seconds)} s` : r.error);
});
for (const action of ["dial", "skip"]) {
  $(`preview-${action}`).addEventListener("click", async () => {
    if (!reserved) return;
    const r = await api("POST", `/api/campaigns/${enc(reserved.campaign)}/preview/${reserved.id}/${action}`,
      { agent: me() });
    if (r.ok && action === "dial") attempt = { campaign: reserved.campaign, attempt: r.data.attempt };
    say("preview-said", r.ok ? (action === "dial" ? "calling: your phone rings first" : "skipped") : r.error);
    if (r.ok) showContact(null);
  });
}

// ------------------------------------------------------------------ sign in, live updates

function signOut(why) {
  store(null);
  if (events) events.close();
  if (poller) clearInterval(poller);
  events = poller = null;
  offered = null;
  $("desk").hidden = true;
  $("logout").hidden = true;
  $("login-form").hidden = false;
  say("login-error", why || "");
  say("agent", "");
  document.body.dataset.signedIn = "";
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const user = $("login-user").value.trim();
  const resp = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user, password: $("login-password").value }) });
  const data = await resp.json().catch(() => ({}));
  $("login-password").value = "";
  if (!resp.ok) { say("login-error", data.error || `HTTP ${resp.status}`); return; }
  store({ token: data.token, user });
  start();
});
$("logout").addEventListener("click", () => signOut("signed out"));

function mine(ev) { return call ? ev.call_id === call : ev.agent === me() || ev.party === me(); }

function live() {
  if (params.get("live") === "poll" || !window.EventSource) {
    poller = setInterval(() => { refreshOffer(); if (!call) refreshState(); }, POLL_MS);
    return;
  }
  events = new EventSource(`/api/events/stream?types=agent.,call.,queue.member&token=${enc(session.token)}`);
  events.addEventListener("agent.offer", (e) => { if (mine(JSON.parse(e.data))) refreshOffer(); });
  for (const type of ["agent.status", "queue.member", "call.answered", "call.ended",
    "call.transferred"]) {
    events.addEventListener(type, (e) => {
      const ev = JSON.parse(e.data);
      if (call || !mine(ev)) return;
      refreshState();
      if (type === "call.ended" && offered && ev.call_id === offered.call_id) timeline();
    });
  }
  events.onopen = () => {  // (re)connected: catch up on what the stream missed
    $("link").classList.add("live");
    refreshOffer();
    if (!call) refreshState();
  };
  events.onerror = () => $("link").classList.remove("live");
}

async function start() {
  $("login-form").hidden = true;
  $("desk").hidden = false;
  $("logout").hidden = call !== "";
  document.body.classList.toggle("call-only", call !== "");
  say("agent", call ? "call" : me());
  document.body.dataset.signedIn = me();
  if (!call) await Promise.all([setUpState(), setUpPreview()]);
  await refreshOffer();
  if (!call) await refreshState();
  live();
}

(function boot() {
  const token = params.get("token");
  if (token) {  // the address form (kiosks, tests, the phone's Call-Info link)
    store({ token, user: params.get("agent") || "" });
    params.delete("token");
    history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
  } else {
    try { session = JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch (e) { session = null; }
  }
  if (session) start(); else signOut();
})();
