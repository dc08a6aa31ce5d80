"use strict";
// The 96345 centre console: every site's orders by colour and state with their deadlines
// (the wall's countdown, wall.js), the hotline service-order form with a resident look-up by
// name or phone, each community's most frequent requests this month, the provider league.
const COLOURS = ["red", "yellow", "green"];
const GROUPS = { waiting: WALL_OPEN, in_hand: WALL_ACTIVE, closed: ["resolved", "cancelled"] };
let chosen = null;

function caseLabel(c) { return MSG["category." + c] !== undefined ? t("category." + c) : tOr("kind." + c, "kind.other"); }
function pct(x) { return x === null || x === undefined ? t("common.dash") : t("console.pct", { n: Math.round(x * 100) }); }

function orderCard(o) {
  const open = WALL_OPEN.includes(o.state), done = GROUPS.closed.includes(o.state);
  const where = [o.site_name, o.community, o.room_name || o.address].filter(Boolean).join(" · ");
  return el("article", {
    class: `alert ${o.colour}${done ? " done" : ""}${o.overdue ? " overdue" : ""}`,
    "data-order-id": o.order_id, "data-state": o.state, "data-kind": o.kind,
  },
    el("div", { class: "who" }, o.resident_name || o.site_name, " ", el("span", { class: "pill" }, caseLabel(o.category))),
    el("div", { class: "where" }, where),
    el("div", { class: "meta" }, t("wall.opened", { time: fmtTime(o.opened_at), ago: fmtAgo(o.opened_at) }), " · ",
      el("span", { class: "state" }, t("state." + o.state))),
    el("div", { class: "meta" }, o.responder ? t("console.responder", { name: o.responder }) : t("console.no_responder")),
    o.note ? el("div", { class: "meta" }, o.note) : "",
    ...(o.late_replies || []).map((r) => el("div", { class: "meta late-reply", "data-reading": r.reading },
      t("order.late_reply", { time: fmtTime(r.at), text: r.text }))),
    open ? el("div", { class: "countdown", "data-deadline": o.accept_deadline }) : "",
    done ? el("div", { class: "meta" }, t("console.closed_at", { time: fmtTime(o.closed_at) })) : "");
}

async function loadBoard() {
  const showDone = document.getElementById("show-done").checked;
  const orders = await api("/api/console/orders");
  const board = document.getElementById("board");
  board.replaceChildren(...COLOURS.map((colour) => {
    const mine = orders.filter((o) => o.colour === colour);
    const overdue = mine.filter((o) => o.overdue).length;
    const column = el("section", { class: "column " + colour, "data-colour": colour, "aria-label": t("console.colour." + colour) },
      el("h3", {}, t("console.colour." + colour), " ", el("span", { class: "pill" }, t("console.count", { n: mine.filter((o) => !GROUPS.closed.includes(o.state)).length })),
        overdue ? el("span", { class: "pill count" }, t("console.overdue_n", { n: overdue })) : ""));
    for (const [group, states] of Object.entries(GROUPS)) {
      if (group === "closed" && !showDone) continue;
      const rows = mine.filter((o) => states.includes(o.state));
      column.append(el("h4", {}, t("console.group." + group)),
        rows.length ? el("div", { class: "stack", "data-group": group }, ...rows.map(orderCard)) : el("p", { class: "muted" }, t("common.none")));
    }
    return column;
  }));
  tickCountdowns();
  document.getElementById("updated").textContent = t("console.updated", { time: fmtTime(new Date().toISOString()) });
}

function monthStart() {
  // the first of this month, 00:00 in the site's zone, as an instant
  const z = zoned(new Date()), guess = Date.UTC(z.year, z.month - 1, 1);
  const g = zoned(new Date(guess));
  const shown = Date.UTC(g.year, g.month - 1, g.day, +g.hm.slice(0, 2), +g.hm.slice(3, 5));
  return new Date(guess - (shown - guess)).toISOString();
}

async function loadRequests() {
  const rows = await api("/api/figures/time-to-help?by=community&since=" + encodeURIComponent(monthStart()));
  const box = document.getElementById("requests");
  box.replaceChildren(...(rows.length ? rows.map((r) => el("div", { class: "card-row", "data-community": r.group },
    el("strong", {}, r.group), " ", el("span", { class: "muted" }, t("console.count", { n: r.orders })),
    el("ol", { class: "cases" }, ...r.top_cases.map(([c, n]) => el("li", {}, t("console.case", { label: caseLabel(c), n })))))) :
    [el("p", { class: "muted" }, t("console.no_orders"))]));
}

async function loadLeague() {
  const rows = await api("/api/figures/time-to-help?by=provider");
  rows.sort((a, b) => (b.score ?? -1) - (a.score ?? -1) || a.group.localeCompare(b.group));
  const box = document.getElementById("league");
  if (!rows.length) { box.replaceChildren(el("p", { class: "muted" }, t("console.no_orders"))); return; }
  const cols = ["provider", "orders", "within_60", "within_300", "accept_p50", "accept_p90", "arrive_p50", "arrive_p90", "score"];
  box.replaceChildren(el("table", { class: "league" },
    el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", { scope: "col" }, t("console.col." + c))))),
    el("tbody", {}, ...rows.map((r) => el("tr", { "data-provider": r.group },
      el("th", { scope: "row" }, r.group), el("td", {}, r.orders),
      el("td", {}, pct(r.accepted_within_60s)), el("td", {}, pct(r.accepted_within_300s)),
      el("td", {}, fmtSecs(r.percentiles.accept.p50)), el("td", {}, fmtSecs(r.percentiles.accept.p90)),
      el("td", {}, fmtSecs(r.percentiles.arrive.p50)), el("td", {}, fmtSecs(r.percentiles.arrive.p90)),
      el("td", { class: "score" }, r.score === null ? t("common.dash") : r.score))))));
}

function choose(m) {
  chosen = m;
  document.getElementById("chosen").textContent = t("console.chosen", { name: m.full_name, site: m.site_name, address: m.address || m.community });
  document.getElementById("matches").replaceChildren();
}

let searching = null;
async function search() {
  const q = document.getElementById("search").value.trim(), box = document.getElementById("matches");
  if (q.length < 2) { box.replaceChildren(el("p", { class: "muted" }, t("console.search_short"))); return; }
  let found;
  try { found = await api("/api/console/residents?q=" + encodeURIComponent(q)); } catch (e) { box.replaceChildren(el("p", { class: "error" }, e.message)); return; }
  box.replaceChildren(...(found.length ? [el("ul", { class: "matches", "aria-label": t("console.matches") }, ...found.map((m) => el("li", {},
    el("button", { type: "button", class: "match", "data-resident-id": m.resident_id, onclick: () => choose(m) },
      t("console.match", { name: m.full_name, site: m.site_name, phone: m.phone || t("common.dash") })))))] :
    [el("p", { class: "muted" }, t("console.no_match"))]));
}

async function submitOrder(ev) {
  ev.preventDefault();
  const msg = document.getElementById("form-msg");
  msg.className = "";
  if (!chosen) { msg.className = "error"; msg.textContent = t("console.choose_first"); return; }
  try {
    const o = await api("/api/orders", { method: "POST", json: {
      site_id: chosen.site_id, resident_id: chosen.resident_id, category: document.getElementById("category").value,
      colour: document.getElementById("urgency").value, note: document.getElementById("note").value } });
    msg.textContent = t("console.created", { id: o.order_id });
    document.getElementById("note").value = ""; document.getElementById("search").value = "";
    chosen = null; document.getElementById("chosen").textContent = "";
    await loadBoard();
  } catch (e) { msg.className = "error"; msg.textContent = t("console.not_created", { reason: e.message }); }
}

(async () => {
  const me = await requireSignIn();
  if (me.role !== "operator" && me.role !== "admin") { location.href = me.role === "family" ? "/family" : "/station"; return; }
  document.getElementById("who").textContent = me.username;
  document.getElementById("logout").onclick = signOut;
  document.getElementById("show-done").onchange = loadBoard;
  document.getElementById("search").addEventListener("input", () => { clearTimeout(searching); searching = setTimeout(search, 250); });
  document.getElementById("order-form").addEventListener("submit", submitOrder);
  await Promise.all([loadBoard(), loadRequests(), loadLeague()]);
  // an order opened or changed anywhere reloads the board at once; the poll is the fallback
  let pending = null;
  live(() => { clearTimeout(pending); pending = setTimeout(loadBoard, 50); }, document.getElementById("live-dot"));
  setInterval(loadBoard, 30000);
  setInterval(() => { loadRequests(); loadLeague(); }, 60000);
})();
