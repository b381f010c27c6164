// Triage pages: live countdowns to landing, a self-refreshing flight board
// that marks what just arrived (board-arrivals.js decides; board-alerts.js
// hears of it in a `board:refreshed` event), and the print button of the NRM
// sheet. No inline script (CSP).

import { arrivedIds } from "./board-arrivals.js";
import { countdown, utcHhmm } from "./times.js";

const config = Object.assign({ refreshMs: 15000, tickMs: 1000, timeoutMs: 20000 }, window.__TRIAGE_CONFIG || {});

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
// Every report this page has listed: one that leaves the page and comes back
// has been announced (or was there) already.
const listed = new Set();

function reportLines() {
  return [...document.querySelectorAll("#queue [data-report-id]")];
}

function rememberRows() {
  for (const el of reportLines()) listed.add(el.dataset.reportId);
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
    table.innerHTML = data.html;
    const pager = document.getElementById("queue-pager");
    if (pager) pager.innerHTML = data.pager;
    document.getElementById("queue-total").textContent = String(data.total);
    const reports = document.getElementById("queue-reports");
    if (reports) reports.textContent = String(data.reports);
    const updated = document.getElementById("queue-updated");
    updated.setAttribute("datetime", data.now);
    updated.textContent = `${utcHhmm(data.now)}Z`;
    const lines = reportLines();
    const arrivedNow = arrivedIds(lines.map((el) => ({ id: el.dataset.reportId, received: el.dataset.received })),
                                  listed, table.dataset.arrivalsAfter);
    for (const el of lines) {
      if (!arrivedNow.includes(el.dataset.reportId)) continue;
      for (const marked of [el, el.closest("[data-flight]")]) {
        if (!marked) continue;
        marked.classList.add("is-new", "just-arrived");
        marked.dataset.new = "true";
      }
    }
    const arrived = arrivedNow.length;
    rememberRows();
    // The next refresh goes by this look (not by one that failed).
    if (data.arrivals_after) table.dataset.arrivalsAfter = data.arrivals_after;
    status.textContent = arrived ? `${arrived} new report${arrived === 1 ? "" : "s"}` : "";
    status.dataset.state = arrived ? "new" : "";
    table.dispatchEvent(new CustomEvent("board:refreshed", { bubbles: true, detail: { arrived: arrivedNow } }));
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
