// After a first note, the flight details fold into one line ("ZZ202 ACC → LGW
// · lands 21:20Z · in 1 h 10 min · Change"), so the next note on that flight
// needs only its words and Save; "Change" opens the fields again.
import { duration } from "../times.js";
import { utcTime } from "../arrival.js";
import { now as clockNow } from "../clock.js";

const TICK_MS = 30000;

/** The one line for a flight ({flight, dep, arr, sta: Date}) at `now` (ms). */
export function summaryText(flight, now) {
  const ms = flight.sta.getTime() - now;
  const when = ms >= 0 ? `in ${duration(ms)}` : `landed ${duration(ms)} ago`;
  return `${flight.flight} ${flight.dep} \u2192 ${flight.arr} \u00b7 lands ${utcTime(flight.sta)}Z \u00b7 ${when}`;
}

/**
 * Elements: box (the summary, with text and changeButton), group (the
 * flight fieldset), firstField (focused on "Change"). onExpand() runs when
 * the crew opens the fields.
 */
export function createFlightSummary({ box, text, changeButton, group, firstField, onExpand = () => {} }) {
  let flight = null;

  function tick() {
    if (!flight) return;
    const line = summaryText(flight, clockNow().getTime());
    if (text.textContent !== line) text.textContent = line;
  }

  // Folded, the fields stay in the page (a screen reader can reach them, a
  // script can fill them) but leave the tab order; focusing one unfolds them.
  const fields = () => group.querySelectorAll("input, select, textarea, button, summary");

  function expand({ focus = false } = {}) {
    flight = null;
    box.hidden = true;
    group.classList.remove("folded");
    for (const f of fields()) f.removeAttribute("tabindex");
    if (focus) firstField.focus();
  }

  changeButton.addEventListener("click", () => {
    expand({ focus: true });
    onExpand();
  });
  group.addEventListener("focusin", () => {
    if (flight !== null) expand();
  });
  setInterval(tick, TICK_MS);

  return {
    /** Fold the flight fields into one line for this flight. */
    collapse(value) {
      flight = value;
      tick();
      group.classList.add("folded");
      for (const f of fields()) f.setAttribute("tabindex", "-1");
      box.hidden = false;
    },
    expand,
    get collapsed() {
      return flight !== null;
    },
  };
}
