// callcenter agent desk: the card of the call offered to this agent (agent.offer), before they
// answer: who, why (queue, IVR keys, digits typed) and the previous contacts; then a note on
// the customer and the call's disposition (POST /api/customers/{id}/notes, /api/agents/{id}/disposition).
// ?agent=1001&token=... (the token is kept in localStorage and dropped from the address bar).
// Live: server-sent events (agent.offer) and a poll every 3 s; ?live=poll polls only.
"use strict";

const POLL_MS = 3000;
const params = new URLSearchParams(location.search);
const agent = params.get("agent") || "";
// /desk/call/<id>: one call's card (the link a ringing phone gets in its Call-Info)
const call = (location.pathname.match(/^\/desk\/call\/([^/]+)$/) || [])[1] || "";
let token = params.get("token");
if (token) {
  try { localStorage.setItem("callcenter.token", token); } catch (e) { /* private mode */ }
  params.delete("token");
  history.replaceState(null, "", location.pathname + "?" + params.toString());
} else {
  try { token = localStorage.getItem("callcenter.token"); } catch (e) { token = null; }
}

function $(id) { return document.getElementById(id); }
function field(name, text) {
  for (const node of document.querySelectorAll(`[data-field="${name}"]`)) node.textContent = text;
}
function when(ts) { return new Date(ts * 1000).toLocaleString(); }

function describe(item) {
  const parts = [when(item.at), item.kind];
  if (item.queue) parts.push(item.queue);
  if (item.agents && item.agents.length) parts.push("agent " + item.agents.join(", "));
  else if (item.agent) parts.push("agent " + item.agent);
  if (item.disposition) parts.push(item.disposition);
  if (item.text) parts.push("“" + item.text + "”");
  return parts.join(" · ");
}

let offered = null;  // the offer on the card

function render(offer) {
  document.body.dataset.loaded = "1";
  if (!offer) return;
  offered = offer;
  const c = offer.customer || {};
  const recent = offer.recent || [];
  const current = recent.find((i) => i.call_id === offer.call_id) || {};
  document.body.dataset.call = offer.call_id;
  field("name", c.name || "Unknown caller");
  field("known", c.known ? "returning customer" : "new customer");
  field("caller", offer.caller);
  field("queue", offer.queue);
  field("tier", (c.fields || {}).tier || "–");
  field("open_callbacks", String(c.open_callbacks || 0));
  field("choices", (current.ivr_choices || []).map((x) => x.key).join(" ") || "–");
  const typed = Object.entries(current.collected || {}).map(([k, v]) => `${k}: ${v}`);
  field("typed", typed.join(", ") || "–");
  const list = $("contacts");
  list.replaceChildren(...recent.filter((i) => i.call_id !== offer.call_id || i.kind === "note")
    .map((i) => { const li = document.createElement("li"); li.textContent = describe(i); return li; }));
  $("card").hidden = false;
  $("idle").hidden = true;
}

async function api(method, path, body) {
  return fetch(path, { method, body: body && JSON.stringify(body), headers: {
    Authorization: `Bearer ${token}`, "Content-Type": "application/json" } });
}

async function save(what, path, body) {
  const resp = await api("POST", path, body);
  const data = await resp.json().catch(() => ({}));
  $("saved").textContent = resp.ok ? what(data) : `not saved: ${data.error || "HTTP " + resp.status}`;
  return resp.ok;
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
  if (!offered || !$("code").value.trim()) return;
  await save((d) => `disposition: ${d.disposition}`, `/api/agents/${encodeURIComponent(agent || offered.agent)}/disposition`,
    { code: $("code").value.trim(), call: offered.call_id || null });
});

async function refresh() {
  const resp = await api("GET", call ? `/api/calls/${encodeURIComponent(call)}/offer`
    : `/api/agents/${encodeURIComponent(agent)}/offer`);
  if (resp.status === 404) { render(null); return; }
  if (!resp.ok) { $("error").textContent = `offer: HTTP ${resp.status}`; $("error").hidden = false; return; }
  render(await resp.json());
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

function start() {
  $("agent").textContent = agent || (call && "call");
  refresh();
  setInterval(refresh, POLL_MS);
  if (params.get("live") !== "poll" && window.EventSource) {
    const src = new EventSource(`/api/events/stream?types=agent.offer&token=${encodeURIComponent(token)}`);
    src.addEventListener("agent.offer", (e) => {
      const o = JSON.parse(e.data);
      if (call ? o.call_id === call : o.agent === agent) refresh();
    });
    src.onopen = () => $("link").classList.add("live");
    src.onerror = () => $("link").classList.remove("live");
  }
}

start();
