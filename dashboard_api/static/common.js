"use strict";
// Shared helpers for the pages: messages (one catalogue, /i18n/<lang>.json), times in the
// site's zone, authenticated fetch, live events, SVG charts. No libraries.

const LANG = document.documentElement.lang || "zh-CN";
let MSG = {};
let TZ = "Asia/Shanghai";
const ready = fetch("/i18n/" + LANG + ".json").then((r) => r.json()).then((m) => { MSG = m; });

function t(key, params = {}) {
  const text = MSG[key];
  if (text === undefined) return key;
  return text.replace(/\{(\w+)\}/g, (m, k) => (params[k] === undefined ? m : String(params[k])));
}
function tOr(key, fallback, params) { return MSG[key] === undefined ? t(fallback, params) : t(key, params); }

function setCookieLocale(loc) { document.cookie = "eldercare_locale=" + loc + "; path=/; max-age=31536000; samesite=strict"; }
async function switchLocale(loc) {
  if (token()) { try { await api("/api/me/locale", { method: "PUT", json: { locale: loc } }); } catch (e) { /* still switch the page */ } }
  setCookieLocale(loc);
  location.reload();
}
function languageSwitch() {
  const sel = document.getElementById("lang");
  if (!sel) return;
  sel.value = LANG;
  sel.onchange = () => switchLocale(sel.value);
}
function largeText() {
  const b = document.getElementById("large");
  const apply = () => { const on = localStorage.getItem("large") === "1"; document.body.classList.toggle("large", on); if (b) b.textContent = t(on ? "common.normal_text" : "common.large_text"); };
  if (b) b.onclick = () => { localStorage.setItem("large", localStorage.getItem("large") === "1" ? "0" : "1"); apply(); };
  apply();
}

function token() { return sessionStorage.getItem("token"); }

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {}, { Authorization: "Bearer " + token(), "Accept-Language": LANG });
  if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401) { sessionStorage.removeItem("token"); location.href = "/login"; throw new Error("signed out"); }
  if (!r.ok) {
    let why = t("error.generic", { status: r.status });
    try {
      const b = await r.json();
      if (typeof b.detail === "string") why = b.detail;
      else if (Array.isArray(b.detail)) why = (b.message || why) + " (" + b.detail.map((d) => (d.loc || []).slice(1).join(".")).join(", ") + ")";
    } catch (e) { /* not JSON */ }
    const e = new Error(why); e.status = r.status; throw e;
  }
  return r.status === 204 ? null : r.json();
}

async function requireSignIn() {
  await ready;
  languageSwitch(); largeText();
  if (!token()) { location.href = "/login"; throw new Error("signed out"); }
  const me = await api("/api/me");
  TZ = me.timezone || TZ;
  if (me.locale && me.locale !== LANG) { setCookieLocale(me.locale); location.reload(); throw new Error("reloading"); }
  return me;
}

async function signOut() {
  try { await api("/api/auth/logout", { method: "POST" }); } catch (e) { /* already gone */ }
  sessionStorage.removeItem("token");
  location.href = "/login";
}

// Server-Sent Events with a single-use ticket; reconnects with a fresh ticket.
function live(onEvent, dot) {
  let source = null;
  async function connect() {
    try {
      const t = await api("/api/live/ticket", { method: "POST" });
      source = new EventSource("/api/live?ticket=" + encodeURIComponent(t.ticket));
      source.addEventListener("hello", () => { if (dot) dot.classList.add("on"); onEvent({ type: "hello" }); });
      source.addEventListener("order", (m) => onEvent(JSON.parse(m.data)));
      source.addEventListener("signed-out", () => { source.close(); sessionStorage.removeItem("token"); location.href = "/login"; });
      source.onerror = () => { if (dot) dot.classList.remove("on"); source.close(); setTimeout(connect, 2000); };
    } catch (e) { setTimeout(connect, 3000); }
  }
  connect();
}

let audio = null;
function enableSound() { audio = audio || new (window.AudioContext || window.webkitAudioContext)(); audio.resume(); }
function beep() {
  if (!audio) return;
  [0, 0.3, 0.6].forEach((at) => {
    const o = audio.createOscillator(), g = audio.createGain();
    o.type = "square"; o.frequency.value = 880; g.gain.value = 0.15;
    o.connect(g); g.connect(audio.destination);
    o.start(audio.currentTime + at); o.stop(audio.currentTime + at + 0.18);
  });
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// Times in the site's zone: "14:05" today, with the date on any other day, the year when not
// this year (the same rules as devices/i18n.format_time).
function zoned(d) {
  const p = {};
  for (const x of new Intl.DateTimeFormat("en-GB", { timeZone: TZ, year: "numeric", month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(d)) p[x.type] = x.value;
  return { year: +p.year, month: +p.month, day: +p.day, hm: p.hour + ":" + p.minute };
}
function fmtTime(s) {
  if (!s) return t("common.dash");
  const z = zoned(new Date(s)), now = zoned(new Date());
  const p = Object.assign({ mon: t("month." + z.month) }, z);
  if (z.year === now.year && z.month === now.month && z.day === now.day) return t("fmt.time_today", p);
  return t(z.year === now.year ? "fmt.date_time" : "fmt.date_time_year", p);
}
function fmtDate(s) { const z = zoned(new Date(s)); return t("fmt.date", Object.assign({ mon: t("month." + z.month) }, z)); }
function fmtHour(s) { const z = zoned(new Date(s)); return t("fmt.hour", { h: z.hm.slice(0, 2) }); }
function fmtDur(sec) {
  const s = Math.max(0, Math.round(sec));
  if (s < 120) return t("dur.s", { n: s });
  const m = Math.floor(s / 60), h = Math.floor(m / 60);
  if (!h) return t("dur.min", { n: m });
  return m % 60 ? t("dur.h_min", { h, m: m % 60 }) : t("dur.h", { n: h });
}
function fmtAgo(s) {
  if (!s) return t("ago.never");
  const d = (Date.now() - new Date(s).getTime()) / 1000;
  if (d < 5) return t("ago.now");
  if (d < 90) return t("ago.s", { n: Math.round(d) });
  if (d < 5400) return t("ago.min", { n: Math.round(d / 60) });
  if (d < 129600) return t("ago.h", { n: Math.round(d / 3600) });
  return t("ago.days", { n: Math.round(d / 86400) });
}
function fmtSecs(s) { return s === null || s === undefined ? t("common.dash") : fmtDur(s); }

const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) { const e = document.createElementNS(SVGNS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; }

// A chart of one or more series over time: bars for counts/durations, lines for rates.
// series: [{values:[number|null], kind:"bar"|"line", colour, label}], labels: [string]
function chart(title, labels, series, opts = {}) {
  const W = 320, H = opts.height || 150, L = 34, B = 20, T = 20;
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const max = opts.max || Math.max(1, ...all) * 1.1, min = opts.min !== undefined ? opts.min : 0;
  const n = Math.max(1, labels.length), bw = (W - L) / n;
  const y = (v) => T + (H - T - B) * (1 - (v - min) / (max - min || 1));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title });
  root.append(svg("text", { x: L, y: 11 }), svg("line", { x1: L, x2: W, y1: H - B, y2: H - B, stroke: "#ccd" }));
  root.firstChild.textContent = title;
  for (const frac of [0, 0.5, 1]) {
    const v = min + (max - min) * frac, t = svg("text", { x: 2, y: y(v) + 3 });
    t.textContent = v >= 10 ? Math.round(v) : v.toFixed(1); root.append(t);
  }
  // as many labels as fit: CJK characters are about a font size wide, others about half
  const wide = Math.max(1, ...labels.map((l) => [...String(l)].reduce((w, c) => w + (c.charCodeAt(0) > 0x2e80 ? 13 : 7.5), 0)));
  const step = Math.max(1, Math.ceil((n * (wide + 8)) / (W - L)));
  labels.forEach((lab, i) => { if (i % step === 0) { const tx = svg("text", { x: L + i * bw + 1, y: H - 4 }); tx.textContent = lab; root.append(tx); } });
  for (const s of series) {
    if (s.kind === "bar") {
      s.values.forEach((v, i) => { if (v) root.append(svg("rect", { x: L + i * bw + 1, y: y(v), width: Math.max(1, bw - 2), height: H - B - y(v), fill: s.colour })); });
    } else {
      let d = "";
      s.values.forEach((v, i) => { if (v === null || v === undefined) return; d += (d && s.values[i - 1] != null ? "L" : "M") + (L + i * bw + bw / 2).toFixed(1) + "," + y(v).toFixed(1); });
      if (d) root.append(svg("path", { d, fill: "none", stroke: s.colour, "stroke-width": 2 }));
      // a value with no neighbour (one hour of data) is a dot, or it would draw nothing
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        const lone = (i === 0 || s.values[i - 1] == null) && (i === s.values.length - 1 || s.values[i + 1] == null);
        if (lone) root.append(svg("circle", { cx: (L + i * bw + bw / 2).toFixed(1), cy: y(v).toFixed(1), r: 3, fill: s.colour }));
      });
    }
  }
  return root;
}

// What the inactivity watch promises a resident now (GET /api/residents/{id}/watch): when the
// carers are alerted at the latest if nothing moves, and who is asked first.
function watchLines(w) {
  const out = [];
  const c = w.current;
  if (w.away) out.push(el("p", {}, t("watch.away")));
  else if (!c) out.push(el("p", {}, t("watch.never")));
  else {
    out.push(el("p", { class: "watch-now" }, t("watch.now", { time: fmtTime(c.alert_by), where: tOr("watch.state." + c.state, "watch.state.active") })));
    if (c.ask_from) out.push(el("p", { class: "muted" }, t(w.asks_on === "sms" ? "watch.ask_sms" : "watch.ask", { time: fmtTime(c.ask_from), device: w.asks_on || "" })));
  }
  out.push(el("p", { class: "muted" }, w.routine_learned ? t("watch.learned", { days: Math.floor(w.history_days) }) : t("watch.defaults")));
  if (w.bed_exit_watch) out.push(el("p", { class: "muted" }, t("watch.bed_exit")));
  return out;
}
