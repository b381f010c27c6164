// "Your notes": the outbox list with each note's state, dismissing a note that
// was not accepted, "Clear delivered", and the delivery status line.
// Each entry shows only what is in clear in its header (never the note).
import { duration, utcClock, utcHhmm } from "../times.js";
import { now as clockNow } from "../clock.js";
import { listReports, removeReport, clearDelivered, sameFlight } from "../outbox/store.js";
import { el, hotlineLink } from "./dom.js";

export const STATE_TEXT = {
  queued: "Waiting to send",
  sending: "Sending…",
  delivered: "Delivered",
  rejected: "Not accepted",
};

// What the status line says after a failed pass: only a network error is "no connection".
export const TROUBLE_TEXT = {
  network: "No connection to the server",
  server: "The server is not available at the moment",
  receipt: "The server answered, but its receipt could not be checked, so the note is kept",
  busy: "The server asked to wait a little",
  storage: "This tablet's storage is full, so notes the server has taken may still show as waiting; they are sent again",
  other: "The note could not be sent yet",
};

// A delivered note, as Border Force's coarse state says (DESIGN.md section 4a); "unknown" says nothing new.
export const CASE_TEXT = {
  received: "Delivered",
  seen: "Seen by Border Force",
  acting: "Border Force is acting",
  closed: "Seen by Border Force, closed",
};

export const URGENCY_TEXT = { routine: "Routine", priority: "Priority", immediate: "Immediate" };

const PENDING = new Set(["queued", "sending"]);

/** The badge of an entry: its delivery state, or once delivered what Border Force did. */
export function stateText(r) {
  if (r.state === "delivered") return CASE_TEXT[r.case_state] || STATE_TEXT.delivered;
  return STATE_TEXT[r.state] || r.state;
}

/** "HH:MM:SS UTC" of a time, or "". */
export function utcSeconds(value) {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : `${d.toISOString().slice(11, 19)} UTC`;
}

/** "Note 2 on ZZ202 · Immediate · written 20:59:12 UTC": what is in clear in the header, and its number on that flight. */
export function noteTitle(r, number) {
  const h = r.header || {};
  const parts = [`Note ${number} on ${h.flight || "?"}`];
  if (URGENCY_TEXT[h.urgency]) parts.push(URGENCY_TEXT[h.urgency]);
  const written = utcSeconds(h.created || r.queued_at);
  if (written) parts.push(`written ${written}`);
  return parts.join(" \u00b7 ");
}

/**
 * Each entry's number on its flight: the one it was given when queued, or for
 * entries from before numbering, its place among that flight's entries (oldest first).
 */
export function noteNumbers(reports) {
  const numbers = new Map();
  const oldestFirst = [...reports].sort((a, b) => ((a.header && a.header.created) || a.queued_at || "").localeCompare((b.header && b.header.created) || b.queued_at || ""));
  oldestFirst.forEach((r, i) => {
    const place = oldestFirst.slice(0, i + 1).filter((x) => sameFlight(x.header, r.header)).length;
    numbers.set(r.id, r.note_number || place);
  });
  return numbers;
}

const CLEAR_LABEL = "Clear delivered";
const CLEAR_CONFIRM = "Tap again to clear";
const CLEAR_ARMED_MS = 5000;

/** "Lands in 2 h 05 min" / "Landed 12 min ago", or "" for no time. */
export function timeToSta(sta, now = Date.now()) {
  const ms = Date.parse(sta) - now;
  if (Number.isNaN(ms)) return "";
  return ms >= 0 ? `Lands in ${duration(ms)}` : `Landed ${duration(ms)} ago`;
}

/** The server's message without its own "tell the captain…" sentence (the app says that once, with the number). */
export function plainReason(error) {
  const text = String((error && error.message) || "")
    .replace(/\s*(?:please\s+)?(?:tell the captain|call the 24-hour line)[^.]*\.?/gi, "")
    .trim();
  return text || "The server did not accept this note.";
}

/** The delivery status line after a pass (null: leave it as it is). */
export function deliveryStatusText(result, now = new Date(), nextDelayMs = 0) {
  const at = utcHhmm(now);
  if (result.status === "transient") {
    return `${TROUBLE_TEXT[result.trouble] || TROUBLE_TEXT.other} (${at} UTC). Trying again in ${Math.round((nextDelayMs || 0) / 1000)} s.`;
  }
  if (result.status === "ok") return `Checked at ${at} UTC.`;
  if (result.status === "not-enrolled") return "";
  return null;
}

/** The status line once nothing waits to be sent. */
export function nothingWaitingText(now = new Date()) {
  return `Nothing waiting to be sent (${utcHhmm(now)} UTC).`;
}

/** One word for "n delivered notes removed". */
export function clearedText(n) {
  return n === 1 ? "1 delivered note removed from this tablet." : `${n} delivered notes removed from this tablet.`;
}

/**
 * The outbox view. Elements: list, status (delivery status line), clearButton,
 * sendNow (focused after a removal). nearLanding(r) says if the landing banner
 * covers an entry; onRender(reports) runs after each render.
 */
export function createOutboxView({ list, status, clearButton, sendNow, hotline, nearLanding, noticeShown = () => false, onRender = () => {} }) {
  let reports = [];
  let clearArmedTimer = null;

  function reportItem(r, number) {
    const h = r.header || {};
    const li = el("li", { class: `report report-${r.state}`, "data-report-id": r.id, "data-state": r.state });
    if (r.state === "delivered" && r.case_state) li.setAttribute("data-case-state", r.case_state);
    li.append(el("p", { class: "report-head" }, noteTitle(r, number)));
    li.append(el("p", { class: "report-flight" }, `${h.dep || ""} \u2192 ${h.arr || ""} \u00b7 ${timeToSta(h.sta, clockNow().getTime())}`));
    li.append(el("p", { class: "report-state" }, el("span", { class: "state-badge" }, stateText(r))));
    if (r.state === "delivered" && r.receipt) {
      li.append(el("p", { class: "report-ref" }, "Reference ", el("strong", { class: "reference" }, r.receipt.reference || ""), ` · received ${utcClock(r.receipt.received_at)}`));
    }
    if (r.state === "rejected") {
      // The server's words only (its code stays in data-code); what to do is said once, below or in the landing notice.
      li.append(el("p", { class: "report-reason", "data-code": (r.error && r.error.code) || "" }, `Reason: ${plainReason(r.error)}`));
      let advice;
      if (nearLanding(r)) advice = ["Not delivered and cannot be re-sent. See the notice at the top."];
      else if (noticeShown()) advice = ["Not delivered and cannot be re-sent. See the notice above the form."];
      else advice = ["Not delivered and cannot be re-sent. If the captain does not know yet, tell them; or call the 24-hour line", ...hotlineLink(hotline)];
      li.append(el("p", { class: "report-advice" }, ...advice));
      // Removed only by hand, once the crew has read the reason.
      const dismiss = el("button", { type: "button", class: "btn btn-quiet dismiss-button", "data-dismiss": r.id }, "Dismiss");
      dismiss.setAttribute("aria-label", `Dismiss the note for ${h.flight || "this flight"} that was not accepted`);
      dismiss.addEventListener("click", () => dismissReport(r.id));
      li.append(el("p", { class: "actions" }, dismiss));
    }
    if ((r.state === "queued" || r.state === "sending") && r.last_error) {
      li.append(el("p", { class: "hint" }, `Last try: ${r.last_error.message || r.last_error.code}`));
    }
    return li;
  }

  // After a pass that failed, the line says so; once nothing waits to be sent
  // (delivered by this page, another tab or the service worker), it must not.
  function settleStatusLine() {
    if (status.dataset.kind !== "trouble" || reports.some((r) => PENDING.has(r.state))) return;
    setLine(nothingWaitingText(clockNow()), "ok");
  }

  function setLine(text, kind) {
    if (status.textContent !== text) status.textContent = text;
    status.dataset.kind = kind;
  }

  async function render() {
    try {
      reports = await listReports();
    } catch {
      setLine("The outbox cannot be read right now.", "info");
      return;
    }
    const numbers = noteNumbers(reports);
    list.replaceChildren(...reports.map((r) => reportItem(r, numbers.get(r.id))));
    settleStatusLine();
    if (!reports.length) list.append(el("li", { class: "empty hint" }, "No notes yet."));
    const anyDelivered = reports.some((r) => r.state === "delivered");
    if (!anyDelivered) disarmClear();
    clearButton.hidden = !anyDelivered;
    onRender(reports);
  }

  async function dismissReport(id) {
    const item = reports.find((r) => r.id === id);
    if (!item || item.state !== "rejected") return;
    try {
      await removeReport(id);
    } catch {
      setLine("The note could not be removed right now.", "info");
      return;
    }
    await render();
    sendNow.focus();
  }

  function disarmClear() {
    clearTimeout(clearArmedTimer);
    clearArmedTimer = null;
    clearButton.textContent = CLEAR_LABEL;
    delete clearButton.dataset.armed;
  }

  // "Clear delivered": the first tap arms it, a second tap within a few seconds clears.
  async function onClearDelivered() {
    if (!clearButton.dataset.armed) {
      clearButton.dataset.armed = "true";
      clearButton.textContent = CLEAR_CONFIRM;
      setLine("Tap again to remove delivered notes and their references from this tablet.", "info");
      clearArmedTimer = setTimeout(disarmClear, CLEAR_ARMED_MS);
      return;
    }
    disarmClear();
    try {
      setLine(clearedText(await clearDelivered()), "info");
    } catch {
      setLine("Delivered notes could not be removed right now.", "info");
    }
    await render();
    sendNow.focus();
  }

  clearButton.addEventListener("click", onClearDelivered);

  return {
    render,
    /** The entries as last rendered. */
    get reports() {
      return reports;
    },
    /** Say what a delivery pass came to. */
    showResult(result, nextDelayMs) {
      const text = deliveryStatusText(result, clockNow(), nextDelayMs);
      if (text !== null) setLine(text, result.status === "transient" ? "trouble" : "ok");
    },
    showSending() {
      setLine("Sending…", "sending");
    },
  };
}
