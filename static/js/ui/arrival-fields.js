// The arrival on the note form: "Lands in" (H:MM), or the landing time in UK
// local time, or the exact scheduled arrival (UTC). Whichever the crew last
// typed sets `sta` at that moment from the corrected clock, and the line
// under them shows the result in UTC and in UK local time to check it.
import { parseLandsIn, staFromLandsIn, parseUkTime, arrivalText } from "../arrival.js";
import { parseUtcInput, toUtcInput } from "../form.js";
import { now as clockNow } from "../clock.js";

/**
 * Wire the three arrival inputs of `form`. onChange() runs after `sta`
 * changed through any of them.
 */
export function createArrivalFields(form, { onChange = () => {} } = {}) {
  const find = (sel) => form.querySelector(sel);
  const landsIn = find("[name=\"lands_in\"]");
  const uk = find("[name=\"lands_at_uk\"]");
  const sta = find("[name=\"sta\"]");
  const result = find("#f-arrival");
  const idleText = result.textContent;

  function show() {
    const d = parseUtcInput(sta.value);
    const text = d ? arrivalText(d, clockNow()) : idleText;
    if (result.textContent !== text) result.textContent = text;
  }

  function setSta(date) {
    sta.value = date ? toUtcInput(date) : "";
    show();
    onChange();
  }

  landsIn.addEventListener("input", () => {
    const r = parseLandsIn(landsIn.value);
    uk.value = "";
    setSta(r.ok ? staFromLandsIn(r.minutes, clockNow()) : null);
  });
  uk.addEventListener("input", () => {
    const r = parseUkTime(uk.value, clockNow());
    landsIn.value = "";
    setSta(r.ok ? r.date : null);
  });
  const exact = () => {
    landsIn.value = "";
    uk.value = "";
    show();
    onChange();
  };
  sta.addEventListener("input", exact);
  sta.addEventListener("change", exact);

  return {
    show,
    /** Which input the arrival came from, for messages: "lands_in", "lands_at_uk" or "sta". */
    source() {
      if (landsIn.value.trim()) return "lands_in";
      if (uk.value.trim()) return "lands_at_uk";
      return "sta";
    },
    /** A message for a UK landing time that could not be read (and so set no arrival), or null. */
    ukError() {
      if (!uk.value.trim() || sta.value) return null;
      const r = parseUkTime(uk.value, clockNow());
      return r.ok ? null : r.error;
    },
  };
}
