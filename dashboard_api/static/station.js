"use strict";

async function loadFigures() {
  const f = await api("/api/stats/today?tz=" + encodeURIComponent(TZ));
  const box = document.getElementById("figures");
  box.replaceChildren(...[
    ["station.open_now", f.open_now, false], ["station.overdue", f.overdue_now, f.overdue_now > 0],
    ["station.opened_today", f.opened, false], ["station.red_today", f.opened_red, false],
    ["station.resolved_today", f.resolved, false], ["station.median_accept", fmtSecs(f.median_accept_s), false],
    ["station.slowest_accept", fmtSecs(f.max_accept_s), false],
  ].map(([k, v, bad]) => el("div", { class: "figure" }, el("b", { class: bad ? "bad" : "" }, v), t(k))));
}

async function loadWall() {
  await loadWallCards(document.getElementById("show-done").checked, async (c, what, outcome) => {
    await wallAct(c, what, outcome);
    await Promise.all([loadWall(), loadFigures()]);
  });
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
  const tl = await api(`/api/residents/${rid}/timeline?start=${start.toISOString()}&end=${end.toISOString()}`);
  const hourly = tl.bucket_seconds < 86400;
  // hourly labels are the date where the day changes, else the hour; daily and weekly are dates
  let lastDay = "";
  const labels = tl.points.map((p) => {
    if (!hourly) return fmtDate(p.start);
    const day = fmtDate(p.start), label = day !== lastDay ? day : fmtHour(p.start);
    lastDay = day; return label;
  });
  const per = tl.bucket_seconds / 3600;
  const act = hourly ? "chart.activity_hour" : tl.bucket_seconds === 86400 ? "chart.activity_day" : "chart.activity_week";
  document.getElementById("charts").replaceChildren(
    chart(t(act), labels, [{ kind: "bar", colour: "#1f77b4", values: tl.points.map((p) => p.motion_events) }]),
    chart(t("chart.in_bed"), labels, [{ kind: "bar", colour: "#7e57c2", values: tl.points.map((p) => p.in_bed_minutes / 60) }], { max: per }),
    chart(t("chart.hr"), labels, [
      { kind: "line", colour: "#ef9a9a", values: tl.points.map((p) => p.hr_max) },
      { kind: "line", colour: "#d32f2f", values: tl.points.map((p) => p.hr_avg) },
      { kind: "line", colour: "#ef9a9a", values: tl.points.map((p) => p.hr_min) }], { min: 40, max: 140 }),
    chart(t("chart.rr"), labels, [{ kind: "line", colour: "#00897b", values: tl.points.map((p) => p.rr_avg) }], { min: 0, max: 40 }));
}

// The selected resident's watch: now, and for each place they rest, how long from the last
// movement to an alert by the hour they stop moving.
async function loadWatch() {
  const rid = document.getElementById("resident").value;
  if (!rid) return;
  const box = document.getElementById("watch");
  let w;
  try { w = await api(`/api/residents/${rid}/watch`); }
  catch (e) { box.replaceChildren(el("p", { class: "muted" }, t("watch.unavailable"))); return; }
  const hours = (p) => p.hours.map((h) => String(h.hour).padStart(2, "0"));
  box.replaceChildren(...watchLines(w), el("p", { class: "muted" }, t("watch.chart_axis")), el("div", { class: "charts" },
    ...w.places.map((p) => chart(t("watch.chart", { place: t("watch.place." + p.place) }), hours(p),
      [{ kind: "bar", colour: "#00897b", values: p.hours.map((h) => h.alert_after_s / 3600) }]))));
}

async function loadDevices() {
  const ds = await api("/api/device-health?problems_only=true&limit=50");
  const box = document.getElementById("devices");
  if (!ds.length) { box.replaceChildren(el("p", { class: "muted" }, t("station.all_devices_ok"))); return; }
  box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, ...["station.col_device", "station.col_where", "station.col_status", "station.col_battery", "station.col_seen"].map((h) => el("th", {}, t(h))))),
    el("tbody", {}, ...ds.map((d) => el("tr", {},
      el("td", {}, d.device_id, el("div", { class: "muted" }, tOr("device." + d.kind, "device.other"))),
      el("td", {}, d.resident_name || [d.room_name, d.site_id].filter(Boolean).join(" · ")),
      el("td", { class: d.online !== true || d.stale ? "bad" : "" }, t(d.online === null ? "station.never_seen" : !d.online ? "station.offline" : d.stale ? "station.silent" : "station.online")),
      el("td", { class: d.low_battery ? "bad" : "" }, d.battery === null ? t("common.dash") : Math.round(d.battery) + " %"),
      el("td", {}, fmtAgo(d.last_seen_at)))))));
}

(async () => {
  const me = await requireSignIn();
  if (me.role === "family" || me.role === "operator") { location.href = me.role === "family" ? "/family" : "/console"; return; }
  document.getElementById("who").textContent = me.username;
  document.getElementById("logout").onclick = signOut;
  document.getElementById("sound").onclick = (e) => { enableSound(); beep(); e.target.textContent = t("station.sound_is_on"); };
  document.getElementById("show-done").onchange = loadWall;
  document.getElementById("resident").onchange = () => Promise.all([loadTimeline(), loadWatch()]);
  document.getElementById("range").onchange = loadTimeline;
  await Promise.all([loadFigures(), loadWall(), loadResidents().then(() => Promise.all([loadTimeline(), loadWatch()])), loadDevices()]);
  let pending = null;
  live((ev) => {
    if (ev.type === "order" && ev.colour === "red" && WALL_OPEN.includes(ev.state)) beep();
    clearTimeout(pending);
    pending = setTimeout(() => { loadWall(); loadFigures(); }, 50);
  }, document.getElementById("live-dot"));
  setInterval(loadDevices, 60000);
})();
