// Shared by the advisor console and the supervisor page: the token, API calls, live streams.
// The token lives in sessionStorage: this tab and this origin only, gone when the tab closes.
"use strict";

const Pi = {
  token() { return sessionStorage.getItem("pushinbox.token"); },
  setToken(t) { sessionStorage.setItem("pushinbox.token", t); },
  forget() { sessionStorage.removeItem("pushinbox.token"); },

  // One API call; errors become a rejected Error with .status and .problem (problem+json).
  async call(method, path, body) {
    const headers = { "Authorization": "Bearer " + Pi.token() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      Pi.banner("The service cannot be reached. Retrying…");
      throw Object.assign(new Error("network"), { status: 0 });
    }
    if (res.status !== 503 && res.status !== 401) Pi.banner(null);
    if (res.status === 401) { Pi.expired(); }
    if (res.status === 204) return null;
    const data = await res.json().catch(() => null);
    if (res.status === 503) Pi.banner(Pi.unavailable(data));
    if (!res.ok) {
      const err = new Error((data && data.detail) || res.statusText);
      err.status = res.status; err.problem = data;
      throw err;
    }
    return data;
  },

  // What a 503 means for the person at the screen: Redis away, or Redis full.
  unavailable(problem) {
    return problem && problem.code === "out_of_memory"
      ? "The dispatcher is full (Redis out of memory): nothing can be saved until an operator frees memory. Retrying…"
      : "The dispatcher is unavailable (Redis unreachable). Retrying…";
  },

  banner(text) {
    const el = document.getElementById("banner");
    if (!el) return;
    el.textContent = text || "";
    el.hidden = !text;
  },

  // The token was refused: back to the log-in form, saying why.
  expired() {
    Pi.forget();
    Pi.streams.forEach((s) => s.abort());
    Pi.streams = [];
    if (Pi.onExpired) Pi.onExpired("Your session has expired or the token was revoked. Log in again.");
  },

  streams: [],

  // Server-Sent Events over fetch (EventSource cannot send a bearer token). Reconnects with
  // Last-Event-ID after a drop, so nothing is missed.
  live(path, onEvent) {
    const ctl = new AbortController();
    Pi.streams.push(ctl);
    let lastId = null;
    const connect = async () => {
      while (!ctl.signal.aborted) {
        try {
          const headers = { "Authorization": "Bearer " + Pi.token() };
          if (lastId) headers["Last-Event-ID"] = lastId;
          const res = await fetch(path, { headers, signal: ctl.signal });
          if (res.status === 401) { Pi.expired(); return; }
          if (res.status === 503) {  // the words a press would get, not a vaguer "interrupted"
            Pi.banner(Pi.unavailable(await res.json().catch(() => null)));
            await new Promise((r) => setTimeout(r, 1000));
            continue;
          }
          if (res.status === 429) {  // this token's (or team's) most open streams: other tabs
            const p = await res.json().catch(() => null);
            Pi.banner("Live updates paused: " + ((p && p.detail) || "too many open") + ".");
            await new Promise((r) => setTimeout(r, 5000));
            continue;
          }
          if (!res.ok) throw new Error("status " + res.status);
          Pi.banner(null);
          const reader = res.body.getReader();
          const decoder = new TextDecoder();
          let buf = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += decoder.decode(value, { stream: true });
            let cut;
            while ((cut = buf.match(/\r?\n\r?\n/)) !== null) {
              const block = buf.slice(0, cut.index); buf = buf.slice(cut.index + cut[0].length);
              let event = "message", data = "", id = null;
              for (const line of block.split(/\r?\n/)) {
                if (line.startsWith("event: ")) event = line.slice(7);
                else if (line.startsWith("data: ")) data += line.slice(6);
                else if (line.startsWith("id: ")) id = line.slice(4);
              }
              if (id) lastId = id;
              if (data) onEvent(event, JSON.parse(data));
            }
          }
        } catch (e) {
          if (ctl.signal.aborted) return;
          Pi.banner("Live updates interrupted. Reconnecting…");
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    connect();
    return ctl;
  },

  el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  },

  text(body) {
    if (typeof body === "string") return body;
    if (body && typeof body.text === "string") return body.text;
    return JSON.stringify(body);
  },
};
