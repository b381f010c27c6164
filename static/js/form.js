// The report form: reading, filling, and client-side validation that mirrors
// the server's schema (crewreport/report.py). validateReport() is pure.
import { rfc3339 } from "./times.js";

export const ROLES = ["possible_victim", "possible_trafficker", "companion", "other"];
export const SEXES = ["female", "male", "unknown"];
export const AGE_RANGES = ["under_12", "12_17", "18_24", "25_39", "40_59", "60_plus", "unknown"];
export const URGENCIES = ["routine", "priority", "immediate"];
export const DOCUMENTS_HELD_BY = ["self", "companion", "other", "unknown"];
export const PHASES = ["boarding", "taxi", "cruise", "descent", "other"];
export const LIMITS = { narrative: 5000, description: 500, people: 20, indicators: 60, languages: 10, language: 40, crew_id: 32, name: 100 };

const FLIGHT = /^[A-Z0-9]{2}[0-9]{1,4}[A-Z]?$/;
const AIRPORT = /^[A-Z]{3}$/;
const SEAT = /^[0-9]{1,3}[A-K]$/;
const LOCAL_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/;
const STA_WINDOW_MS = 48 * 3600 * 1000;

// Length in characters as Python counts them (code points).
export function charCount(s) {
  return [...s].length;
}

/** "2026-12-01T14:35" (a datetime-local value, read as UTC) -> Date, or null. */
export function parseUtcInput(value) {
  const m = LOCAL_TIME.exec(String(value || "").trim());
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  const t = Date.UTC(y, mo - 1, d, h, mi, s);
  const date = new Date(t);
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return null;
  return date;
}

/** Date -> "YYYY-MM-DDTHH:MM" in UTC, for a datetime-local input. */
export function toUtcInput(date) {
  return date.toISOString().slice(0, 16);
}

function text(v) {
  return typeof v === "string" ? v.trim() : "";
}

/**
 * values: plain object as readForm() gives it. ctx: {codes: Set|Array, username, now: Date}.
 * Returns {ok, errors: {field: message}, flight: {flight, dep, arr, sta, urgency}, body}.
 * Error keys are field names; people fields are "people.N.field".
 */
export function validateReport(values, ctx = {}) {
  const errors = {};
  const now = ctx.now || new Date();
  const codes = ctx.codes ? new Set(ctx.codes) : null;

  const flight = text(values.flight).toUpperCase().replace(/\s+/g, "");
  if (!flight) errors.flight = "Enter the flight number, for example BA75.";
  else if (!FLIGHT.test(flight)) errors.flight = "A flight number looks like BA75 or ZZ101: two letters or digits, then 1 to 4 digits.";

  const dep = text(values.dep).toUpperCase();
  const arr = text(values.arr).toUpperCase();
  if (!dep) errors.dep = "Enter the departure airport code, for example LOS.";
  else if (!AIRPORT.test(dep)) errors.dep = "Use the three-letter airport code, for example LOS.";
  if (!arr) errors.arr = "Enter the arrival airport code, for example LHR.";
  else if (!AIRPORT.test(arr)) errors.arr = "Use the three-letter airport code, for example LHR.";
  if (!errors.dep && !errors.arr && dep === arr) errors.arr = "Arrival must differ from departure.";

  let sta = null;
  if (!text(values.sta)) errors.sta = "Enter the scheduled arrival time (UTC).";
  else {
    sta = parseUtcInput(values.sta);
    if (!sta) errors.sta = "Enter the scheduled arrival as a date and time (UTC).";
    else if (Math.abs(sta.getTime() - now.getTime()) > STA_WINDOW_MS) errors.sta = "The scheduled arrival must be within 48 hours of now.";
  }

  const urgency = text(values.urgency) || "routine";
  if (!URGENCIES.includes(urgency)) errors.urgency = "Choose how urgent this is.";

  const narrative = text(values.narrative);
  if (!narrative) errors.narrative = "Describe what you noticed.";
  else if (charCount(narrative) > LIMITS.narrative) errors.narrative = `Keep it to ${LIMITS.narrative} characters (now ${charCount(narrative)}).`;

  const indicators = Array.isArray(values.indicators) ? [...new Set(values.indicators)] : [];
  if (indicators.length > LIMITS.indicators) errors.indicators = `Tick at most ${LIMITS.indicators} signs.`;
  else if (codes && indicators.some((c) => !codes.has(c))) errors.indicators = "An unknown sign was ticked; reload the app.";

  const people = [];
  const rawPeople = Array.isArray(values.people) ? values.people : [];
  if (rawPeople.length > LIMITS.people) errors.people = `At most ${LIMITS.people} people per report.`;
  rawPeople.forEach((p, i) => {
    const person = {};
    const role = text(p.role);
    if (!ROLES.includes(role)) errors[`people.${i}.role`] = "Choose who this person is.";
    else person.role = role;
    const seat = text(p.seat).toUpperCase().replace(/\s+/g, "");
    if (seat) {
      if (!SEAT.test(seat)) errors[`people.${i}.seat`] = "A seat looks like 32B (row number, then a letter A to K).";
      else person.seat = seat;
    }
    const sex = text(p.sex);
    if (sex) {
      if (!SEXES.includes(sex)) errors[`people.${i}.sex`] = "Choose from the list.";
      else person.sex = sex;
    }
    const age = text(p.age_range);
    if (age) {
      if (!AGE_RANGES.includes(age)) errors[`people.${i}.age_range`] = "Choose from the list.";
      else person.age_range = age;
    }
    const description = text(p.description);
    if (description) {
      if (charCount(description) > LIMITS.description) errors[`people.${i}.description`] = `Keep it to ${LIMITS.description} characters (now ${charCount(description)}).`;
      else person.description = description;
    }
    people.push(person);
  });

  let crewId = text(values.crew_id) || text(ctx.username);
  if (!crewId) errors.crew_id = "Enter your crew ID.";
  else if (charCount(crewId) > LIMITS.crew_id) {
    if (text(values.crew_id)) errors.crew_id = `A crew ID has at most ${LIMITS.crew_id} characters.`;
    else crewId = [...crewId].slice(0, LIMITS.crew_id).join("");
  }
  const reporter = { crew_id: crewId };
  const name = text(values.reporter_name);
  if (name) {
    if (charCount(name) > LIMITS.name) errors.reporter_name = `At most ${LIMITS.name} characters.`;
    else reporter.name = name;
  }

  let observedAt = now;
  if (text(values.observed_at)) {
    const t = parseUtcInput(values.observed_at);
    if (!t) errors.observed_at = "Enter a date and time (UTC), or leave it empty for now.";
    else if (t.getTime() > now.getTime() + 5 * 60 * 1000) errors.observed_at = "This time is in the future.";
    else observedAt = t;
  }

  const body = {
    observed_at: rfc3339(observedAt),
    indicators,
    people,
    narrative,
    captain_informed: values.captain_informed === true,
    reporter,
  };

  const languages = (Array.isArray(values.languages) ? values.languages : String(values.languages || "").split(/[,;\n]/))
    .map((s) => String(s).trim())
    .filter(Boolean);
  if (languages.length) {
    if (languages.length > LIMITS.languages) errors.languages = `At most ${LIMITS.languages} languages.`;
    else if (languages.some((l) => charCount(l) > LIMITS.language)) errors.languages = `Each language at most ${LIMITS.language} characters.`;
    else body.languages = languages;
  }
  const docs = text(values.documents_held_by);
  if (docs) {
    if (!DOCUMENTS_HELD_BY.includes(docs)) errors.documents_held_by = "Choose from the list.";
    else body.documents_held_by = docs;
  }
  const phase = text(values.phase_of_flight);
  if (phase) {
    if (!PHASES.includes(phase)) errors.phase_of_flight = "Choose from the list.";
    else body.phase_of_flight = phase;
  }
  body.share_identity_with_airline = values.share_identity_with_airline === true;

  return {
    ok: Object.keys(errors).length === 0,
    errors,
    flight: { flight, dep, arr, sta: sta ? rfc3339(sta) : null, urgency },
    body,
  };
}

// ---- DOM side ----

const SIMPLE = ["flight", "dep", "arr", "sta", "urgency", "narrative", "crew_id", "reporter_name", "languages", "documents_held_by", "phase_of_flight", "observed_at"];
const CHECKS = ["captain_informed", "share_identity_with_airline"];
const PERSON_FIELDS = ["seat", "role", "sex", "age_range", "description"];
// Kept after a note is sent, for the rest of the flight (urgency too: it is not sensitive).
export const FLIGHT_FIELDS = ["flight", "dep", "arr", "sta", "urgency", "crew_id"];

export function readForm(form) {
  const values = {};
  for (const name of SIMPLE) {
    const el = form.elements.namedItem(name);
    if (el && !(el instanceof RadioNodeList)) values[name] = el.value;
    else if (el) values[name] = el.value; // radio group
  }
  for (const name of CHECKS) {
    const el = form.elements.namedItem(name);
    values[name] = !!(el && el.checked);
  }
  values.indicators = [...form.querySelectorAll('input[name="indicators"]:checked')].map((el) => el.value);
  values.people = [...form.querySelectorAll("[data-person]")].map((row) => {
    const p = {};
    for (const f of PERSON_FIELDS) {
      const el = row.querySelector(`[name="${f}"]`);
      p[f] = el ? el.value : "";
    }
    return p;
  });
  return values;
}

export function fillForm(form, values, addPersonRow) {
  for (const name of SIMPLE) {
    if (values[name] === undefined) continue;
    const el = form.elements.namedItem(name);
    if (!el) continue;
    if (el instanceof RadioNodeList) {
      for (const r of el) r.checked = r.value === values[name];
    } else el.value = values[name];
  }
  for (const name of CHECKS) {
    const el = form.elements.namedItem(name);
    if (el && values[name] !== undefined) el.checked = !!values[name];
  }
  if (Array.isArray(values.indicators)) {
    const set = new Set(values.indicators);
    for (const el of form.querySelectorAll('input[name="indicators"]')) el.checked = set.has(el.value);
  }
  if (Array.isArray(values.people) && addPersonRow) {
    for (const row of form.querySelectorAll("[data-person]")) row.remove();
    for (const p of values.people) {
      const row = addPersonRow();
      for (const f of PERSON_FIELDS) {
        const el = row.querySelector(`[name="${f}"]`);
        if (el && p[f] !== undefined) el.value = p[f];
      }
    }
  }
}

function errorTarget(form, key) {
  const m = /^people\.(\d+)\.(\w+)$/.exec(key);
  if (m) {
    const row = form.querySelectorAll("[data-person]")[Number(m[1])];
    return row ? row.querySelector(`[name="${m[2]}"]`) : null;
  }
  if (key === "indicators") return form.querySelector('input[name="indicators"]');
  if (key === "people") return form.querySelector("#add-person");
  const el = form.elements.namedItem(key);
  if (el instanceof RadioNodeList) return el[0];
  return el;
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid="true"]')) {
    el.removeAttribute("aria-invalid");
    const ids = (el.getAttribute("aria-describedby") || "").split(/\s+/).filter((x) => x && !x.startsWith("err-"));
    if (ids.length) el.setAttribute("aria-describedby", ids.join(" "));
    else el.removeAttribute("aria-describedby");
  }
}

let errorSeq = 0;

/** The words that name a field, for the status line: its label (with "Person N" for people), or its group's legend. */
export function fieldLabel(el) {
  const clean = (s) => String(s || "").replace(/\s+/g, " ").trim();
  if (el.name === "indicators") {
    const legend = el.closest("fieldset") && el.closest("fieldset").querySelector("legend");
    return clean(legend && legend.textContent);
  }
  const own = el.labels && el.labels[0] ? clean(el.labels[0].textContent) : clean(el.getAttribute("aria-label") || el.textContent);
  const person = el.closest("[data-person]");
  if (person) {
    const n = person.querySelector(".person-number");
    return `Person ${clean(n && n.textContent)}: ${own}`;
  }
  return own;
}

/**
 * Show each message next to its field; returns the first invalid element.
 * A closed <details> holding an invalid field is opened, so that the message
 * can be seen and the field focused.
 */
export function showErrors(form, errors) {
  clearErrors(form);
  let first = null;
  for (const [key, message] of Object.entries(errors)) {
    const el = errorTarget(form, key);
    if (!el) continue;
    const id = `err-${++errorSeq}`;
    const p = document.createElement("p");
    p.className = "field-error";
    p.id = id;
    p.textContent = message;
    const holder = el.closest(".field") || el.parentElement;
    holder.appendChild(p);
    el.setAttribute("aria-invalid", "true");
    const described = (el.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    described.push(id);
    el.setAttribute("aria-describedby", described.join(" "));
    for (let d = el.closest("details"); d; d = d.parentElement && d.parentElement.closest("details")) d.open = true;
    if (!first) first = el;
  }
  return first;
}

/** After a successful submit: empty the report, keep flight details. */
export function resetReport(form) {
  const keep = {};
  for (const name of FLIGHT_FIELDS) {
    const el = form.elements.namedItem(name);
    if (el) keep[name] = el.value;
  }
  form.reset();
  for (const row of form.querySelectorAll("[data-person]")) row.remove();
  for (const [name, value] of Object.entries(keep)) form.elements.namedItem(name).value = value;
  clearErrors(form);
}
