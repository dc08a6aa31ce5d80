"use strict";
// Shared helpers for the pages: authenticated fetch, live events, SVG charts. No libraries.

function token() { return sessionStorage.getItem("token"); }

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {}, { Authorization: "Bearer " + token() });
  if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401) { sessionStorage.removeItem("token"); location.href = "/login"; throw new Error("signed out"); }
  if (!r.ok) { const e = new Error(path + " -> " + r.status); e.status = r.status; throw e; }
  return r.status === 204 ? null : r.json();
}

async function requireSignIn() {
  if (!token()) { location.href = "/login"; throw new Error("signed out"); }
  return api("/api/me");
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

function fmtTime(s) { return s ? new Date(s).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }) : "—"; }
function fmtAgo(s) {
  if (!s) return "never";
  const d = (Date.now() - new Date(s).getTime()) / 1000;
  if (d < 90) return Math.max(0, Math.round(d)) + " s ago";
  if (d < 5400) return Math.round(d / 60) + " min ago";
  if (d < 129600) return Math.round(d / 3600) + " h ago";
  return Math.round(d / 86400) + " days ago";
}
function fmtSecs(s) { return s === null || s === undefined ? "—" : s < 120 ? Math.round(s) + " s" : (s / 60).toFixed(1) + " min"; }

const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) { const e = document.createElementNS(SVGNS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; }

// A chart of one or more series over time: bars for counts/durations, lines for rates.
// series: [{values:[number|null], kind:"bar"|"line", colour, label}], labels: [string]
function chart(title, labels, series, opts = {}) {
  const W = 420, H = opts.height || 130, L = 30, B = 16, T = 16;
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
  const step = Math.ceil(n / 7);
  labels.forEach((lab, i) => { if (i % step === 0) { const t = svg("text", { x: L + i * bw + 1, y: H - 4 }); t.textContent = lab; root.append(t); } });
  for (const s of series) {
    if (s.kind === "bar") {
      s.values.forEach((v, i) => { if (v) root.append(svg("rect", { x: L + i * bw + 1, y: y(v), width: Math.max(1, bw - 2), height: H - B - y(v), fill: s.colour })); });
    } else {
      let d = "";
      s.values.forEach((v, i) => { if (v === null || v === undefined) return; d += (d && s.values[i - 1] != null ? "L" : "M") + (L + i * bw + bw / 2).toFixed(1) + "," + y(v).toFixed(1); });
      if (d) root.append(svg("path", { d, fill: "none", stroke: s.colour, "stroke-width": 2 }));
    }
  }
  return root;
}
