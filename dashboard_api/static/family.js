"use strict";
// The family page: the relative now, the week, alerts told in plain words with roles, and a
// plain notification settings form (no internal fields).
const EVENT_KINDS = ["sos", "fall", "smoke", "wandering", "bed_exit", "inactivity", "vitals_hr", "vitals_spo2", "vitals_rr", "no_vital_signs", "device_offline", "low_battery"];
let rid = null;

function fact(label, value, bad) { return el("div", { class: "figure" }, el("b", { class: bad ? "bad" : "" }, value), label); }

async function loadNow() {
  const s = await api(`/api/residents/${rid}/status`);
  document.getElementById("title").textContent = s.full_name;
  document.getElementById("now").replaceChildren(
    fact(t("family.open_alerts"), s.open_alerts ? t("family.open_n", { n: s.open_alerts }) : t("common.none"), s.open_alerts > 0),
    fact(t("family.last_movement"), fmtAgo(s.last_motion_at)),
    fact(t("family.in_bed"), s.in_bed === null ? t("common.unknown") : s.in_bed ? t("family.in_bed_since", { time: fmtTime(s.in_bed_since) }) : t("common.no")),
    fact(t("family.heart_rate"), s.hr === null ? t("common.dash") : t("family.per_min", { n: Math.round(s.hr) })),
    fact(t("family.breathing"), s.rr === null ? t("common.dash") : t("family.per_min", { n: Math.round(s.rr) })),
    fact(t("family.devices"), s.devices_offline || s.devices_low_battery ? t("family.devices_bad", { offline: s.devices_offline, low: s.devices_low_battery }) : t("family.devices_ok", { n: s.devices }), s.devices_offline > 0));
}

async function loadWatch() {
  const box = document.getElementById("watch");
  try { box.replaceChildren(...watchLines(await api(`/api/residents/${rid}/watch`))); }
  catch (e) { box.replaceChildren(el("p", { class: "muted" }, t("watch.unavailable"))); }
}

async function loadWeek() {
  const end = new Date(), start = new Date(end - 6.5 * 86400e3);
  const tl = await api(`/api/residents/${rid}/timeline?bucket=day&start=${start.toISOString()}&end=${end.toISOString()}`);
  const labels = tl.points.map((p) => fmtDate(p.start));
  document.getElementById("week").replaceChildren(
    chart(t("chart.activity_day"), labels, [{ kind: "bar", colour: "#1f77b4", values: tl.points.map((p) => p.motion_events) }]),
    chart(t("chart.in_bed_day"), labels, [{ kind: "bar", colour: "#7e57c2", values: tl.points.map((p) => p.in_bed_minutes / 60) }], { max: 24 }),
    chart(t("chart.hr_day"), labels, [{ kind: "line", colour: "#d32f2f", values: tl.points.map((p) => p.hr_avg) }], { min: 40, max: 120 }));
}

function role(r) { return tOr("role." + (r || "system"), "role.system"); }

// Order steps in plain words: repeated offers are one line saying what they mean.
function story(d) {
  const out = [];
  let offers = 0;
  for (const s of d.steps) {
    if (s.state === "offered") { offers++; if (offers > 1) continue; }
    out.push(t("family.step", { time: fmtTime(s.at), what: t("state." + s.state) + (s.role && s.role !== "system" ? " · " + role(s.role) : "") }));
  }
  return { line: out.join(" → "), offers };
}

async function loadAlerts() {
  const list = await api(`/api/alerts?resident_id=${rid}&limit=10`);
  const box = document.getElementById("alerts");
  if (!list.length) { box.replaceChildren(el("p", { class: "muted" }, t("family.quiet"))); return; }
  const details = await Promise.all(list.map((a) => api(`/api/alerts/${a.alert_id}`)));
  box.replaceChildren(...details.map((d) => {
    const accepted = d.steps.find((s) => s.state === "accepted");
    const s = story(d);
    let handled = d.order_state ? t("state." + d.order_state) : t("state.none");
    if (d.seconds_to_accept !== null) handled += " · " + t("family.answered_in", { who: role(accepted && accepted.role), dur: fmtSecs(d.seconds_to_accept) });
    if (d.seconds_to_arrive !== null && d.seconds_to_arrive !== undefined) handled += t("family.arrived_after", { dur: fmtSecs(d.seconds_to_arrive) });
    if (d.outcome) handled += " · " + t("outcome." + d.outcome);
    return el("div", { class: `timeline-item ${d.colour}`, "data-alert-id": d.alert_id, "data-state": d.order_state || "" },
      el("b", {}, tOr("kind." + d.kind, "kind.other"), " · ", fmtTime(d.occurred_at)),
      el("div", {}, d.explanation),
      el("div", { class: "handled" }, handled, d.note ? " — " + t("family.note", { note: d.note }) : ""),
      el("div", { class: "muted" }, s.line),
      s.offers > 1 ? el("div", { class: "muted" }, t("family.escalated", { n: s.offers })) : "");
  }));
}

function check(label, on, attrs = {}) {
  const i = el("input", Object.assign({ type: "checkbox" }, attrs)); i.checked = !!on;
  return [i, el("label", { class: "check" }, i, " ", label)];
}

// Which address field a channel kind uses: phone for SMS and voice, WeChat, e-mail.
function fieldOf(kind) { return /sms|voice/.test(kind) ? "phone" : /wechat|wecom/.test(kind) ? "wechat" : kind === "email" ? "email" : null; }

function settingsForm(prefs) {
  const form = el("form", { id: "prefs-form", class: "prefs" });
  const allEvents = check(t("family.all_events"), prefs.kinds === null, { id: "all-kinds" });
  const kinds = EVENT_KINDS.map((k) => [k, check(tOr("kind." + k, "kind.other"), prefs.kinds === null || prefs.kinds.includes(k), { "data-kind": k })]);
  const colours = ["red", "yellow", "green"].map((c) => [c, check(t("colour." + c), prefs.colours.includes(c), { "data-colour": c })]);
  const orderUpdates = check(t("family.order_updates"), prefs.order_updates, { id: "order-updates" });
  const daily = check(t("family.daily_summary"), prefs.daily_summary, { id: "daily-summary" });
  const addr = (f) => (prefs.channels.find((c) => fieldOf(c.kind) === f) || {}).address || "";
  const inputs = {
    phone: el("input", { id: "phone", type: "tel", inputmode: "tel", autocomplete: "tel", value: addr("phone"), pattern: "\\+?[0-9]{6,20}" }),
    wechat: el("input", { id: "wechat", value: addr("wechat"), maxlength: 128 }),
    email: el("input", { id: "email", type: "email", autocomplete: "email", value: addr("email") }),
  };
  const usable = prefs.channel_kinds.filter((k) => fieldOf(k));
  const chans = usable.map((k) => [k, check(tOr("channel." + k, "channel.other"), prefs.channels.some((c) => c.kind === k), { "data-channel": k })]);
  const qs = el("input", { id: "quiet-start", type: "time", value: prefs.quiet_start ? prefs.quiet_start.slice(0, 5) : "" });
  const qe = el("input", { id: "quiet-end", type: "time", value: prefs.quiet_end ? prefs.quiet_end.slice(0, 5) : "" });
  const lang = el("select", { id: "notify-lang" }, el("option", { value: "zh-CN" }, t("lang.zh-CN")), el("option", { value: "en" }, t("lang.en")));
  lang.value = prefs.language === "en" ? "en" : "zh-CN";
  allEvents[0].onchange = () => kinds.forEach(([, [i]]) => { i.checked = allEvents[0].checked || i.checked; i.disabled = allEvents[0].checked; });
  kinds.forEach(([, [i]]) => { i.disabled = allEvents[0].checked; });
  const fields = ["phone", "wechat", "email"].filter((f) => usable.some((k) => fieldOf(k) === f));
  const msg = el("span", { class: "muted", id: "prefs-msg", role: "status" });
  form.append(
    el("fieldset", {}, el("legend", {}, t("family.which_events")), allEvents[1], el("div", { class: "checks" }, ...kinds.map(([, c]) => c[1]))),
    el("fieldset", {}, el("legend", {}, t("family.colours")), el("div", { class: "checks" }, ...colours.map(([, c]) => c[1])), orderUpdates[1], daily[1]),
    el("fieldset", {}, el("legend", {}, t("family.channels")),
      ...fields.map((f) => el("label", { class: "field" }, t("family." + f), " ", inputs[f])),
      el("div", { class: "checks" }, ...chans.map(([, c]) => c[1]))),
    el("fieldset", {}, el("legend", {}, t("family.quiet_hours")),
      el("label", { class: "field" }, t("family.quiet_from"), " ", qs), el("label", { class: "field" }, t("family.quiet_to"), " ", qe)),
    el("label", { class: "field" }, t("family.language"), " ", lang),
    el("div", {}, el("button", { type: "submit", id: "prefs-save" }, t("common.save")), " ", msg));
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const channels = chans.filter(([, [i]]) => i.checked).map(([k]) => ({ kind: k, address: inputs[fieldOf(k)].value.trim() }))
      .concat(prefs.channels.filter((c) => !fieldOf(c.kind)));  // keep channels this form does not show (a webhook)
    const body = {
      colours: colours.filter(([, [i]]) => i.checked).map(([c]) => c),
      kinds: allEvents[0].checked ? null : kinds.filter(([, [i]]) => i.checked).map(([k]) => k),
      order_updates: orderUpdates[0].checked, daily_summary: daily[0].checked, channels,
      quiet_start: qs.value || null, quiet_end: qe.value || null,
      timezone: prefs.timezone, language: lang.value === "en" ? "en" : "zh",
    };
    try {
      prefs = await api("/api/notifications/preferences", { method: "PUT", json: body });
      msg.textContent = t("common.saved");
      if (lang.value !== LANG) await switchLocale(lang.value);
    } catch (e) { msg.textContent = t("common.not_saved", { reason: e.message }); }
  };
  return form;
}

async function loadNotifications() {
  const box = document.getElementById("notifications");
  let prefs;
  try { prefs = await api("/api/notifications/preferences"); }
  catch (e) { box.replaceChildren(el("p", { class: "muted" }, t(e.status === 404 ? "family.settings_unavailable" : "family.settings_failed"))); return; }
  box.replaceChildren(settingsForm(prefs));
}

(async () => {
  const me = await requireSignIn();
  document.getElementById("logout").onclick = signOut;
  const rs = await api("/api/residents");
  if (!rs.length) { document.getElementById("now").replaceChildren(el("p", {}, t("family.no_relative"))); return; }
  const sel = document.getElementById("relative");
  sel.replaceChildren(...rs.map((r) => el("option", { value: r.resident_id }, r.full_name)));
  sel.hidden = rs.length < 2;
  rid = rs[0].resident_id;
  const all = () => Promise.all([loadNow(), loadWatch(), loadWeek(), loadAlerts()]);
  sel.onchange = () => { rid = sel.value; all(); };
  // live first: what happens while the page loads is not missed, and one slow or failed
  // section does not keep the page from following the relative
  let pending = null;
  live(() => { clearTimeout(pending); pending = setTimeout(() => { loadNow(); loadWatch(); loadAlerts(); }, 50); }, document.getElementById("live-dot"));
  await Promise.all([all(), me.role === "family" ? loadNotifications() : Promise.resolve()]);
  if (me.role !== "family") document.getElementById("title").append(" ", t("family.staff_view"));
})();
