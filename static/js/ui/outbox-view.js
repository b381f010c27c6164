// "Your notes": the outbox list with each note's state, dismissing a note that
// was not accepted, "Clear delivered", and the delivery status line.
import { duration, utcClock, utcHhmm } from "../times.js";
import { listReports, removeReport, clearDelivered } from "../outbox/store.js";
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
  other: "The note could not be sent yet",
};

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

/** One word for "n delivered notes removed". */
export function clearedText(n) {
  return n === 1 ? "1 delivered note removed from this tablet." : `${n} delivered notes removed from this tablet.`;
}

/**
 * The outbox view. Elements: list, status (delivery status line), clearButton,
 * sendNow (focused after a removal). nearLanding(r) says if the landing banner
 * covers an entry; onRender(reports) runs after each render.
 */
export function createOutboxView({ list, status, clearButton, sendNow, hotline, nearLanding, onRender = () => {} }) {
  let reports = [];
  let clearArmedTimer = null;

  function reportItem(r) {
    const h = r.header || {};
    const li = el("li", { class: `report report-${r.state}`, "data-report-id": r.id, "data-state": r.state });
    li.append(el("p", { class: "report-flight" }, el("strong", {}, `${h.flight || ""} ${h.dep || ""} to ${h.arr || ""}`), ` · ${timeToSta(h.sta)}`));
    li.append(el("p", { class: "report-state" }, el("span", { class: "state-badge" }, STATE_TEXT[r.state] || r.state)));
    if (r.state === "delivered" && r.receipt) {
      li.append(el("p", { class: "report-ref" }, "Reference ", el("strong", { class: "reference" }, r.receipt.reference || ""), ` · received ${utcClock(r.receipt.received_at)}`));
    }
    if (r.state === "rejected") {
      // The server's words only (its code stays in data-code); what to do is said once, below or in the landing notice.
      li.append(el("p", { class: "report-reason", "data-code": (r.error && r.error.code) || "" }, `Reason: ${plainReason(r.error)}`));
      li.append(
        nearLanding(r)
          ? el("p", { class: "report-advice" }, "Not delivered and cannot be re-sent. See the notice at the top.")
          : el("p", { class: "report-advice" }, "Not delivered and cannot be re-sent. If the captain does not know yet, tell them; or call the 24-hour line", ...hotlineLink(hotline))
      );
      // Removed only by hand, once the crew has read the reason.
      const dismiss = el("button", { type: "button", class: "btn btn-quiet dismiss-button", "data-dismiss": r.id }, "Dismiss");
      dismiss.setAttribute("aria-label", `Dismiss the note for ${h.flight || "this flight"} that was not accepted`);
      dismiss.addEventListener("click", () => dismissReport(r.id));
      li.append(el("p", { class: "actions" }, dismiss));
    }
    if ((r.state === "queued" || r.state === "sending") && r.last_error) {
      li.append(el("p", { class: "hint" }, `Last try: ${r.last_error.message || r.last_error.code}`));
    }
    li.append(el("p", { class: "hint" }, `Written ${utcClock(h.created || r.queued_at)}`));
    return li;
  }

  async function render() {
    try {
      reports = await listReports();
    } catch {
      status.textContent = "The outbox cannot be read right now.";
      return;
    }
    list.replaceChildren(...reports.map(reportItem));
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
      status.textContent = "The note could not be removed right now.";
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
      status.textContent = "Tap again to remove delivered notes and their references from this tablet.";
      clearArmedTimer = setTimeout(disarmClear, CLEAR_ARMED_MS);
      return;
    }
    disarmClear();
    try {
      status.textContent = clearedText(await clearDelivered());
    } catch {
      status.textContent = "Delivered notes could not be removed right now.";
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
      const text = deliveryStatusText(result, new Date(), nextDelayMs);
      if (text !== null) status.textContent = text;
    },
    showSending() {
      status.textContent = "Sending…";
    },
    /** Scroll a note into view (centred: the entry grows as delivery is tried). */
    reveal(id) {
      const item = list.querySelector(`[data-report-id="${CSS.escape(id)}"]`);
      if (item) item.scrollIntoView({ block: "center" });
    },
  };
}
