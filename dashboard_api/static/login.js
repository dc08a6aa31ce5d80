"use strict";
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = document.getElementById("error");
  err.textContent = "";
  const body = new URLSearchParams(new FormData(ev.target));
  const r = await fetch("/api/auth/token", { method: "POST", body });
  if (!r.ok) {
    err.textContent = r.status === 401 ? "Wrong username or password." : r.status === 429 ? "Too many wrong passwords. Try again in a few minutes." : "Sign-in failed (" + r.status + ").";
    return;
  }
  const tok = await r.json();
  sessionStorage.setItem("token", tok.access_token);
  const me = await api("/api/me");
  location.href = { family: "/family", visitor: "/visits", safety_officer: "/safety" }[me.role] || "/station";
});
