// The note form: people rows, the character counter, the arrival-time check,
// the folded flight line, sealing and queueing a note on submit (with the
// corrected clock), and the status line above Save.
import { uuid4 } from "../b64.js";
import { buildEnvelope, envelopeBytes, sealingKeys } from "../envelope.js";
import { getDevice, getSigningKey } from "../device.js";
import { enqueue } from "../outbox/store.js";
import { duration, rfc3339 } from "../times.js";
import { now as clockNow, told } from "../clock.js";
import { validateReport, readForm, fillForm, showErrors, clearErrors, resetReport, charCount, fieldLabel, parseUtcInput, LIMITS } from "../form.js";
import { windowsCoordinate } from "../drafts.js";
import { createDraftAutosave } from "./draft-autosave.js";
import { createArrivalFields } from "./arrival-fields.js";
import { createFlightSummary } from "./flight-summary.js";
import { keepFlight, rememberFlight, restoreFlight, restoreIdentity } from "./flight-memory.js";

// A scheduled arrival far in the past or future is probably a slip (a wrong
// day typed in a hurry), but a delayed flight can be past its time: warn once,
// and accept the same value on a second tap.
const STA_PAST_WARN_MS = 60 * 60000;
const STA_FUTURE_WARN_MS = 20 * 3600000;

export const SAVED_TEXT = "Saved and sealed. It will be sent as soon as there is a connection.";
export const NEAR_TEXT = "Not delivered yet and landing soon: see the notice at the top.";
export const ALREADY_QUEUED_TEXT = "This note was already saved from another window of this app and is in the list of notes; nothing more was sent. "
  + "If what is here adds to it, tap Save and send again to send it as a new note.";
/** What the status line says while the note being written cannot be saved on the tablet. */
const DRAFT_NOT_KEPT = "This note is not saved on this tablet";
export function draftNotKeptText(reason) {
  return `${DRAFT_NOT_KEPT} (${reason}): closing the app would lose it.`;
}
// Why the tablet could not store something, in the crew's words.
function storageReason(err) {
  if (err && err.name === "QuotaExceededError") return "the tablet's storage is full: free space on it, or clear delivered notes";
  return (err && err.message) || "storage failed";
}
export const EXPIRED_DRAFT_TEXT = "An unfinished note left unchanged for 12 hours was deleted.";
export const ASIDE_DRAFT_TEXT = "An older unfinished note is kept aside until there is a connection.";
/** What the status line adds when more unfinished notes are kept than the form shows. */
export function moreDraftsText(n) {
  return n === 1 ? "1 more unfinished note is kept; it opens here when this one is sent."
    : `${n} more unfinished notes are kept; each opens here when the one before it is sent.`;
}
// What sealAndQueue did (false: nothing, with the reason shown).
const QUEUED = "queued";
const ALREADY_QUEUED = "already-queued";

// Fields of the flight part of the form: an error on one opens the folded flight line.
const FLIGHT_KEYS = new Set(["flight", "dep", "arr", "sta", "lands_in", "lands_at_uk"]);

/**
 * The warning for an arrival time this far from now (ms, + ahead), or null if
 * it is plausible. field: the input it was given in ("lands_in" words it as
 * the time to landing).
 */
export function staWarning(offsetMs, field = "sta") {
  if (offsetMs >= -STA_PAST_WARN_MS && offsetMs <= STA_FUTURE_WARN_MS) return null;
  const hours = Math.abs(offsetMs) / 3600000;
  const span = hours >= 2 ? `${Math.round(hours)} h` : duration(offsetMs).replace(/ 00 min$/, "");
  if (field === "lands_in") return `Landing in ${span}? Check the time to landing, then tap Save and send again to confirm.`;
  return `This arrival time is ${offsetMs < 0 ? `${span} ago` : `in ${span}`} (UTC). Check the date and time, then tap Save and send again to confirm.`;
}

export function counterText(text) {
  return `${charCount(text)} of ${LIMITS.narrative} characters.`;
}

/**
 * The status line for a note just submitted, as the outbox now has it:
 * [text, kind], or null when it is gone. nearLanding: the banner covers it.
 */
export function noteStatus(r, nearLanding) {
  if (!r) return null;
  if (r.state === "rejected") return ["This note was not accepted, so it was not delivered. See \u201cYour notes\u201d below.", "error"];
  if (r.state === "delivered") return ["Saved, sealed and delivered.", "ok"];
  if (nearLanding) return [`${SAVED_TEXT} ${NEAR_TEXT}`, "warn"];
  return [SAVED_TEXT, "ok"];
}

/**
 * The cleartext header of a new note (DESIGN.md sections 3, 3b) for this
 * device: version 2 (X-Wing) when the keys it holds allow, else version 1.
 */
export function noteHeader(device, flight, now, id = uuid4()) {
  const { version, recipients } = sealingKeys(device.recipients);
  return {
    v: version,
    id,
    device: device.device_id,
    created: rfc3339(now),
    rcpt: recipients.map((r) => r.kid),
    airline: device.airline,
    flight: flight.flight,
    dep: flight.dep,
    arr: flight.arr,
    sta: flight.sta,
    urgency: flight.urgency,
  };
}

/**
 * The report form part. form: the <form>; personTemplate: a person row's
 * <template>; envelopeLimit: the largest envelope the server takes;
 * onQueued(id): a note was sealed and queued.
 */
export function createReportForm({ form, personTemplate, envelopeLimit, onQueued = () => {} }) {
  const find = (sel) => form.querySelector(sel);
  const arrival = createArrivalFields(form, { onChange: () => (staWarnedFor = null) });
  const summary = createFlightSummary({
    box: find("#flight-summary"),
    text: find("#flight-summary-text"),
    changeButton: find("#flight-change"),
    group: find("#flight-group"),
    firstField: find("#f-flight"),
  });
  const statusLine = find("#form-status");
  const codes = [...form.querySelectorAll("input[name=\"indicators\"]")].map((input) => input.value);
  // The note being written: its id and its sealed draft (emptying the form begins another note).
  const drafts = createDraftAutosave(form, { onSaved: showDraftSaved });
  // The default crew ID (the crew username from enrollment): in memory here, kept on the tablet only sealed.
  let defaultCrewId = "";
  // After a submit the status line follows that note (noteId), so that it never
  // says "will be sent" next to a refusal; any other message stops that.
  let statusNoteId = null;
  let statusKind = "";
  let statusText = "";
  // Words kept at the end of the status line while it follows one note.
  let addendum = { noteId: null, text: "" };
  let personSeq = 0;
  let submitting = false;
  let staWarnedFor = null;

  function setStatus(text, kind = "", noteId = null) {
    statusNoteId = noteId;
    statusKind = kind;
    statusText = text;
    if (noteId && addendum.noteId === noteId) text = `${text} ${addendum.text}`;
    const className = "form-status" + (kind ? ` form-status-${kind}` : "");
    if (statusLine.textContent !== text) statusLine.textContent = text; // role="status": only real changes are announced
    if (statusLine.className !== className) statusLine.className = className;
  }

  // An autosave failed: said until one goes through (the words on screen are all there is).
  function showDraftSaved(ok, err) {
    if (!ok) setStatus(draftNotKeptText(storageReason(err)), "error");
    else if (statusKind === "error" && statusText.startsWith(DRAFT_NOT_KEPT)) setStatus("");
  }

  function setDefaultCrewId(username) {
    defaultCrewId = username;
    if (username) find("#f-crew-id").placeholder = username;
  }

  function numberPeople() {
    [...form.querySelectorAll("[data-person]")].forEach((row, i) => {
      row.querySelector(".person-number").textContent = String(i + 1);
    });
  }

  function addPersonRow() {
    const frag = personTemplate.content.cloneNode(true);
    const row = frag.querySelector("[data-person]");
    const n = ++personSeq;
    for (const label of row.querySelectorAll("label[data-for]")) {
      const name = label.dataset.for;
      const input = row.querySelector(`[name="${name}"]`);
      input.id = `p${n}-${name}`;
      label.htmlFor = input.id;
    }
    row.querySelector(".remove-person").addEventListener("click", () => {
      row.remove();
      numberPeople();
      drafts.schedule();
      find("#add-person").focus();
    });
    find("#people").append(row);
    numberPeople();
    return row;
  }

  function updateCounter() {
    find("#f-narrative-count").textContent = counterText(find("#f-narrative").value);
  }

  // Show the messages by their fields (opening any closed section that holds
  // one), name the first field in the status line and move focus to it.
  function reportErrors(errors) {
    if (Object.keys(errors).some((k) => FLIGHT_KEYS.has(k))) summary.expand();
    const first = showErrors(form, errors);
    const label = first ? fieldLabel(first) : "";
    setStatus(label ? `Please check the marked fields, starting with "${label}".` : "Please check the marked fields.", "error");
    if (first) first.focus();
  }

  async function currentDevice() {
    try {
      return await getDevice();
    } catch {
      return null;
    }
  }

  // Seal and queue: QUEUED, ALREADY_QUEUED (from another window), or false with the reason shown.
  async function sealAndQueue(header, body, device) {
    try {
      const key = await getSigningKey();
      if (!key) throw new Error("the tablet's key is missing");
      const envelope = await buildEnvelope(header, body, sealingKeys(device.recipients).recipients, key);
      if (envelopeBytes(envelope) > envelopeLimit) {
        // The server could never accept it: keep everything in the form and say what to shorten.
        reportErrors({ narrative: "This note is too long to send; shorten the text or the descriptions." });
        return false;
      }
      await enqueue(header, envelope);
      return QUEUED;
    } catch (err) {
      if (err && err.name === "AlreadyQueued") return ALREADY_QUEUED;
      setStatus(`This note was NOT queued (${storageReason(err)}). It is still in the form; please try again.`, "error");
      return false;
    }
  }

  // Fold the flight fields into one line when they hold a complete flight; returns whether they did.
  function foldFlight(values) {
    const sta = parseUtcInput(values.sta);
    if (!(sta && values.flight && values.dep && values.arr)) return false;
    summary.collapse({ flight: values.flight, dep: values.dep, arr: values.arr, sta });
    return true;
  }

  async function submitReport() {
    const now = clockNow(); // the tablet's clock, corrected by what the server last said
    const values = readForm(form);
    const ukError = arrival.ukError();
    const result = validateReport(values, { codes, username: defaultCrewId, now });
    if (ukError || !result.ok) {
      reportErrors(ukError ? { lands_at_uk: ukError, ...result.errors } : result.errors);
      return;
    }
    const source = arrival.source();
    const warning = staWarning(Date.parse(result.flight.sta) - now.getTime(), source);
    if (warning && staWarnedFor !== result.flight.sta) {
      staWarnedFor = result.flight.sta;
      summary.expand();
      const first = showErrors(form, { [source]: warning });
      setStatus(source === "lands_in" ? "Check the time to landing, then tap Save and send again to confirm." : "Check the scheduled arrival, then tap Save and send again to confirm.", "error");
      if (first) first.focus();
      return;
    }
    clearErrors(form);
    const device = await currentDevice();
    if (!device || device.revoked) {
      setStatus("This note was NOT queued: this tablet is not set up to send notes. It is still in the form.", "error");
      return;
    }
    const header = noteHeader(device, result.flight, now, drafts.noteId());
    const queued = await sealAndQueue(header, result.body, device);
    if (!queued) return;
    if (queued === ALREADY_QUEUED) {
      setStatus(ALREADY_QUEUED_TEXT, "warn");
      drafts.forget(); // the form keeps what it holds; changed and sent, that is a new note
      return;
    }
    const { flight, dep, arr, urgency } = result.flight;
    const sta = result.flight.sta.slice(0, 16); // the datetime-local form of the sta sent
    rememberFlight({ ...values, flight, dep, arr, sta, urgency });
    resetReport(form); // keeps the flight details, urgency included
    fillForm(form, { flight, dep, arr, sta, urgency });
    arrival.show();
    foldFlight({ flight, dep, arr, sta });
    // The draft goes once any save still sealing is done; nothing here waits
    // for that (a storage call that never settles must not hold the send).
    const discarded = drafts.discard();
    updateCounter();
    setStatus(SAVED_TEXT, "ok", header.id);
    await onQueued(header.id);
    // Another unfinished note no window shows, if any, comes next (without
    // Web Locks it may be open in another window: it waits for a reload).
    if (windowsCoordinate()) discarded.then(restoreDraft).catch(() => {});
  }

  async function onSubmit(event) {
    event.preventDefault();
    if (submitting) return;
    submitting = true;
    const button = find("#submit-button");
    button.disabled = true;
    try {
      await submitReport();
    } finally {
      submitting = false;
      button.disabled = false;
    }
  }

  /** Restore what the crew had: flight, crew ID, and an unfinished draft. */
  async function restore() {
    if (restoreFlight(form)) foldFlight(readForm(form));
    setDefaultCrewId(await restoreIdentity(form));
    await restoreDraft();
    told.then(restoreDraft); // on the server's clock: a draft left aside as old may be new, an old one goes
    arrival.show();
    updateCounter();
  }

  // Fill the form with the last saved draft no other window shows (abandoned
  // drafts expire first), and say so; the status line says what follows it.
  async function restoreDraft() {
    let found;
    try {
      found = await drafts.restore();
      if (found.draft) {
        fillForm(form, found.draft.values, addPersonRow);
        if (!foldFlight(readForm(form))) summary.expand(); // the draft's own flight, not the last one sent
        arrival.show();
        updateCounter();
      }
    } catch {
      return; /* no draft; the form is as it was */
    }
    const { draft, expired, aside, more } = found;
    // A note said to be aside that is not any more (the server told the time,
    // another window opened it): the sentence goes, and one that now waits
    // for the note in the form is said to.
    const asideSaid = statusLine.textContent.includes(ASIDE_DRAFT_TEXT);
    const words = [];
    if (draft) words.push(statusNoteId ? "Your other unfinished note is now in the form." : "Your unfinished note was restored.");
    if (more && (draft || asideSaid)) words.push(moreDraftsText(more));
    if (expired) words.push(EXPIRED_DRAFT_TEXT);
    if (aside) words.push(ASIDE_DRAFT_TEXT);
    if (!words.length && !asideSaid) return;
    if (!statusNoteId) {
      setStatus(words.join(" "));
      return;
    }
    // Just after a send the status line follows that note: the words stay beside what it says of it.
    addendum = { noteId: words.length && statusNoteId, text: words.join(" ") };
    setStatus(statusText, statusKind, statusNoteId);
  }

  // The inputs of the flight details (the three of the arrival set `sta`).
  const FLIGHT_INPUTS = ["flight", "dep", "arr", "sta", "urgency", "lands_in", "lands_at_uk"];
  form.addEventListener("submit", onSubmit);
  form.addEventListener("input", (e) => {
    if (e.target.name === "narrative") updateCounter();
    drafts.schedule();
  });
  form.addEventListener("change", (e) => {
    drafts.schedule();
    // The flight details once typed (not sensitive): a reload keeps them.
    if (FLIGHT_INPUTS.includes(e.target.name)) keepFlight(readForm(form));
  });
  find("#add-person").addEventListener("click", () => {
    const row = addPersonRow();
    row.querySelector("[name=\"role\"]").focus();
    drafts.schedule();
  });

  return {
    restore,
    saveDraftNow: drafts.saveNow,
    /** Save the note as the form holds it and wait: whether it is kept. */
    flushDraft: drafts.flush,
    /**
     * A newer version in another window takes the storage, and this window's
     * code can keep nothing more: the form closes (nothing typed from now on
     * could be kept) and what it holds is saved. Whether it was kept.
     */
    holdForUpgrade() {
      form.dataset.heldForUpgrade = "true";
      find("#form-body").disabled = true;
      return drafts.flush();
    },
    setDefaultCrewId,
    /** Keep the status line in step with the note it follows (reports: the outbox as rendered). */
    followNote(reports, nearLanding) {
      const id = drafts.begunId();
      if (id && reports.some((x) => x.id === id)) {
        // Another window queued this note (both restored the same draft, as
        // where there are no Web Locks): said at once, and the form is a new note.
        setStatus(ALREADY_QUEUED_TEXT, "warn");
        drafts.forget();
        return;
      }
      if (!statusNoteId) return;
      const r = reports.find((x) => x.id === statusNoteId);
      const status = noteStatus(r, !!r && nearLanding(r));
      if (status) setStatus(status[0], status[1], r.id);
      else setStatus(""); // dismissed or gone
    },
  };
}
