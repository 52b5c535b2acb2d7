// lbdns status page: polls /ui/api/state (zones, pools, the last reload and
// API writes) and the newest /ui/api/events every second and renders them; with a
// token typed in, drains, undrains and reweights members through /v1 with the
// token as a bearer header (kept in this page's memory only: never in a URL or
// a cookie, so another site cannot make the browser send it).
"use strict";

const PAGE = 50;
const EVENTS = 20;
const WRITES = 10;
const $ = (id) => document.getElementById(id);
let token = "";
let state = null;
let events = [];
let page = 0;
let pollError = "";
let polling = false;

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function ago(time) {
  if (!time) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(time)) / 1000));
  if (s < 120) return s + " s ago";
  if (s < 7200) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function headers() {
  return token ? { Authorization: "Bearer " + token } : {};
}

function say(text, error) {
  const m = $("message");
  m.textContent = text;
  m.className = error ? "error" : "";
  m.hidden = !text;
}

async function poll() {
  if (polling) return;
  polling = true;
  try {
    const r = await fetch("/ui/api/state", { headers: headers(), cache: "no-store" });
    const body = await r.json().catch(() => ({}));
    // ui_public = false: the token is needed to read, not only for changes.
    $("token").placeholder = r.status === 401 ? "admin token (needed to see the state)" : "admin token (for changes)";
    if (!r.ok) throw new Error(r.status === 401 ? "this page needs the admin token to show the state" : body.error || r.statusText);
    state = body;
    pollError = "";
    // The history is extra: when it cannot be read, the state still shows.
    const e = await fetch("/ui/api/events?limit=" + EVENTS, { headers: headers(), cache: "no-store" }).catch(() => null);
    if (e && e.ok) events = await e.json().catch(() => events);
  } catch (e) {
    pollError = e.message;
  }
  polling = false;
  render();
}

function sparkline(rates) {
  const w = 120, h = 24;
  if (!rates || rates.length < 2) return "";
  const max = Math.max(...rates, 1);
  const pts = rates.map((v, i) => (i * w / (rates.length - 1)).toFixed(1) + "," + (h - 1 - v * (h - 2) / max).toFixed(1));
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" aria-hidden="true"><polyline class="spark" points="${pts.join(" ")}"/></svg>`;
}

function visiblePools() {
  const q = $("search").value.trim().toLowerCase();
  const notUp = $("not-up").checked;
  const out = [];
  for (const p of state.pools) {
    let members = p.members;
    if (notUp) members = members.filter((m) => m.state !== "up");
    const poolHit = !q || p.name.toLowerCase().includes(q);
    if (!poolHit) members = members.filter((m) => String(m.address).includes(q));
    if ((notUp || !poolHit) && members.length === 0) continue;
    out.push({ pool: p, members });
  }
  return out;
}

// With health = "quorum": how many nodes see the member up, of those with a
// result; which ones on hover. More than half down takes it out of answers.
function votesCell(m) {
  const v = m.votes;
  if (!v) return `<td data-label="votes"></td>`;
  const who = Object.entries(v.nodes).map(([n, up]) => `${n}: ${up == null ? "no result yet" : up ? "up" : "down"}`).join(", ");
  const kept = v.of > 0 && v.up * 2 >= v.of;
  return `<td data-label="votes" class="votes state ${kept ? "up" : "down"}" title="${esc(who)}">${v.up}/${v.of} up</td>`;
}

// Health pushed over the probes: an API override, or this server's health file.
function pushedMark(m) {
  if (m.state === "drained") return "";
  if (m.override) return " (pushed)";
  if (m.health_file) return " (file)";
  return "";
}

function pushedTitle(m) {
  const o = m.override || m.health_file;
  if (!o) return "";
  const by = m.override ? "override" : `health file ${o.file}:${o.line}`;
  const until = o.expires_at ? ` until ${o.expires_at}` : "";
  return `${by}: ${o.state}${o.reason ? " (" + o.reason + ")" : ""}${until}; probes: ${m.probed}`;
}

function memberRow(p, m, quorum) {
  const rtt = m.last_rtt_ms == null ? "" : m.last_rtt_ms.toFixed(1) + " ms";
  let actions = "";
  if (token) {
    const drain = m.state === "drained"
      ? `<button type="button" data-act="undrain">Undrain</button>`
      : `<button type="button" data-act="drain">Drain</button>`;
    actions = `<td class="actions">${drain}
      <input class="weight" type="number" min="1" step="1" value="${esc(m.weight)}" aria-label="weight">
      <button type="button" data-act="weight">Set weight</button></td>`;
  }
  return `<tr class="member" data-pool="${esc(p.name)}" data-address="${esc(m.address)}">
    <td data-label="address">${esc(m.address)}</td>
    <td data-label="state" class="state ${esc(m.state)}" title="${esc(pushedTitle(m))}">${esc(m.state)}${pushedMark(m)}</td>
    <td data-label="since" title="${esc(m.since)}">${esc(ago(m.since))}</td>
    <td data-label="weight">${esc(m.weight)}${m.region ? " · " + esc(m.region) : ""}</td>
    <td data-label="rtt">${esc(rtt)}</td>${quorum ? votesCell(m) : ""}
    <td data-label="last error" class="err">${esc(m.last_error)}</td>${actions}</tr>`;
}

function poolCard({ pool: p, members }) {
  const up = p.members.filter((m) => m.state === "up").length;
  const rates = p.answers_per_second || [];
  const now = rates.length ? rates[rates.length - 1].toFixed(1) : "–";
  // No member to answer: the pool answers its all_down policy.
  const down = p.all_down_since ? `<span class="down-badge" title="since ${esc(p.all_down_since)}">all down ${esc(ago(p.all_down_since))},
    answering all_down = ${esc(p.all_down)}</span>` : "";
  const head = `<div class="pool-head"><span class="name">${esc(p.name)}</span>${down}
    <span>${esc(p.policy)} · TTL ${esc(p.ttl)}${p.checked ? "" : " · not checked"}</span>
    <span class="updown">${up}/${p.members.length} up</span>
    <span title="answers per second, last 5 minutes">${now} answers/s</span>${sparkline(rates)}</div>`;
  const th = token ? "<th>Actions</th>" : "";
  const quorum = p.members.some((m) => m.votes);
  const rows = members.map((m) => memberRow(p, m, quorum)).join("");
  return `<div class="pool${p.all_down_since ? " down" : ""}" data-pool="${esc(p.name)}">${head}<div class="table-wrap"><table class="members">
    <thead><tr><th>Member</th><th>State</th><th>Since</th><th>Weight</th><th>Probe RTT</th>${quorum ? "<th>Votes</th>" : ""}<th>Last error</th>${th}</tr></thead>
    <tbody>${rows}</tbody></table></div></div>`;
}

// The last reload (or the start, when there was none) and the newest writes.
function renderChanges() {
  const r = state.reload;
  $("reload").className = r && !r.ok ? "reload err" : "reload";
  $("reload").innerHTML = !r
    ? `No reload since the start, <span title="${esc(state.started)}">${esc(ago(state.started))}</span>.`
    : `Last reload <span title="${esc(r.time)}">${esc(ago(r.time))}</span>: ` +
      (r.ok ? `<span class="state up">ok</span>` : `<b>refused, the previous state is kept</b><pre>${esc(r.error)}</pre>`);
  const writes = (state.writes || []).slice(0, WRITES);
  $("writes").tBodies[0].innerHTML = writes.length ? writes.map((w) => `<tr class="write">
    <td data-label="time" title="${esc(w.time)}">${esc(ago(w.time))}</td><td data-label="write" class="what">${esc(w.what)}</td>
    <td data-label="result" class="${w.ok ? "state up" : "err"}">${w.ok ? "ok" : esc(w.error)}</td></tr>`).join("")
    : `<tr><td colspan="3" class="muted">none since the server started</td></tr>`;
}

function render() {
  $("updated").textContent = pollError ? pollError : state ? "updated " + new Date(state.time).toLocaleTimeString() : "loading…";
  $("token-forget").hidden = !token;
  if (!state) return;
  // Typing a weight: wait, so that the value is not replaced under the cursor.
  const focus = document.activeElement;
  if (focus && focus.closest && focus.closest("#pools") && focus.tagName === "INPUT") return;
  $("zones").tBodies[0].innerHTML = state.zones.map((z) => `<tr data-zone="${esc(z.origin)}">
    <td>${esc(z.origin)}</td><td>${esc(z.serial)}</td><td>${esc(z.rrsets)}</td>
    <td>${z.last_change ? esc(z.last_change.source) + ", " + esc(ago(z.last_change.time)) : ""}</td></tr>`).join("");
  renderChanges();
  $("events").tBodies[0].innerHTML = events.length ? events.map((e) => `<tr class="event">
    <td data-label="time" title="${esc(e.time)}">${esc(ago(e.time))}</td><td data-label="pool">${esc(e.pool)}</td>
    <td data-label="address">${e.address == null ? `<span class="muted">whole pool</span>` : esc(e.address)}</td>
    <td data-label="change"><span class="state ${esc(e.from)}">${esc(e.from)}</span> → <span class="state ${esc(e.to)}">${esc(e.to)}</span></td>
    <td data-label="reason" class="${e.to === "down" || e.to === "all-down" ? "err" : ""}">${esc(e.reason)}</td></tr>`).join("")
    : `<tr><td colspan="5" class="muted">none since the server started</td></tr>`;
  const shown = visiblePools();
  const pages = Math.max(1, Math.ceil(shown.length / PAGE));
  page = Math.min(page, pages - 1);
  $("pool-count").textContent = `(${shown.length} of ${state.pools.length})`;
  $("page").textContent = `${page + 1} / ${pages}`;
  $("prev").disabled = page === 0;
  $("next").disabled = page >= pages - 1;
  $("pools").innerHTML = shown.slice(page * PAGE, (page + 1) * PAGE).map(poolCard).join("");
}

async function act(button) {
  const row = button.closest("tr.member");
  const pool = row.dataset.pool, address = row.dataset.address;
  const what = button.dataset.act;
  let body;
  if (what === "drain") body = { enabled: false };
  else if (what === "undrain") body = { enabled: true };
  else {
    const w = Number(row.querySelector(".weight").value);
    // The API refuses weight 0 (a member out of answers is drained, not weight 0).
    if (!Number.isInteger(w) || w < 1) {
      // Out of the field, so that the page redraws (and shows the weight in effect) again.
      document.activeElement.blur();
      return say("the weight must be a whole number, 1 or more", true);
    }
    body = { weight: w };
  }
  button.disabled = true;
  const url = `/v1/pools/${encodeURIComponent(pool)}/members/${encodeURIComponent(address)}`;
  try {
    const r = await fetch(url, { method: "PUT", headers: { ...headers(), "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const reply = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(reply.error || r.statusText);
    say(`${what} ${address} in ${pool}: done`, false);
  } catch (e) {
    say(`${what} ${address} in ${pool}: ${e.message}`, true);
  }
  button.disabled = false;
  document.activeElement.blur();
  poll();
}

async function useToken(ev) {
  ev.preventDefault();
  const typed = $("token").value.trim();
  if (!typed) return;
  // Checked on a cheap /v1 read, so that a wrong token shows no controls.
  const r = await fetch("/v1/zones", { headers: { Authorization: "Bearer " + typed } }).catch(() => null);
  if (!r || !r.ok) {
    const reply = r ? await r.json().catch(() => ({})) : {};
    return say("token not accepted: " + (reply.error || "no answer"), true);
  }
  token = typed;
  $("token").value = "";
  say("token accepted: changes are enabled on this page until it is reloaded", false);
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", useToken);
  $("token-forget").addEventListener("click", () => { token = ""; say("", false); render(); });
  $("search").addEventListener("input", () => { page = 0; render(); });
  $("not-up").addEventListener("change", () => { page = 0; render(); });
  $("prev").addEventListener("click", () => { page--; render(); });
  $("next").addEventListener("click", () => { page++; render(); });
  $("pools").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-act]");
    if (b) act(b);
  });
  $("pools").addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter" || !ev.target.matches("input.weight")) return;
    act(ev.target.closest("tr.member").querySelector("button[data-act=weight]"));
  });
  poll();
  setInterval(poll, 1000);
});
