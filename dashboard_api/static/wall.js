"use strict";
// The alert wall (care station and wall TV): one card per situation from /api/wall, unhandled
// red first and oldest first, a live countdown to each order's deadline.
const WALL_OPEN = ["queued", "offered"], WALL_ACTIVE = ["accepted", "en_route", "on_site"];

function wallCard(c, onAct) {
  const open = WALL_OPEN.includes(c.state), active = WALL_ACTIVE.includes(c.state);
  const done = !open && !active;
  const where = [c.room_name, c.address || c.site_name].filter(Boolean).join(" · ");
  const countdown = el("div", { class: "countdown", "data-deadline": c.accept_deadline });
  const card = el("article", {
    class: `alert ${c.colour}${done ? " done" : ""}${c.overdue ? " overdue" : ""}`,
    "data-order-id": c.order_ids[0], "data-state": c.state, "data-count": c.count,
  },
    el("div", { class: "who" }, c.resident_name || c.site_name, " ",
      el("span", { class: "pill" }, tOr("kind." + c.kind, "kind.other")),
      c.count > 1 ? el("span", { class: "pill count" }, t("wall.count", { n: c.count })) : ""),
    el("div", { class: "where" }, where),
    el("div", {}, c.explanation),
    ...(c.late_replies || []).map((r) => el("div", { class: "meta late-reply", "data-reading": r.reading },
      t("order.late_reply", { time: fmtTime(r.at), text: r.text }))),
    el("div", { class: "meta" }, t("wall.opened", { time: fmtTime(c.opened_at), ago: fmtAgo(c.opened_at) }), " · ",
      el("span", { class: "state" }, t("state." + c.state))),
    el("div", { class: "meta" },
      c.offered_to ? t(active ? "wall.held" : "wall.offered", { name: c.offered_to, since: fmtTime(c.offered_at) }) : t("wall.not_offered"),
      c.phone ? el("span", {}, " · ", el("a", { href: "tel:" + c.phone }, t("wall.phone", { phone: c.phone }))) : ""),
    open ? countdown : "",
    open ? el("div", { class: "next" }, t("wall.next_accept")) : active ? el("div", { class: "next" }, t("wall.next_resolve")) : "");
  const actions = el("div", { class: "actions" });
  if (open) actions.append(el("button", { type: "button", class: "accept", onclick: () => onAct(c, "accept") }, t("wall.accept")));
  if (active) {
    const outcome = el("select", { "aria-label": t("wall.outcome") },
      ...["emergency_handled", "handled_by_phone", "false_alarm"].map((o) => el("option", { value: o }, t("outcome." + o))));
    actions.append(outcome, el("button", { type: "button", class: "resolve", onclick: () => onAct(c, "resolve", outcome.value) }, t("wall.resolve")));
  }
  card.append(actions);
  return card;
}

function tickCountdowns() {
  for (const e of document.querySelectorAll(".countdown[data-deadline]")) {
    const left = (new Date(e.dataset.deadline).getTime() - Date.now()) / 1000;
    e.textContent = left >= 0 ? t("wall.left", { left: fmtDur(left) }) : t("wall.overdue", { late: fmtDur(-left) });
    const card = e.closest(".alert");
    if (card) card.classList.toggle("overdue", left < 0);
  }
}

async function wallAct(c, what, outcome) {
  try {
    if (what === "accept") await Promise.all(c.order_ids.map((id) => api(`/api/orders/${id}/accept`, { method: "POST" })));
    else await Promise.all(c.order_ids.map((id) => api(`/api/orders/${id}/resolve`, { method: "POST", json: { outcome } })));
  } catch (e) { if (e.status !== 409) alert(t("common.could_not", { reason: e.message })); }
}

// Technical alerts (the dead-man's switch: a worker gone, a queue lagging) above the cards:
// the alarm path itself is in trouble, so the wall says so first. Subjects are "zh / en".
async function loadTechnical(wall) {
  let items = [];
  try { items = await api("/api/technical-alerts"); } catch (e) { items = []; }
  let box = document.getElementById("technical");
  if (!box) { box = el("div", { id: "technical" }); wall.before(box); }
  box.replaceChildren(...items.map((a) => {
    const text = a.text;
    return el("div", { class: "technical " + a.colour, role: "alert" },
      el("b", {}, t("wall.technical")), " ", text, " ",
      el("span", { class: "muted" }, t("wall.technical_since", { at: fmtTime(a.raised_at) })));
  }));
}

async function loadWallCards(showDone, onAct) {
  const cards = await api("/api/wall" + (showDone ? "?show_done=true" : ""));
  const wall = document.getElementById("wall");
  await loadTechnical(wall);
  wall.replaceChildren(...(cards.length ? cards.map((c) => wallCard(c, onAct)) : [el("p", { class: "muted" }, t("wall.calm"))]));
  tickCountdowns();
  return cards;
}
setInterval(tickCountdowns, 1000);
