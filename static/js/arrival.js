// Arrival the way crew know it: the time left to landing ("2:10", as the
// moving map or the captain's announcement gives it) or the landing time in
// UK local time, turned into the header's `sta` (UTC); and the words that
// show the result in UTC and in UK local time so the crew can check it.
// Pure functions: `now` is passed in (the corrected clock, clock.js).

const MINUTE_MS = 60000;
// The server takes an arrival within 48 hours of the note.
export const MAX_LANDS_IN_MIN = 48 * 60;
const UK_ZONE = "Europe/London";

export const LANDS_IN_MESSAGES = {
  empty: "Enter the time to landing as hours:minutes, for example 2:10 (or give the landing time below).",
  garbage: "Write the time to landing as hours:minutes, for example 2:10 or 0:45.",
  bare: "Is that hours or minutes? Write hours:minutes, for example 1:30 for an hour and a half, or 0:45.",
  negative: "The time to landing cannot be negative. If the flight has landed, give the landing time instead.",
  minutes: "Minutes go from 00 to 59: write for example 2:10.",
  far: "The time to landing must be under 48 hours.",
};

// "2:10", "02:10", "0:05", "12:00"
const COLON = /^(\d{1,2}):(\d{2})$/;
// "2h10", "2 h 10", "2h 10 min", "2h", "45 min", "45m"
const UNITS = /^(?:(\d{1,2})\s*h(?:rs?|ours?)?)?\s*(?:(\d{1,3})\s*(?:m|min|mins|minutes?)?)?$/i;

/**
 * The time left to landing typed by the crew -> {ok: true, minutes} or
 * {ok: false, error: message for the field}. A bare number ("130") is
 * refused: it could be 1:30 or 130 minutes, and a wrong guess moves the
 * arrival by almost an hour.
 */
export function parseLandsIn(value) {
  const text = String(value ?? "").trim().replace(/\s+/g, " ");
  if (!text) return { ok: false, error: LANDS_IN_MESSAGES.empty };
  if (/^[-\u2212]/.test(text)) return { ok: false, error: LANDS_IN_MESSAGES.negative };
  if (/^\d+$/.test(text)) return { ok: false, error: LANDS_IN_MESSAGES.bare };
  const colon = COLON.exec(text);
  const units = colon ? null : UNITS.exec(text);
  let hours;
  let minutes;
  if (colon) {
    [hours, minutes] = [Number(colon[1]), Number(colon[2])];
  } else if (units && /[a-z]/i.test(text) && (units[1] !== undefined || units[2] !== undefined)) {
    [hours, minutes] = [Number(units[1] || 0), Number(units[2] || 0)];
  } else {
    return { ok: false, error: LANDS_IN_MESSAGES.garbage };
  }
  // "2:75" and "2h75" are slips; "90 min" on its own is a time
  if (minutes > 59 && (colon || units[1] !== undefined)) return { ok: false, error: LANDS_IN_MESSAGES.minutes };
  const total = hours * 60 + minutes;
  if (total >= MAX_LANDS_IN_MIN) return { ok: false, error: LANDS_IN_MESSAGES.far };
  return { ok: true, minutes: total };
}

/** The arrival `minutes` from `now`, to the whole minute (what the crew gave). */
export function staFromLandsIn(minutes, now) {
  const t = now.getTime() + minutes * MINUTE_MS;
  return new Date(Math.round(t / MINUTE_MS) * MINUTE_MS);
}

function londonParts(date) {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: UK_ZONE,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  }).formatToParts(date);
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return { y: get("year"), mo: get("month"), d: get("day"), h: get("hour"), mi: get("minute") };
}

/** UK local time minus UTC at this instant, in ms (0 in winter, 1 h in summer). */
export function ukOffsetMs(date) {
  const p = londonParts(date);
  const wall = Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi);
  return wall - Math.floor(date.getTime() / MINUTE_MS) * MINUTE_MS;
}

const CLOCK = /^(\d{1,2})[:.h]?(\d{2})$/;

/**
 * A landing time in UK local time ("21:20", "2120") -> the next such moment
 * from an hour ago on ({ok, date}), or {ok: false, error}. A flight lands
 * within a day, so the day is the crew's "today or tomorrow".
 */
export function parseUkTime(value, now) {
  const text = String(value ?? "").trim();
  if (!text) return { ok: false, error: "Enter the landing time in UK local time, for example 21:20." };
  const m = CLOCK.exec(text);
  const h = m ? Number(m[1]) : NaN;
  const mi = m ? Number(m[2]) : NaN;
  if (!m || h > 23 || mi > 59) return { ok: false, error: "Write the UK landing time as hours:minutes on a 24-hour clock, for example 21:20." };
  const from = now.getTime() - 3600000;
  const today = londonParts(new Date(from));
  for (let dayOffset = 0; dayOffset <= 2; dayOffset++) {
    // The wall-clock time on that London day, read as UTC, less the zone's offset
    // (GMT or BST). When the clocks go back it happens twice: the earlier first.
    const wall = Date.UTC(today.y, today.mo - 1, today.d + dayOffset, h, mi);
    const matches = [wall - 3600000, wall].filter((t) => {
      const p = londonParts(new Date(t));
      return p.h === h && p.mi === mi && Date.UTC(p.y, p.mo - 1, p.d) === Date.UTC(today.y, today.mo - 1, today.d + dayOffset);
    });
    // When the clocks go forward the time does not exist: read it as GMT + offset after the change.
    const times = matches.length ? matches : [wall - ukOffsetMs(new Date(wall))];
    const next = times.find((t) => t >= from);
    if (next !== undefined) return { ok: true, date: new Date(next) };
  }
  return { ok: false, error: "Write the UK landing time as hours:minutes, for example 21:20." };
}

/** "21:20" in UTC. */
export function utcTime(date) {
  return date.toISOString().slice(11, 16);
}

/** "22:20" in UK local time, and its zone's name ("BST" or "GMT"). */
export function ukTime(date) {
  const p = londonParts(date);
  const zone = ukOffsetMs(date) === 0 ? "GMT" : "BST";
  return { time: `${String(p.h).padStart(2, "0")}:${String(p.mi).padStart(2, "0")}`, zone };
}

/** Whether `date` falls on another UK calendar day than `now` ("tomorrow" is said then). */
function dayWord(date, now) {
  const a = londonParts(date);
  const b = londonParts(now);
  if (a.y === b.y && a.mo === b.mo && a.d === b.d) return "";
  const tomorrow = londonParts(new Date(now.getTime() + 86400000));
  if (a.y === tomorrow.y && a.mo === tomorrow.mo && a.d === tomorrow.d) return " tomorrow";
  const yesterday = londonParts(new Date(now.getTime() - 86400000));
  if (a.y === yesterday.y && a.mo === yesterday.mo && a.d === yesterday.d) return " yesterday";
  return ` on ${date.toISOString().slice(0, 10)}`;
}

/** What the form shows for an arrival: "Lands 21:20 UTC, 22:20 UK time (BST)". */
export function arrivalText(date, now) {
  const uk = ukTime(date);
  return `Lands ${utcTime(date)} UTC, ${uk.time} UK time (${uk.zone})${dayWord(date, now)}.`;
}
