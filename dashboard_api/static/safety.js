"use strict";
// The safety officer's phone page: tick the site's checklist, submit, close findings.
const siteSel = document.getElementById("site");

async function loadItems() {
  const items = await api(`/api/safety/sites/${siteSel.value}/checklist`);
  document.getElementById("items").replaceChildren(...items.map((i) => el("div", { class: "card-row", "data-item": i.item_key },
    el("label", {}, el("input", { type: "checkbox", name: "ok:" + i.item_key, checked: "" }), " " + t("safety.item_ok", { label: i.label })),
    el("input", { type: "text", name: "note:" + i.item_key, placeholder: t("safety.what_is_wrong"), maxlength: "2000" }))));
}

async function loadFindings() {
  const rows = await api(`/api/safety/findings?site_id=${encodeURIComponent(siteSel.value)}`);
  document.getElementById("findings").replaceChildren(...(rows.length ? rows.map((f) => el("div", { class: "card-row " + (f.closed_at ? "" : "overdue"), "data-finding": f.finding_id },
    el("strong", {}, f.text), " ", el("span", { class: "muted" }, t("safety.finding_meta", { source: t(f.source === "device" ? "safety.source.device" : "safety.source.round"), owner: f.owner || t("common.dash"), deadline: f.deadline.slice(0, 10) })),
    f.closed_at ? el("div", { class: "muted" }, t("safety.closed", { date: f.closed_at.slice(0, 10), note: f.closure_note })) :
      el("div", {}, el("input", { type: "text", class: "close-note", placeholder: t("safety.how_fixed"), maxlength: "2000" }),
        el("button", { type: "button", class: "close", onclick: (ev) => closeFinding(f.finding_id, ev.target.previousSibling.value) }, t("safety.close")))))
    : [el("p", { class: "muted" }, t("safety.no_findings"))]));
}

async function closeFinding(id, note) {
  if (!note) { alert(t("safety.need_note")); return; }
  await api(`/api/safety/findings/${id}/close`, { method: "POST", json: { note } });
  await loadFindings();
}

document.getElementById("round-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target, results = [];
  for (const row of document.querySelectorAll("#items [data-item]")) {
    const key = row.dataset.item;
    results.push({ item_key: key, ok: f["ok:" + key].checked, note: f["note:" + key].value });
  }
  const out = document.getElementById("round-result");
  try {
    const r = await api(`/api/safety/sites/${siteSel.value}/rounds`, { method: "POST", json: { results, owner: f.owner.value, note: f.note.value } });
    out.textContent = t("safety.submitted", { n: r.finding_ids.length });
    await Promise.all([loadItems(), loadFindings()]);
  } catch (e) { out.textContent = t("safety.not_submitted", { status: e.status }); }
});
document.getElementById("logout").addEventListener("click", signOut);
siteSel.addEventListener("change", () => Promise.all([loadItems(), loadFindings()]));

requireSignIn().then(async (me) => {
  const sites = me.role === "admin" ? (await api("/api/sites")).map((s) => s.site_id) : me.site_ids;
  siteSel.replaceChildren(...sites.map((s) => el("option", { value: s }, s)));
  await Promise.all([loadItems(), loadFindings()]);
});
