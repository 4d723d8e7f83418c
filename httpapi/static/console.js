// The advisor console: stock (left), today's figures (top right), actions (centre).
"use strict";

const $ = (id) => document.getElementById(id);
const S = { team: null, advisor: null, state: "offline", breakSince: null, pushed: [], timer: null };

function base() { return `/v1/teams/${encodeURIComponent(S.team)}/advisors/${encodeURIComponent(S.advisor)}`; }

// Nothing of the last session stays in the page: a shared desk shows the next user nothing.
function clearScreen() {
  S.pushed = []; S.state = "offline"; clearInterval(S.timer);
  for (const id of ["work", "on-hold", "stock-channels"]) $(id).replaceChildren();
  for (const id of ["stock-total", "fig-responses", "fig-archives", "fig-assigned", "fig-stock",
                    "team", "advisor-name", "logged-out"]) $(id).textContent = "";
  $("on-hold").hidden = true; $("logged-out").hidden = true;
}

function showLogin(message) {
  clearScreen();
  $("console").hidden = true; $("who").hidden = true; $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").focus();
}

Pi.onExpired = showLogin;

async function start() {
  if (!Pi.token()) return showLogin();
  let me;
  try { me = await Pi.call("GET", "/v1/whoami"); } catch (e) { return showLogin(e.status === 401 ? "" : e.message); }
  if (me.scope !== "advisor") {
    if (me.scope === "supervisor" || me.scope === "admin") { location.href = "supervisor.html"; return; }
    Pi.forget(); return showLogin("This page needs an advisor token.");
  }
  S.team = me.team; S.advisor = me.advisor;
  $("team").textContent = "Team " + S.team;
  $("advisor-name").textContent = S.advisor;
  let screen = await Pi.call("GET", base() + "/screen");
  if (screen.state === "offline") {
    await Pi.call("POST", base() + "/session");
    screen = await Pi.call("GET", base() + "/screen");
  }
  render(screen);
  S.pushed = screen.current.filter((m) => m.via === "push");
  renderWork();
  $("login").hidden = true; $("console").hidden = false; $("who").hidden = false;
  Pi.live(base() + "/live", onLive);
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  Pi.setToken($("token").value.trim());
  $("token").value = "";
  start();
});

function onLive(event, data) {
  if (event === "stock") renderStock(data);
  else if (event === "figures") {
    const was = S.state;
    renderFigures(data);
    if (data.state === "offline" && was !== "offline") loggedOutElsewhere();
  }
  else if (event === "assigned") {
    const note = Pi.el("p", { class: "hint" }, `A message was assigned to you (${data.channel}): see Your current messages.`);
    $("work").prepend(note);
  }
}

// Logged out by the reaper, a supervisor or the end of hours: say so, drop the cards (the
// messages went back to the team), offer to log in again.
function loggedOutElsewhere() {
  S.pushed = [];
  $("work").replaceChildren(); $("on-hold").replaceChildren(); $("on-hold").hidden = true;
  const box = $("logged-out");
  box.replaceChildren(
    Pi.el("p", {}, "You were logged out (not seen for too long, by a supervisor, or at the end of working hours). Your messages went back to the team."),
    Pi.el("button", { class: "primary", onclick: async () => {
      await Pi.call("POST", base() + "/session");
      box.hidden = true;
      render(await Pi.call("GET", base() + "/screen"));
    } }, "Log in again"));
  box.hidden = false;
}

function render(screen) {
  renderStock(screen.stock);
  renderFigures({ ...screen.today, state: screen.state, break_started_at: screen.break_started_at });
}

function renderStock(stock) {
  $("stock-total").textContent = stock.total;
  $("stock-channels").replaceChildren(...stock.channels.map((c) =>
    Pi.el("li", { "data-channel": c.channel }, Pi.el("span", {}, c.channel), Pi.el("b", {}, c.waiting))));
  $("fig-stock").textContent = stock.total;
}

function renderFigures(f) {
  $("fig-responses").textContent = f.responses;
  $("fig-archives").textContent = f.archives;
  $("fig-assigned").textContent = f.assigned;
  if (f.stock !== undefined) $("fig-stock").textContent = f.stock;
  setState(f.state, f.break_started_at);
}

function setState(state, since) {
  S.state = state;
  const badge = $("state");
  badge.textContent = state;
  badge.className = "badge " + state.replace(" ", "");
  const onBreak = state === "on break";
  $("break-panel").hidden = !onBreak;
  $("break").firstChild.textContent = onBreak ? "End break" : "Take a break";
  clearInterval(S.timer);
  if (onBreak && since) {
    S.breakSince = since;
    const tick = () => {
      const s = Math.max(0, Math.floor((Date.now() - S.breakSince) / 1000));
      $("break-timer").textContent = `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
    };
    tick(); S.timer = setInterval(tick, 1000);
  }
}

function age(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min ago`;
}

function messageCard(m, actions) {
  const at = m.received_at ? new Date(m.received_at) : null;
  return Pi.el("article", { class: "message", "data-id": m.id },
    Pi.el("div", { class: "meta" }, `${m.channel} · customer ${m.customer} · ${m.group || ""}${m.why ? " (" + m.why + ")" : ""}${m.on_hold ? " · on hold" : ""}`,
      at ? Pi.el("time", { datetime: at.toISOString(), title: at.toISOString() }, ` · received ${at.toLocaleTimeString()} (${age(m.received_at)})`) : ""),
    Pi.el("div", { class: "body" }, Pi.text(m.body)),
    Pi.el("div", { class: "actions" }, actions.map(([label, key, fn]) =>
      Pi.el("button", { onclick: fn, "data-action": label.toLowerCase() }, label, key ? Pi.el("kbd", {}, key) : ""))));
}

function cardActions(m) {
  // the last message to process: reply to it and get the next one in one call
  const last = !m.on_hold && active().length === 1;
  return [
    ["Reply", "R", () => act(m.id, "reply")],
    ...(last ? [["Reply & next", "X", () => replyAndNext(m.id)]] : []),
    ["Archive", "A", () => act(m.id, "archive")],
    ["Request help", "H", () => act(m.id, "help")],
    [m.on_hold ? "Take off hold" : "Put on hold", "O", () => act(m.id, m.on_hold ? "unhold" : "hold")],
  ];
}

function active() { return S.pushed.filter((m) => !m.on_hold); }

// Pushed messages to process now; held ones apart below: they no longer block a press.
function renderWork(extra) {
  const work = $("work");
  const held = S.pushed.filter((m) => m.on_hold);
  $("on-hold").replaceChildren(...(held.length ? [Pi.el("h2", {}, `On hold (${held.length})`),
    ...held.map((m) => messageCard(m, cardActions(m)))] : []));
  $("on-hold").hidden = !held.length;
  if (active().length) {
    work.replaceChildren(Pi.el("h2", {}, "Process this message"),
      ...active().map((m) => messageCard(m, cardActions(m))));
  } else {
    work.replaceChildren(...(extra ? [extra] : []));
  }
  $("next").disabled = false;
}

async function act(id, action) {
  try {
    await Pi.call("POST", `${base()}/messages/${encodeURIComponent(id)}/${action}`, action === "help" ? { note: "" } : undefined);
    if (action === "hold" || action === "unhold") {
      S.pushed = S.pushed.map((m) => m.id === id ? { ...m, on_hold: action === "hold" } : m);
    } else {
      S.pushed = S.pushed.filter((m) => m.id !== id);
    }
    renderWork(active().length ? null : Pi.el("p", { class: "empty" }, "Done. Press Process a new message for the next one."));
  } catch (e) { flash(e.message); }
}

// The reply and the next press in one call: what Reply then Process a new message do.
async function replyAndNext(id) {
  $("next").disabled = true;
  try {
    const out = await Pi.call("POST", `${base()}/messages/${encodeURIComponent(id)}/reply-and-next`);
    S.pushed = S.pushed.filter((m) => m.id !== id);
    if (out.status === "empty") {
      renderWork(Pi.el("p", { class: "empty", id: "empty-stock" }, "No message is waiting. Well done!"));
      return;
    }
    const known = new Set(S.pushed.map((m) => m.id));
    S.pushed = [...S.pushed, ...out.messages.filter((m) => !known.has(m.id))];
    renderWork();
  } catch (e) { flash(e.message); $("next").disabled = false; }
}

async function processNext() {
  if (active().length) return flash("Process the message above first.");
  $("next").disabled = true;
  const held = S.pushed.filter((m) => m.on_hold);
  try {
    const push = await Pi.call("POST", base() + "/next");
    if (push === null) { S.pushed = held; renderWork(Pi.el("p", { class: "empty", id: "empty-stock" }, "No message is waiting. Well done!")); return; }
    const known = new Set(held.map((m) => m.id));
    S.pushed = [...held, ...push.messages.filter((m) => !known.has(m.id))];
    renderWork();
  } catch (e) { flash(e.message); $("next").disabled = false; }
}

async function showCurrent() {
  const shown = new Set(S.pushed.map((m) => m.id));  // the pushed cards are on screen already
  const list = (await Pi.call("GET", base() + "/messages")).filter((m) => !shown.has(m.id));
  const box = Pi.el("div", { id: "current" }, Pi.el("h2", {}, `Your current messages (${list.length})`),
    list.length ? Pi.el("p", { class: "hint" }, "Handle these before processing new messages.") : Pi.el("p", { class: "empty" }, "Nothing assigned to you."),
    ...list.map((m) => messageCard(m, [
      ["Reply", "", () => act(m.id, "reply").then(showCurrent)],
      ["Archive", "", () => act(m.id, "archive").then(showCurrent)],
    ])));
  if (!S.pushed.length) $("work").replaceChildren(box);
  else $("work").append(box);
}

async function toggleBreak() {
  try {
    if (S.state === "on break") await Pi.call("DELETE", base() + "/break");
    else await Pi.call("POST", base() + "/break");
    render(await Pi.call("GET", base() + "/screen"));
  } catch (e) { flash(e.message); }
}

async function logout() {
  try { await Pi.call("DELETE", base() + "/session"); } catch (e) { /* already offline */ }
  Pi.streams.forEach((s) => s.abort()); Pi.streams = [];
  Pi.forget();
  S.pushed = [];
  showLogin("You are logged out; your messages went back to the team.");
}

function flash(text) { $("work").prepend(Pi.el("p", { class: "error" }, text)); }

$("next").addEventListener("click", processNext);
$("show-current").addEventListener("click", showCurrent);
$("break").addEventListener("click", toggleBreak);
$("logout").addEventListener("click", logout);

document.addEventListener("keydown", (ev) => {
  if (ev.target.tagName === "INPUT" || ev.ctrlKey || ev.metaKey || ev.altKey || $("console").hidden) return;
  const key = ev.key.toLowerCase();
  const first = active()[0];
  const map = { n: processNext, c: showCurrent, b: toggleBreak, l: logout,
    r: first && (() => act(first.id, "reply")), a: first && (() => act(first.id, "archive")),
    x: first && active().length === 1 && (() => replyAndNext(first.id)),
    h: first && (() => act(first.id, "help")), o: first && (() => act(first.id, first.on_hold ? "unhold" : "hold")) };
  if (map[key]) { ev.preventDefault(); map[key](); }
});

start();
