"use strict";
const ACTIVE = ["accepted", "en_route", "on_site"], OPEN = ["queued", "offered"];

async function loadFigures() {
  const f = await api("/api/stats/today?tz=" + encodeURIComponent(Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"));
  const box = document.getElementById("figures");
  box.replaceChildren(...[
    ["Open now", f.open_now], ["Overdue", f.overdue_now], ["Opened today", f.opened], ["Red today", f.opened_red],
    ["Resolved today", f.resolved], ["Median to accept", fmtSecs(f.median_accept_s)], ["Slowest accept", fmtSecs(f.max_accept_s)],
  ].map(([k, v]) => el("div", { class: "figure" }, el("b", {}, v), k)));
}

function alertCard(a) {
  const state = a.order_state || "no order";
  const done = !OPEN.includes(state) && !ACTIVE.includes(state);
  const card = el("article", { class: `alert ${a.colour}${done ? " done" : ""}`, "data-alert-id": a.alert_id, "data-order-id": a.order_id, "data-state": state },
    el("div", { class: "who" }, a.resident_name || a.site_id, " ", el("span", { class: "pill" }, a.kind)),
    el("div", {}, a.explanation),
    el("div", { class: "muted", style: "color:inherit" }, fmtAgo(a.raised_at), " · ", el("span", { class: "state" }, state.replace("_", " "))));
  const actions = el("div", { class: "actions" });
  if (a.order_id && OPEN.includes(state)) {
    actions.append(el("button", { type: "button", class: "accept", onclick: () => act(`/api/orders/${a.order_id}/accept`, {}) }, "Accept"));
  }
  if (a.order_id && ACTIVE.includes(state)) {
    const outcome = el("select", { "aria-label": "outcome" },
      el("option", { value: "emergency_handled" }, "handled"), el("option", { value: "handled_by_phone" }, "by phone"), el("option", { value: "false_alarm" }, "false alarm"));
    actions.append(outcome, el("button", { type: "button", class: "resolve", onclick: () => act(`/api/orders/${a.order_id}/resolve`, { json: { outcome: outcome.value } }) }, "Resolve"));
  }
  card.append(actions);
  return card;
}

async function act(path, opts) {
  try { await api(path, Object.assign({ method: "POST" }, opts)); }
  catch (e) { if (e.status !== 409) alert("Could not do that: " + e.message); }
  await Promise.all([loadWall(), loadFigures()]);
}

async function loadWall() {
  // Recent alerts, plus any older one whose order is still open (never pushed off the wall).
  const [recent, open] = await Promise.all([api("/api/alerts?limit=100"), api("/api/orders?open_only=true&limit=500")]);
  const have = new Set(recent.map((a) => a.alert_id));
  const older = await Promise.all(open.filter((o) => o.alert_id && !have.has(o.alert_id)).map((o) => api(`/api/alerts/${o.alert_id}`)));
  const alerts = recent.concat(older);
  const showDone = document.getElementById("show-done").checked;
  const rank = (a) => (OPEN.includes(a.order_state) ? 0 : ACTIVE.includes(a.order_state) ? 1 : 2) * 3 + ["red", "yellow", "green"].indexOf(a.colour);
  const shown = alerts.filter((a) => showDone || rank(a) < 6).sort((x, y) => rank(x) - rank(y));
  const wall = document.getElementById("wall");
  wall.replaceChildren(...(shown.length ? shown.map(alertCard) : [el("p", { class: "muted" }, "No open alerts. All calm.")]));
}

async function loadResidents() {
  const rs = await api("/api/residents?limit=500");
  const sel = document.getElementById("resident");
  sel.replaceChildren(...rs.map((r) => el("option", { value: r.resident_id }, `${r.full_name} (${r.room_name || r.site_id})`)));
}

async function loadTimeline() {
  const rid = document.getElementById("resident").value, days = +document.getElementById("range").value;
  if (!rid) return;
  const end = new Date(), start = new Date(end - days * 86400e3);
  const t = await api(`/api/residents/${rid}/timeline?start=${start.toISOString()}&end=${end.toISOString()}`);
  const hourly = t.bucket_seconds < 86400;
  const labels = t.points.map((p) => { const d = new Date(p.start); return hourly ? d.getHours() + "h" : (d.getMonth() + 1) + "/" + d.getDate(); });
  const per = t.bucket_seconds / 3600;
  document.getElementById("charts").replaceChildren(
    chart(`Activity (motion events per ${hourly ? "hour" : t.bucket_seconds === 86400 ? "day" : "week"})`, labels, [{ kind: "bar", colour: "#1f77b4", values: t.points.map((p) => p.motion_events) }]),
    chart("Time in bed (hours)", labels, [{ kind: "bar", colour: "#7e57c2", values: t.points.map((p) => p.in_bed_minutes / 60) }], { max: per }),
    chart("Heart rate (beats/min: avg, min, max)", labels, [
      { kind: "line", colour: "#ef9a9a", values: t.points.map((p) => p.hr_max) },
      { kind: "line", colour: "#d32f2f", values: t.points.map((p) => p.hr_avg) },
      { kind: "line", colour: "#ef9a9a", values: t.points.map((p) => p.hr_min) }], { min: 40, max: 140 }),
    chart("Respiration (breaths/min)", labels, [{ kind: "line", colour: "#00897b", values: t.points.map((p) => p.rr_avg) }], { min: 0, max: 40 }));
}

async function loadDevices() {
  const ds = await api("/api/device-health?problems_only=true&limit=50");
  const box = document.getElementById("devices");
  if (!ds.length) { box.replaceChildren(el("p", { class: "muted" }, "All devices online, batteries fine.")); return; }
  box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, ...["Device", "Where", "Status", "Battery", "Last seen"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...ds.map((d) => el("tr", {},
      el("td", {}, d.device_id, el("div", { class: "muted" }, d.kind)),
      el("td", {}, d.resident_name || [d.room_name, d.site_id].filter(Boolean).join(" · ")),
      el("td", { class: d.online !== true || d.stale ? "bad" : "" }, d.online === null ? "never seen" : !d.online ? "offline" : d.stale ? "silent" : "online"),
      el("td", { class: d.low_battery ? "bad" : "" }, d.battery === null ? "—" : Math.round(d.battery) + " %"),
      el("td", {}, fmtAgo(d.last_seen_at)))))));
}

(async () => {
  const me = await requireSignIn();
  if (me.role === "family") { location.href = "/family"; return; }
  document.getElementById("who").textContent = me.username;
  document.getElementById("logout").onclick = signOut;
  document.getElementById("sound").onclick = (e) => { enableSound(); beep(); e.target.textContent = "Sound is on"; };
  document.getElementById("show-done").onchange = loadWall;
  document.getElementById("resident").onchange = loadTimeline;
  document.getElementById("range").onchange = loadTimeline;
  await Promise.all([loadFigures(), loadWall(), loadResidents().then(loadTimeline), loadDevices()]);
  let pending = null;
  live((ev) => {
    if (ev.type === "order" && ev.colour === "red" && OPEN.includes(ev.state)) beep();
    clearTimeout(pending);
    pending = setTimeout(() => { loadWall(); loadFigures(); }, 50);
  }, document.getElementById("live-dot"));
  setInterval(loadDevices, 60000);
})();
