"use strict";
// The submit handler is attached at once (a quick user must not get the browser's own form
// submission); the messages it shows are awaited inside it.
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await ready;
  const err = document.getElementById("error");
  err.textContent = "";
  const body = new URLSearchParams(new FormData(ev.target));
  const r = await fetch("/api/auth/token", { method: "POST", body, headers: { "Accept-Language": LANG } });
  if (!r.ok) {
    err.textContent = r.status === 401 ? t("login.wrong") : r.status === 429 ? t("login.throttled") : t("login.failed", { status: r.status });
    return;
  }
  const tok = await r.json();
  sessionStorage.setItem("token", tok.access_token);
  // a language chosen on this page is the user's choice; otherwise their own applies
  if (/(^|; )eldercare_locale=/.test(document.cookie)) await api("/api/me/locale", { method: "PUT", json: { locale: LANG } });
  const me = await api("/api/me");
  location.href = { family: "/family", visitor: "/visits", safety_officer: "/safety", operator: "/console" }[me.role] || "/station";
});
ready.then(languageSwitch);
