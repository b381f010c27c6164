// The landing notice at the top of the crew app: notes not yet delivered for
// a flight that lands soon (or has landed), so the crew tell the captain.
import { duration } from "../times.js";
import { el, hotlineLink } from "./dom.js";

// Undelivered: waiting, being sent, or rejected and not yet dismissed (a
// rejected note will never arrive, so it needs the captain all the more).
const UNDELIVERED = new Set(["queued", "sending", "rejected"]);

/** Whether an outbox entry is undelivered and lands within `landingMinutes` (or has landed). */
export function nearLanding(r, landingMinutes, now = Date.now()) {
  return UNDELIVERED.has(r.state) && !!r.header && Date.parse(r.header.sta) - now <= landingMinutes * 60000;
}

/**
 * The banner's two sentences for these outbox entries, or null when there is
 * nothing to say. Worded to be right whether or not the captain was already told.
 */
export function bannerText(reports, landingMinutes, now = Date.now()) {
  const soon = reports.filter((r) => nearLanding(r, landingMinutes, now));
  if (!soon.length) return null;
  const flights = [...new Set(soon.map((r) => r.header.flight))].join(", ");
  const rejected = soon.filter((r) => r.state === "rejected").length;
  const ahead = soon.map((r) => Date.parse(r.header.sta) - now).filter((ms) => ms >= 0);
  const when = ahead.length ? `landing in ${duration(Math.min(...ahead))}` : "the flight has landed";
  return [
    `${soon.length === 1 ? "1 note" : `${soon.length} notes`} for ${flights} not yet delivered` +
      `${rejected ? ` (${rejected} not accepted, cannot be re-sent)` : ""} and ${when}.`,
    "If the captain does not know yet, tell them now; or call the 24-hour line",
  ];
}

/** The banner element's view: render(reports) shows or hides it. */
export function createLandingBanner({ banner, hotline, landingMinutes }) {
  let shownText = null;
  return {
    nearLanding: (r, now = Date.now()) => nearLanding(r, landingMinutes, now),
    get shown() {
      return !banner.hidden;
    },
    render(reports, now = Date.now()) {
      const parts = bannerText(reports, landingMinutes, now);
      // role="alert": touch the DOM only when the words change, or it is announced again on every render.
      const text = parts ? JSON.stringify([...parts, hotline]) : "";
      if (text === shownText) return;
      shownText = text;
      if (!parts) {
        banner.hidden = true;
        banner.replaceChildren();
        return;
      }
      banner.replaceChildren(el("p", {}, el("strong", {}, parts[0])), el("p", {}, parts[1], ...hotlineLink(hotline)));
      banner.hidden = false;
    },
    /** Bring the crew to it (focused, so it is read out); false if it is not shown. */
    focus() {
      if (banner.hidden) return false;
      banner.scrollIntoView({ block: "start" });
      banner.focus({ preventScroll: true });
      return true;
    },
  };
}
