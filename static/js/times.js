// Time formats and durations for every page (crew app and officers' pages),
// with the same rule as the server's crewreport/times.py so both say the same words.

const MINUTE_MS = 60000;

/**
 * A duration in words: "45 min", "2 h 05 min", "3 d 4 h". Sign ignored,
 * floored to whole minutes; hours from 1 h, days from 48 h.
 */
export function duration(ms) {
  let minutes = Math.floor(Math.abs(ms) / MINUTE_MS);
  if (minutes < 60) return `${minutes} min`;
  let hours = Math.floor(minutes / 60);
  minutes %= 60;
  if (hours < 48) return `${hours} h ${String(minutes).padStart(2, "0")} min`;
  const days = Math.floor(hours / 24);
  hours %= 24;
  return `${days} d ${hours} h`;
}

/** RFC 3339 UTC with "Z" and whole seconds ("2026-01-02T03:04:05Z"), as the server requires. */
export function rfc3339(date) {
  return new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/** "HH:MM" of a time in UTC, or "" if it is not a time. */
export function utcHhmm(value) {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString().slice(11, 16);
}

/** "HH:MM UTC", as the crew app shows clock times, or "". */
export function utcClock(value) {
  const hhmm = utcHhmm(value);
  return hhmm ? `${hhmm} UTC` : "";
}
