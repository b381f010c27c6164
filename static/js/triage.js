// Triage pages: live countdowns to landing, a self-refreshing flight board
// that marks what is new (and tells board-alerts.js what arrived, in a
// `board:refreshed` event), and the print button of the NRM sheet. No inline
// script (CSP).

import { duration, utcHhmm } from "./times.js";

const config = Object.assign({ refreshMs: 15000, tickMs: 1000, timeoutMs: 20000 }, window.__TRIAGE_CONFIG || {});

/** The countdown text and state for a landing time, at `now`. */
export function countdown(sta, now = Date.now()) {
  const ms = Date.parse(sta) - now;
  if (Number.isNaN(ms)) return { text: "", state: "" };
  if (ms >= 0) return { text: `lands in ${duration(ms)}`, state: ms < 3600000 ? "soon" : "later" };
  return { text: `landed ${duration(ms)} ago`, state: "landed" };
}

function tick() {
  for (const el of document.querySelectorAll("time[data-countdown]")) {
    const { text, state } = countdown(el.getAttribute("datetime"));
    if (text && el.textContent !== text) el.textContent = text;
    el.dataset.state = state;
  }
}

function queueTable() {
  return document.getElementById("queue");
}

let refreshing = false;
let known = new Set();

function rememberRows() {
  known = new Set([...document.querySelectorAll("#queue [data-report-id]")].map((el) => el.dataset.reportId));
}

/** Fetch the current page of the queue and swap its rows in place. */
export async function refresh() {
  const table = queueTable();
  if (!table || refreshing) return;
  refreshing = true;
  const status = document.getElementById("queue-status");
  try {
    const url = new URL(table.dataset.refreshUrl, location.href);
    if (table.dataset.since) url.searchParams.set("since", table.dataset.since);
    // A deadline: a request that never answers must not stop every later refresh.
    const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin",
                                    cache: "no-store", signal: AbortSignal.timeout(config.timeoutMs) });
    if (resp.status === 401) {
      status.textContent = "Signed out: reload the page to sign in again.";
      status.dataset.state = "error";
      return;
    }
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const data = await resp.json();
    const before = known;
    table.innerHTML = data.html;
    const pager = document.getElementById("queue-pager");
    if (pager) pager.innerHTML = data.pager;
    document.getElementById("queue-total").textContent = String(data.total);
    const reports = document.getElementById("queue-reports");
    if (reports) reports.textContent = String(data.reports);
    const updated = document.getElementById("queue-updated");
    updated.setAttribute("datetime", data.now);
    updated.textContent = `${utcHhmm(data.now)}Z`;
    const arrivedIds = [];
    for (const el of table.querySelectorAll("[data-report-id]")) {
      if (!before.has(el.dataset.reportId)) {
        for (const marked of [el, el.closest("[data-flight]")]) {
          if (!marked) continue;
          marked.classList.add("is-new", "just-arrived");
          marked.dataset.new = "true";
        }
        arrivedIds.push(el.dataset.reportId);
      }
    }
    const arrived = arrivedIds.length;
    rememberRows();
    status.textContent = arrived ? `${arrived} new report${arrived === 1 ? "" : "s"}` : "";
    status.dataset.state = arrived ? "new" : "";
    table.dispatchEvent(new CustomEvent("board:refreshed", { bubbles: true, detail: { arrived: arrivedIds } }));
    table.dataset.refreshedAt = data.now;
    tick();
  } catch {
    status.textContent = "Could not refresh; retrying.";
    status.dataset.state = "error";
  } finally {
    refreshing = false;
  }
}

function startQueue() {
  if (!queueTable()) return;
  rememberRows();
  setInterval(() => { if (!document.hidden) refresh(); }, config.refreshMs);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  // Filters apply at once.
  const form = document.getElementById("queue-filters");
  if (form) {
    for (const el of form.querySelectorAll("select, input[type=checkbox]")) {
      el.addEventListener("change", () => form.requestSubmit());
    }
  }
}

function startPrint() {
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
}

tick();
setInterval(tick, config.tickMs);
startQueue();
startPrint();
