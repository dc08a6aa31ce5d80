"use strict";
// The visitor's phone page: this month's rate, the sensor-ordered plan, record a visit.
let current = null;
// a plan state the catalogue does not know is shown as it came
const stateText = (s) => (MSG["visits.state." + s] === undefined ? s : t("visits.state." + s));
// why a resident is up the plan, from its catalogue message (else as the API rendered it)
const reasonsText = (e) => e.reason_messages.map((r, i) =>
  (MSG["visits.reason." + r.key] === undefined ? e.reasons_text[i] : t("visits.reason." + r.key, r.params)));

async function loadRate() {
  const rates = await api("/api/care/visit-rate");
  const box = document.getElementById("rate");
  box.replaceChildren(...(rates.length ? rates.map((r) => el("p", { class: "rate", "data-community": r.community },
    t("visits.rate_line", { community: r.community, visited: r.visited, total: r.priority_residents, rate: r.rate === null ? t("common.dash") : Math.round(100 * r.rate) + "%" }),
    r.not_visited.length ? el("span", { class: "muted" }, " " + t("visits.not_visited", { names: r.not_visited.map((n) => n.full_name).join(", ") })) : "")) :
    [el("p", { class: "muted" }, t("visits.no_priority"))]));
}

async function loadPlan() {
  const plan = await api("/api/care/plan");
  const box = document.getElementById("plan");
  box.replaceChildren(...plan.map((e) => el("div", { class: "card-row " + e.state, "data-resident": e.resident_id },
    el("strong", {}, e.full_name), " ", el("span", { class: "muted" }, e.site_id), " · ",
    el("span", { class: "state" }, stateText(e.state)), " · " + t("visits.due", { date: e.due.slice(0, 10) }),
    " · " + t("visits.this_month", { done: e.visits_this_month, target: e.visits_per_month }),
    e.reason_messages.length ? el("div", { class: "muted reasons" }, reasonsText(e).join("; ")) : "",
    el("button", { type: "button", class: "record", onclick: () => openForm(e) }, t("visits.record_button")))));
}

function openForm(e) {
  current = e;
  document.getElementById("who").textContent = e.full_name;
  document.getElementById("result").textContent = "";
  const now = new Date(Date.now() - new Date().getTimezoneOffset() * 60000);
  document.getElementById("visited-at").value = now.toISOString().slice(0, 16);
  const sec = document.getElementById("record");
  sec.hidden = false;
  sec.scrollIntoView();
}

document.getElementById("visit-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const body = { notes: f.notes.value, follow_up: f.follow_up.checked };
  for (const k of ["eating_ok", "mobility_ok", "mood_ok", "home_safety_ok", "devices_ok"]) body[k] = f[k].checked;
  if (f.visited_at.value) body.visited_at = new Date(f.visited_at.value).toISOString();
  if (body.follow_up && f.follow_up_category.value) body.follow_up_category = f.follow_up_category.value;
  const out = document.getElementById("result");
  try {
    const v = await api(`/api/care/residents/${current.resident_id}/visits`, { method: "POST", json: body });
    out.textContent = t("visits.saved") + (v.order_id ? " · " + t("visits.order_opened", { id: v.order_id }) : "");
    f.reset();
    await Promise.all([loadRate(), loadPlan()]);
  } catch (e) { out.textContent = t("visits.not_saved", { status: e.status }); }
});
document.getElementById("cancel").addEventListener("click", () => { document.getElementById("record").hidden = true; });
document.getElementById("logout").addEventListener("click", signOut);

requireSignIn().then(() => Promise.all([loadRate(), loadPlan()]));
