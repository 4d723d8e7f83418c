// The supervisor page: priority groups (drag and drop, form controls), live preview, manual
// assignment, working hours, and break time per advisor per day.
"use strict";

const $ = (id) => document.getElementById(id);
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LISTS = [["customer_tags_any", "Customer tags (any)"], ["channel_in", "Channels"],
               ["language_in", "Languages"], ["message_tags_any", "Message tags (any)"]];
let TEAM = null, ADVISORS = [];
const tbase = () => `/v1/teams/${encodeURIComponent(TEAM)}`;

function showLogin(message) {
  $("page").hidden = true; $("login").hidden = false; $("signout").hidden = true;
  $("login-error").textContent = message || "";
}
Pi.onExpired = showLogin;

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  Pi.setToken($("token").value.trim());
  if ($("team-input").value.trim()) sessionStorage.setItem("pushinbox.team", $("team-input").value.trim());
  $("token").value = "";
  start();
});
$("signout").addEventListener("click", () => { Pi.forget(); showLogin(""); });

async function start() {
  if (!Pi.token()) return showLogin();
  let me;
  try { me = await Pi.call("GET", "/v1/whoami"); } catch (e) { return showLogin(e.status === 401 ? "" : e.message); }
  if (me.scope === "advisor") { location.href = "console.html"; return; }
  TEAM = me.team || sessionStorage.getItem("pushinbox.team");
  if (me.scope !== "supervisor" && me.scope !== "admin") { Pi.forget(); return showLogin("This page needs a supervisor token."); }
  if (!TEAM) { return showLogin("An admin token needs a team."); }
  $("team").textContent = "Team " + TEAM;
  $("login").hidden = true; $("page").hidden = false; $("signout").hidden = false;
  ADVISORS = await Pi.call("GET", tbase() + "/advisors");
  renderGroups(await Pi.call("GET", tbase() + "/groups"));
  renderHours(await Pi.call("GET", tbase() + "/hours"));
  const monday = new Date(); monday.setUTCDate(monday.getUTCDate() - ((monday.getUTCDay() + 6) % 7));
  $("week").value = monday.toISOString().slice(0, 10);
  loadChart();
  $("report-day").value = new Date().toLocaleDateString("en-CA");  // today, YYYY-MM-DD, local
  loadReport();
  refreshPreview();
  renderView(await Pi.call("GET", tbase() + "/team-view"));
  // stock: the preview changed; advisors: who can receive changed (the assign lists);
  // team: the team view, pushed by the service (no polling)
  Pi.live(tbase() + "/live", (event, data) => {
    if (event === "stock" || event === "advisors") refreshPreview();
    if (event === "team") renderView(data);
  });
  setInterval(tickView, 1000);
}

// --- priority groups -----------------------------------------------------------------------
function groupCard(g) {
  const m = g.match || {};
  const card = Pi.el("div", { class: "group", draggable: "true", "data-name": g.name });
  const listInputs = LISTS.map(([key, label]) => Pi.el("label", {}, label,
    Pi.el("input", { "data-key": key, value: (m[key] || []).join(", "), placeholder: "comma separated" })));
  const reassigned = Pi.el("select", { "data-key": "reassigned" },
    Pi.el("option", { value: "" }, "either"), Pi.el("option", { value: "true" }, "yes"), Pi.el("option", { value: "false" }, "no"));
  reassigned.value = m.reassigned === undefined ? "" : String(m.reassigned);
  card.append(
    Pi.el("div", { class: "row" },
      Pi.el("b", { class: "handle", title: "Drag to reorder" }, "☰"), Pi.el("input", { class: "name", value: g.name, "aria-label": "Group name" }),
      Pi.el("button", { onclick: () => move(card, -1), title: "Move up" }, "↑"),
      Pi.el("button", { onclick: () => move(card, 1), title: "Move down" }, "↓"),
      Pi.el("button", { onclick: () => card.remove(), title: "Remove" }, "✕")),
    Pi.el("div", { class: "row" }, ...listInputs, Pi.el("label", {}, "Automatically reassigned", reassigned)),
    Pi.el("div", { class: "row" },
      Pi.el("label", {}, "Waiting longer than (seconds)",
        Pi.el("input", { "data-wt": "1", type: "number", min: "1", step: "1", value: m.waiting_longer_than || "", placeholder: "any wait" })),
      Pi.el("label", {}, "Requires skills (only advisors with all of them are pushed these)",
        Pi.el("input", { "data-rs": "1", value: (g.requires_skills || []).join(", "), placeholder: "none" }))));
  card.addEventListener("dragstart", (ev) => { card.classList.add("dragging"); ev.dataTransfer.setData("text/plain", g.name); });
  card.addEventListener("dragend", () => card.classList.remove("dragging"));
  card.addEventListener("dragover", (ev) => ev.preventDefault());
  card.addEventListener("drop", (ev) => {
    ev.preventDefault();
    const dragged = document.querySelector(".group.dragging");
    if (!dragged || dragged === card) return;
    const box = card.getBoundingClientRect();
    card.parentNode.insertBefore(dragged, ev.clientY > box.top + box.height / 2 ? card.nextSibling : card);
  });
  return card;
}

function move(card, step) {
  if (step < 0 && card.previousElementSibling) card.parentNode.insertBefore(card, card.previousElementSibling);
  if (step > 0 && card.nextElementSibling) card.parentNode.insertBefore(card.nextElementSibling, card);
}

function renderGroups(settings) {
  $("groups").replaceChildren(...settings.groups.map(groupCard));
  $("order").value = settings.order;
}

function readGroups() {
  return [...document.querySelectorAll("#groups .group")].map((card) => {
    const match = {};
    card.querySelectorAll("input[data-key]").forEach((i) => {
      const items = i.value.split(",").map((s) => s.trim()).filter(Boolean);
      if (items.length) match[i.dataset.key] = items;
    });
    const r = card.querySelector("select[data-key=reassigned]").value;
    if (r) match.reassigned = r === "true";
    const wt = card.querySelector("input[data-wt]").value.trim();
    if (wt) match.waiting_longer_than = Number(wt);
    const skills = card.querySelector("input[data-rs]").value.split(",").map((x) => x.trim()).filter(Boolean);
    return { name: card.querySelector("input.name").value.trim(), match, ...(skills.length ? { requires_skills: skills } : {}) };
  });
}

$("add-group").addEventListener("click", () => $("groups").append(groupCard({ name: "New group", match: {} })));
$("save-groups").addEventListener("click", async () => {
  try {
    const res = await Pi.call("PUT", tbase() + "/groups", { order: $("order").value, groups: readGroups() });
    $("groups-status").textContent = `Saved (version ${res.version}).` + (res.rebucketing ? " Re-sorting the waiting messages…" : "");
    $("groups-status").className = "";
    await waitRebucket();
    refreshPreview();
  } catch (e) {
    $("groups-status").textContent = e.message + (e.problem && e.problem.field ? ` (${e.problem.field})` : "");
    $("groups-status").className = "error";
  }
});

async function waitRebucket() {
  for (let i = 0; i < 60; i++) {
    const p = await Pi.call("GET", tbase() + "/rebucketing");
    if (p.done) { $("groups-status").textContent += " Done."; return; }
    await new Promise((r) => setTimeout(r, 500));
  }
}

// --- preview and manual assignment ---------------------------------------------------------
let previewBusy = false;
async function refreshPreview() {
  if (previewBusy) return;
  previewBusy = true;
  try {
    const rows = await Pi.call("GET", tbase() + "/preview?n=10");
    ADVISORS = await Pi.call("GET", tbase() + "/advisors");
    renderTeam(ADVISORS, await Pi.call("GET", tbase() + "/groups/stock"));
    // Only advisors who can receive: logged in (online or on a break).
    const able = ADVISORS.filter((a) => a.state !== "offline").map((a) => a.advisor);
    $("preview").replaceChildren(...rows.map((r) => {
      const pick = Pi.el("select", { "aria-label": "Assign to" }, Pi.el("option", { value: "" }, "—"),
        ...able.map((a) => Pi.el("option", { value: a }, a)));
      pick.addEventListener("change", () => assign(r.messages[0].id, pick.value));
      return Pi.el("tr", { "data-conversation": r.conversation },
        Pi.el("td", {}, r.position), Pi.el("td", {}, r.conversation), Pi.el("td", { class: "channels" },
          [...new Set(r.messages.map((m) => m.channel))].join(", ") + (r.waiting > r.messages.length ? ` (+${r.waiting - r.messages.length})` : "")),
        Pi.el("td", { class: "group-name" }, r.group), Pi.el("td", {}, r.why), Pi.el("td", {}, pick));
    }));
  } finally { previewBusy = false; }
}

// --- advisors' skills and who may take each group ---------------------------------------
function renderTeam(advisors, groups) {
  $("group-stock").replaceChildren(...groups.map((g) => Pi.el("tr", { "data-group": g.group, class: g.unserved ? "unserved" : "" },
    Pi.el("td", {}, g.group), Pi.el("td", {}, g.requires_skills.join(", ") || "—"), Pi.el("td", {}, g.waiting),
    Pi.el("td", {}, g.advisors_who_may_take), Pi.el("td", { class: "flag" }, g.unserved ? "Nobody logged in may take these" : ""))));
  if (document.activeElement && document.activeElement.closest("#skills")) return;  // being edited
  $("skills").replaceChildren(...advisors.map((a) => {
    const input = Pi.el("input", { value: a.skills.join(", "), "aria-label": "Skills of " + a.advisor, placeholder: "none" });
    const save = Pi.el("button", { onclick: () => saveSkills(a.advisor, input) }, "Save");
    return Pi.el("tr", { "data-advisor": a.advisor }, Pi.el("td", {}, a.advisor), Pi.el("td", {}, a.state), Pi.el("td", {}, input, save));
  }));
}

async function saveSkills(advisor, input) {
  const skills = input.value.split(",").map((x) => x.trim()).filter(Boolean);
  try {
    const res = await Pi.call("PUT", tbase() + "/advisors/" + encodeURIComponent(advisor) + "/skills", { skills });
    $("skills-status").textContent = `${advisor}: ${res.skills.join(", ") || "no skills"}.`;
    $("skills-status").className = "";
    input.blur();
    refreshPreview();
  } catch (e) {
    $("skills-status").textContent = e.message + (e.problem && e.problem.field ? ` (${e.problem.field})` : "");
    $("skills-status").className = "error";
  }
}

async function assign(id, advisor) {
  if (!advisor) return;
  try {
    await Pi.call("POST", `${tbase()}/messages/${encodeURIComponent(id)}/assign`, { advisor });
    $("assign-status").textContent = `Assigned ${id} to ${advisor}.`;
    $("assign-status").className = "";
  } catch (e) { $("assign-status").textContent = e.message; $("assign-status").className = "error"; }
  refreshPreview();
}

// --- working hours -------------------------------------------------------------------------
function renderHours(hours) {
  $("tz").value = hours ? hours.timezone : "UTC";
  const week = hours ? hours.week : {};
  $("hours").replaceChildren(...DAYS.map((d) => Pi.el("tr", {}, Pi.el("td", {}, d),
    Pi.el("td", {}, Pi.el("input", { "data-day": d, value: (week[d] || []).join(", "), placeholder: "09:00-12:30, 13:30-18:00", size: 30 })))));
}

$("save-hours").addEventListener("click", async () => {
  const week = {};
  document.querySelectorAll("#hours input[data-day]").forEach((i) => {
    const ranges = i.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (ranges.length) week[i.dataset.day] = ranges;
  });
  try {
    await Pi.call("PUT", tbase() + "/hours", { timezone: $("tz").value.trim(), week });
    $("hours-status").textContent = "Saved."; $("hours-status").className = "";
  } catch (e) {
    $("hours-status").textContent = e.message + (e.problem && e.problem.field ? ` (${e.problem.field})` : "");
    $("hours-status").className = "error";
  }
});

// --- break chart ---------------------------------------------------------------------------
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
$("week").addEventListener("change", loadChart);
async function loadChart() {
  const data = await Pi.call("GET", `${tbase()}/breaks?start=${$("week").value}&days=7`);
  const advisors = [...new Set(data.days.flatMap((d) => Object.keys(d.advisors)))].sort();
  const colors = ["#2857d6", "#12805c", "#b54708", "#9e77ed", "#d92d20", "#0e9384", "#475467"];
  // A y axis in minutes with round steps, so the bars can be read.
  const peakMin = Math.max(1, ...data.days.map((d) => d.team_seconds / 60));
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 240].find((s) => peakMin / s <= 5) || 480;
  const top = Math.ceil(peakMin / step) * step, max = top * 60;
  const L = 48, W = 560 + L, H = 220, bar = (W - L) / 7;
  const svg = [`<svg viewBox="0 -12 ${W} ${H + 52}" width="100%" role="img" aria-label="Break minutes per day" font-size="12">`];
  for (let m = 0; m <= top; m += step) {
    const y = H - (m / top) * H;
    svg.push(`<line x1="${L}" x2="${W}" y1="${y}" y2="${y}" stroke="#eaecf0"/>`);
    svg.push(`<text x="${L - 6}" y="${y + 4}" text-anchor="end" class="axis">${m} min</text>`);
  }
  data.days.forEach((d, i0) => {
    const i = i0 + L / bar;
    let y = H;
    advisors.forEach((a, j) => {
      const s = d.advisors[a] || 0;
      const h = (s / max) * H;
      y -= h;
      if (h > 0) svg.push(`<rect x="${i * bar + 8}" y="${y}" width="${bar - 16}" height="${h}" fill="${colors[j % colors.length]}"><title>${esc(a)}: ${Math.round(s / 60)} min</title></rect>`);
    });
    const label = new Date(d.day + "T00:00:00Z").toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" });
    svg.push(`<text x="${i * bar + bar / 2}" y="${H + 16}" text-anchor="middle">${esc(label)}</text>`);
    svg.push(`<text x="${i * bar + bar / 2}" y="${H + 32}" text-anchor="middle" font-weight="bold">${Math.round(d.team_seconds / 60)} min</text>`);
  });
  svg.push("</svg>");
  const legend = advisors.map((a, j) => `<span style="color:${colors[j % colors.length]}">■</span> ${esc(a)}`).join(" &nbsp; ");
  $("chart").innerHTML = svg.join("") + `<p>${legend || "No break this week."}</p>`;
}

// --- the team now (live) -------------------------------------------------------------------
let VIEW = null, VIEW_AT = 0;
function ago(s) {
  if (s === null || s === undefined) return "—";
  s = Math.max(0, Math.round(s));
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
function renderView(view) { VIEW = view; VIEW_AT = Date.now(); tickView(); }
function tickView() {  // the ages move on between snapshots
  if (!VIEW) return;
  const gone = (Date.now() - VIEW_AT) / 1000;
  const plus = (s) => (s === null ? null : s + gone);
  $("view-advisors").replaceChildren(...VIEW.advisors.map((a) => Pi.el("tr", { "data-advisor": a.advisor, class: "state-" + a.state.split(" ")[0] },
    Pi.el("td", {}, a.name), Pi.el("td", { class: "state" }, a.state), Pi.el("td", {}, a.since ? ago(plus(a.seconds_in_state)) : "—"),
    Pi.el("td", {}, a.holding ? `${a.holding} (oldest ${ago(plus(a.oldest_held_s))})` : "—"),
    Pi.el("td", {}, a.responses_today), Pi.el("td", {}, a.archives_today), Pi.el("td", {}, a.skills.join(", ") || "—"))));
  $("view-groups").replaceChildren(...VIEW.groups.map((g) => Pi.el("tr", { "data-group": g.group, class: g.unserved ? "unserved" : "" },
    Pi.el("td", {}, g.group), Pi.el("td", { class: "waiting" }, g.waiting), Pi.el("td", {}, g.waiting ? ago(plus(g.oldest_wait_s)) : "—"),
    Pi.el("td", {}, g.arrivals_15min), Pi.el("td", {}, g.pushes_15min), Pi.el("td", {}, g.advisors_who_may_take),
    Pi.el("td", { class: "flag" }, g.unserved ? "Nobody logged in may take these" : ""))));
}

// --- the day's report ----------------------------------------------------------------------
function cell(v) { return v === null || v === undefined ? "—" : String(v); }
function table(id, rows, cols) {
  $(id).replaceChildren(
    Pi.el("thead", {}, Pi.el("tr", {}, ...cols.map(([, label]) => Pi.el("th", {}, label)))),
    Pi.el("tbody", {}, ...rows.map((r) => Pi.el("tr", { "data-row": r[cols[0][0]] }, ...cols.map(([k]) => Pi.el("td", { "data-col": k }, cell(r[k])))))));
}

async function loadReport() {
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const day = $("report-day").value;
  const data = await Pi.call("GET", `${tbase()}/reports/daily?day=${day}&tz=${encodeURIComponent(tz)}`);
  $("report-csv").dataset.url = `${tbase()}/reports/daily?day=${day}&tz=${encodeURIComponent(tz)}&format=csv`;
  table("report-advisors", data.advisors, [["advisor", "Advisor"], ["pushed", "Pushed"], ["responses", "Responses"],
    ["archives", "Archives"], ["help_requests", "Help requests"], ["reassigned_away", "Reassigned away"],
    ["break_s", "Break (s)"], ["handle_p50_s", "Handle p50 (s, ≤)"], ["handle_p90_s", "Handle p90 (s, ≤)"]]);
  table("report-groups", data.groups.map((g) => ({ ...g, within_target: g.within_target === null ? null : Math.round(g.within_target * 100) + " %" })),
    [["group", "Group"], ["arrivals", "Arrivals"], ["pushes", "Pushes"], ["wait_p50_s", "Wait p50 (s, ≤)"],
     ["wait_p90_s", "Wait p90 (s, ≤)"], ["wait_max_s", "Longest wait (s)"], ["within_target", "Within target"]]);
  // Waiting time per hour: the average as a bar, the longest as a tick.
  const hours = data.hours;
  const peak = Math.max(60, ...hours.map((h) => h.max_wait_s || 0));
  const L = 72, W = 24 * 24 + L, H = 160, bar = (W - L) / hours.length;
  const svg = [`<svg viewBox="0 -12 ${W} ${H + 36}" width="100%" role="img" aria-label="Waiting time per hour" font-size="11">`];
  for (const f of [0, 0.5, 1]) {
    const y = H - f * H;
    svg.push(`<line x1="${L}" x2="${W}" y1="${y}" y2="${y}" stroke="#eaecf0"/><text x="${L - 6}" y="${y + 4}" text-anchor="end">${ago(f * peak)}</text>`);
  }
  hours.forEach((h, i) => {
    const x = L + i * bar;
    if (h.avg_wait_s !== null) {
      const hh = (h.avg_wait_s / peak) * H, mh = (h.max_wait_s / peak) * H;
      svg.push(`<rect class="wait-bar" x="${x + 2}" y="${H - hh}" width="${bar - 4}" height="${hh}" fill="#2857d6"><title>${esc(h.hour)}: ${h.pushes} pushed, average wait ${h.avg_wait_s} s, longest ${h.max_wait_s} s</title></rect>`);
      svg.push(`<line x1="${x + 2}" x2="${x + bar - 2}" y1="${H - mh}" y2="${H - mh}" stroke="#d92d20" stroke-width="2"/>`);
    }
    if (i % 3 === 0) svg.push(`<text x="${x + bar / 2}" y="${H + 16}" text-anchor="middle">${esc(h.hour.slice(11, 16))}</text>`);
  });
  svg.push("</svg>");
  $("report-chart").innerHTML = svg.join("") + `<p><span style="color:#2857d6">■</span> average wait &nbsp; <span style="color:#d92d20">▬</span> longest wait (${esc(data.tz)})</p>`;
}

$("report-day").addEventListener("change", loadReport);
// The CSV needs the token: fetched here, then saved as a file.
$("report-csv").addEventListener("click", async (ev) => {
  ev.preventDefault();
  const res = await fetch(ev.target.dataset.url, { headers: { Authorization: "Bearer " + Pi.token() } });
  const link = Pi.el("a", { href: URL.createObjectURL(await res.blob()), download: `${TEAM}-${$("report-day").value}.csv` });
  link.click();
  URL.revokeObjectURL(link.href);
});

start();
