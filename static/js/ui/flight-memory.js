// What the form remembers for the crew's next note, for the rest of that
// flight only: the flight details (not sensitive, in localStorage) and the
// crew ID (sealed in IndexedDB by identity.js, never in clear). A tablet
// shared by crews never offers one crew's ID to the next.
import { takeLegacyUsername } from "../device.js";
import { loadIdentity, saveIdentity } from "../identity.js";
import { fillForm, FLIGHT_FIELDS } from "../form.js";
import { now as clockNow } from "../clock.js";

const FLIGHT_KEY = "cabin-notes-flight";
// Flight details are for the rest of that flight only.
const FLIGHT_KEEP_MS = 12 * 3600 * 1000;

/** The flight details worth filling in again at `now` (the crew ID never), or null. */
export function flightToRestore(remembered, now = Date.now()) {
  if (!remembered) return null;
  const sta = remembered.sta ? Date.parse(`${remembered.sta}Z`) : NaN;
  if (Number.isNaN(sta) || sta < now - FLIGHT_KEEP_MS) return null;
  const { crew_id, ...flight } = remembered;
  return flight;
}

/** The crew ID kept with a note on a flight still current at `now`, or "". */
export function crewIdToRestore(identity, now = Date.now()) {
  return flightToRestore({ sta: identity.crew_id_sta }, now) ? identity.crew_id : "";
}

/** Keep the flight details for the next note, and the crew ID sealed with its flight's arrival. */
export function rememberFlight(values) {
  keepFlight(values);
  saveIdentity({ crew_id: (values.crew_id || "").trim(), crew_id_sta: values.sta || "" }).catch(() => {});
}

/** Keep the flight details as typed (a reload before the first note is sent keeps them too). */
export function keepFlight(values) {
  const keep = {};
  for (const name of FLIGHT_FIELDS) if (name !== "crew_id") keep[name] = values[name] || "";
  try {
    localStorage.setItem(FLIGHT_KEY, JSON.stringify(keep));
  } catch {
    /* not essential */
  }
}

/** Fill in the remembered flight details, if still current; true if they were. */
export function restoreFlight(form) {
  try {
    const flight = flightToRestore(JSON.parse(localStorage.getItem(FLIGHT_KEY) || "null"), clockNow().getTime());
    if (flight) fillForm(form, flight);
    return !!flight;
  } catch {
    return false;
  }
}

/**
 * Fill in the remembered crew ID; returns the enrolled crew username ("" if
 * none), the default crew ID. Older versions kept these in clear: they are
 * sealed, then the clear copies dropped. Run `again` (an app left open keeps
 * the ID in the form after a note, for that flight only), it takes the kept
 * ID out of the form once its flight is over; one typed since stays.
 */
export async function restoreIdentity(form, again = false) {
  let identity = { crew_id: "", username: "" };
  try {
    identity = await loadIdentity();
    const legacy = {};
    const username = await takeLegacyUsername();
    if (username && !identity.username) legacy.username = username;
    const remembered = JSON.parse(localStorage.getItem(FLIGHT_KEY) || "null");
    if (remembered && "crew_id" in remembered) {
      if (remembered.crew_id && !identity.crew_id) Object.assign(legacy, { crew_id: remembered.crew_id, crew_id_sta: remembered.sta });
      delete remembered.crew_id;
      localStorage.setItem(FLIGHT_KEY, JSON.stringify(remembered));
    }
    if (Object.keys(legacy).length) identity = await saveIdentity(legacy);
  } catch {
    /* nothing kept, or storage unavailable: the crew types it */
  }
  const crewId = crewIdToRestore(identity, clockNow().getTime());
  const field = form.elements.namedItem("crew_id");
  if (again ? !crewId && field.value === identity.crew_id : crewId) field.value = crewId;
  return identity.username || "";
}
