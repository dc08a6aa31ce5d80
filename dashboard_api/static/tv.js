"use strict";
// Wall-TV mode: the wall alone, large; a clock; red alerts beep once sound is on.
(async () => {
  const me = await requireSignIn();
  if (me.role === "family" || me.role === "operator") { location.href = me.role === "family" ? "/family" : "/console"; return; }
  document.getElementById("sound").onclick = (e) => { enableSound(); beep(); e.target.textContent = t("station.sound_is_on"); };
  const clock = () => { document.getElementById("clock").textContent = fmtTime(new Date().toISOString()); };
  clock(); setInterval(clock, 10000);
  const reload = () => loadWallCards(false, async (c, what, outcome) => { await wallAct(c, what, outcome); await reload(); });
  await reload();
  let pending = null;
  live((ev) => {
    if (ev.type === "order" && ev.colour === "red" && WALL_OPEN.includes(ev.state)) beep();
    clearTimeout(pending); pending = setTimeout(reload, 50);
  }, document.getElementById("live-dot"));
  setInterval(reload, 30000);
})();
