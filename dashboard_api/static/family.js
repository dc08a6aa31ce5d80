"use strict";
const OUTCOME = { emergency_handled: "help given on site", handled_by_phone: "handled by phone", false_alarm: "false alarm" };
const STATE = { queued: "waiting for a carer", offered: "offered to a carer", accepted: "a carer is on it", en_route: "carer on the way", on_site: "carer with them", resolved: "handled", cancelled: "cancelled" };
let rid = null;

function fact(label, value, bad) { return el("div", { class: "figure" }, el("b", { class: bad ? "bad" : "" }, value), label); }

async function loadNow() {
  const s = await api(`/api/residents/${rid}/status`);
  document.getElementById("title").textContent = s.full_name;
  document.getElementById("now").replaceChildren(
    fact("open alerts", s.open_alerts ? s.open_alerts + " open" : "none", s.open_alerts > 0),
    fact("last movement", fmtAgo(s.last_motion_at)),
    fact("in bed", s.in_bed === null ? "unknown" : s.in_bed ? "yes, since " + fmtTime(s.in_bed_since) : "no"),
    fact("heart rate", s.hr === null ? "—" : Math.round(s.hr) + " /min"),
    fact("breathing", s.rr === null ? "—" : Math.round(s.rr) + " /min"),
    fact("devices", s.devices_offline || s.devices_low_battery ? `${s.devices_offline} offline, ${s.devices_low_battery} low battery` : `${s.devices} working`, s.devices_offline > 0));
}

async function loadWeek() {
  const end = new Date(), start = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth(), end.getUTCDate() - 6));
  const t = await api(`/api/residents/${rid}/timeline?bucket=day&start=${start.toISOString()}&end=${end.toISOString()}`);
  const labels = t.points.map((p) => new Date(p.start).toLocaleDateString([], { weekday: "short" }));
  document.getElementById("week").replaceChildren(
    chart("Activity (movements per day)", labels, [{ kind: "bar", colour: "#1f77b4", values: t.points.map((p) => p.motion_events) }], { height: 120 }),
    chart("Time in bed (hours per day)", labels, [{ kind: "bar", colour: "#7e57c2", values: t.points.map((p) => p.in_bed_minutes / 60) }], { height: 120, max: 24 }),
    chart("Heart rate (average per day)", labels, [{ kind: "line", colour: "#d32f2f", values: t.points.map((p) => p.hr_avg) }], { height: 120, min: 40, max: 120 }));
}

async function loadAlerts() {
  const list = await api(`/api/alerts?resident_id=${rid}&limit=10`);
  const box = document.getElementById("alerts");
  if (!list.length) { box.replaceChildren(el("p", { class: "muted" }, "No alerts. All quiet.")); return; }
  const details = await Promise.all(list.map((a) => api(`/api/alerts/${a.alert_id}`)));
  box.replaceChildren(...details.map((d) => el("div", { class: `timeline-item ${d.colour}`, "data-alert-id": d.alert_id, "data-state": d.order_state || "" },
    el("b", {}, d.kind.toUpperCase(), " · ", fmtTime(d.occurred_at)),
    el("div", {}, d.explanation),
    el("div", { class: "handled" }, STATE[d.order_state] || "recorded",
      d.seconds_to_accept !== null ? ` · answered in ${fmtSecs(d.seconds_to_accept)}` : "",
      d.outcome ? ` · ${OUTCOME[d.outcome] || d.outcome}` : "", d.note ? ` — “${d.note}”` : ""),
    el("div", { class: "muted" }, d.steps.map((s) => `${fmtTime(s.at)} ${STATE[s.state] || s.state}${s.by !== "system" ? " (" + s.by + ")" : ""}`).join(" → ")))));
}

async function loadNotifications() {
  const box = document.getElementById("notifications");
  let prefs;
  try { prefs = await api("/api/notifications/preferences"); }
  catch (e) { box.replaceChildren(el("p", { class: "muted" }, e.status === 404 ? "Notification settings are not available on this server yet." : "Could not load notification settings.")); return; }
  const form = el("form", {});
  const fields = [];
  const walk = (obj, path) => Object.entries(obj).forEach(([k, v]) => {
    const p = path.concat(k), label = p.join(" › ").replace(/_/g, " ");
    if (typeof v === "boolean") { const i = el("input", { type: "checkbox" }); i.checked = v; fields.push([p, i, "bool"]); form.append(el("label", { style: "display:block" }, i, " ", label)); }
    else if (typeof v === "number" || typeof v === "string" || v === null) { const i = el("input", { value: v === null ? "" : v }); fields.push([p, i, typeof v]); form.append(el("label", { style: "display:block" }, label, " ", i)); }
    else if (v && typeof v === "object" && !Array.isArray(v)) walk(v, p);
  });
  walk(prefs, []);
  const msg = el("span", { class: "muted" });
  form.append(el("button", { type: "submit" }, "Save"), " ", msg);
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    for (const [p, i, kind] of fields) {
      let o = prefs; p.slice(0, -1).forEach((k) => { o = o[k]; });
      o[p[p.length - 1]] = kind === "bool" ? i.checked : kind === "number" ? Number(i.value) : i.value === "" && kind === "object" ? null : i.value;
    }
    try { prefs = await api("/api/notifications/preferences", { method: "PUT", json: prefs }); msg.textContent = "Saved."; }
    catch (e) { msg.textContent = "Not saved (" + (e.status || "error") + ")."; }
  };
  box.replaceChildren(form);
}

(async () => {
  const me = await requireSignIn();
  document.getElementById("logout").onclick = signOut;
  const rs = await api("/api/residents");
  if (!rs.length) { document.getElementById("now").replaceChildren(el("p", {}, "No relative is linked to this account.")); return; }
  const sel = document.getElementById("relative");
  sel.replaceChildren(...rs.map((r) => el("option", { value: r.resident_id }, r.full_name)));
  sel.hidden = rs.length < 2;
  rid = rs[0].resident_id;
  const all = () => Promise.all([loadNow(), loadWeek(), loadAlerts()]);
  sel.onchange = () => { rid = sel.value; all(); };
  await Promise.all([all(), loadNotifications()]);
  let pending = null;
  live(() => { clearTimeout(pending); pending = setTimeout(() => { loadNow(); loadAlerts(); }, 50); }, document.getElementById("live-dot"));
  if (me.role !== "family") document.getElementById("title").append(" (staff view)");
})();
