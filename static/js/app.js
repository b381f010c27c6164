// Wires the crew app together: service worker, enrollment, form, drafts,
// outbox view, delivery triggers, landing banner, discretion.
import { uuid4, rfc3339 } from "./b64.js";
import { buildEnvelope, envelopeBytes, MAX_ENVELOPE_BYTES } from "./envelope.js";
import { getDevice, getSigningKey, fetchSession, signOut, enroll, forgetDevice, refreshKeys, takeLegacyUsername, DeviceCheck } from "./device.js";
import { enqueue, listReports, removeReport, deliver, pruneDelivered, clearDelivered, DeliveryScheduler, Backoff, CHANNEL_NAME } from "./outbox.js";
import { saveDraft, loadDraft, wipeDraft, expireDraft } from "./drafts.js";
import { loadIdentity, saveIdentity } from "./identity.js";
import { setRequestTimeout } from "./net.js";
import { validateReport, readForm, fillForm, showErrors, clearErrors, resetReport, toUtcInput, charCount, fieldLabel, FLIGHT_FIELDS } from "./form.js";

const $ = (sel) => document.querySelector(sel);
const root = $("#crew-app");
const form = $("#report-form");
const HOTLINE = root.dataset.hotline || "";
const LANDING_MINUTES = Number(root.dataset.landingMinutes || 30);
const FLIGHT_KEY = "cabin-notes-flight";
const REENROLL_KEY = "cabin-notes-reenroll";
const SIGNOUT_KEY = "cabin-notes-signout-pending";
const testConfig = window.__CABIN_NOTES_CONFIG || {};
// Tests only: shorter request deadline and envelope limit (the real ones are unit-tested).
if (testConfig.requestTimeout) setRequestTimeout(testConfig.requestTimeout);
const ENVELOPE_LIMIT = testConfig.maxEnvelopeBytes || MAX_ENVELOPE_BYTES;

const codes = [...form.querySelectorAll('input[name="indicators"]')].map((el) => el.value);
let device = null;
// The default crew ID (the crew username from enrollment): in memory here,
// kept on the tablet only sealed (identity.js).
let defaultCrewId = "";

// ---------- small helpers ----------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function formatDuration(ms) {
  const mins = Math.round(Math.abs(ms) / 60000);
  const h = Math.floor(mins / 60);
  const m = mins % 60;
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min`;
}

function timeToSta(sta, now = Date.now()) {
  const ms = Date.parse(sta) - now;
  if (Number.isNaN(ms)) return "";
  return ms >= 0 ? `Lands in ${formatDuration(ms)}` : `Landed ${formatDuration(ms)} ago`;
}

function utcClock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : `${d.toISOString().slice(11, 16)} UTC`;
}

// After a submit the status line follows that note (noteId), so that it never
// says "will be sent" next to a refusal; any other message stops that.
let statusNoteId = null;

function setStatus(text, kind = "", noteId = null) {
  statusNoteId = noteId;
  const p = $("#form-status");
  const className = "form-status" + (kind ? ` form-status-${kind}` : "");
  if (p.textContent !== text) p.textContent = text; // role="status": only real changes are announced
  if (p.className !== className) p.className = className;
}

const SAVED_TEXT = "Saved and sealed. It will be sent as soon as there is a connection.";
const NEAR_TEXT = "Not delivered yet and landing soon: see the notice at the top.";

function followNoteStatus() {
  if (!statusNoteId) return;
  const r = lastReports.find((x) => x.id === statusNoteId);
  if (!r) setStatus(""); // dismissed or gone
  else if (r.state === "rejected") setStatus("This note was not accepted, so it was not delivered. See \u201cYour notes\u201d below.", "error", r.id);
  else if (r.state === "delivered") setStatus("Saved, sealed and delivered.", "ok", r.id);
  else if (!$("#landing-banner").hidden && nearLanding(r)) setStatus(`${SAVED_TEXT} ${NEAR_TEXT}`, "warn", r.id);
  else setStatus(SAVED_TEXT, "ok", r.id);
}

// ---------- service worker and updates ----------

let reloadRequested = false;

async function setupServiceWorker() {
  if (!("serviceWorker" in navigator)) return null;
  try {
    const reg = await navigator.serviceWorker.register("/sw.js", { scope: "/", type: "module", updateViaCache: "none" });
    const offerUpdate = () => {
      if (reg.waiting && navigator.serviceWorker.controller) $("#update-banner").hidden = false;
    };
    offerUpdate();
    reg.addEventListener("updatefound", () => {
      const worker = reg.installing;
      if (worker) worker.addEventListener("statechange", () => worker.state === "installed" && offerUpdate());
    });
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      if (reloadRequested) location.reload();
    });
    $("#reload-button").addEventListener("click", async () => {
      await saveDraftNow();
      reloadRequested = true;
      if (reg.waiting) reg.waiting.postMessage({ type: "skip-waiting" });
      else location.reload();
    });
    return reg;
  } catch (err) {
    return null;
  }
}

async function requestBackgroundSync() {
  try {
    const reg = await navigator.serviceWorker?.getRegistration("/");
    if (reg && reg.sync) await reg.sync.register("outbox");
  } catch (err) {
    /* Background Sync is optional; the timer covers it */
  }
}

// ---------- enrollment ----------

function showDevice(state, message, { signIn = false, reenroll = false } = {}) {
  const box = $("#device-status");
  box.dataset.enrolled = state === "enrolled" ? "true" : "false";
  box.dataset.state = state;
  $("#device-message").textContent = message;
  $("#sign-in-link").hidden = !signIn;
  $("#reenroll-button").hidden = !reenroll;
  $("#device-actions").hidden = !(signIn || reenroll);
  // Said at the form itself, before anyone types: a revoked tablet cannot send what is written now.
  const notice = $("#form-device-notice");
  const revoked = state === "revoked";
  if (notice.hidden === revoked) notice.hidden = !revoked;
  if (revoked) form.setAttribute("aria-describedby", "form-device-notice");
  else form.removeAttribute("aria-describedby");
}

function describeRevoked(d) {
  const why =
    d && d.revoked && d.revoked.code === "unknown_device"
      ? "This tablet is no longer registered with the airline, so it can no longer send notes."
      : "This tablet was revoked by the airline, so it can no longer send notes.";
  return `${why} Speak to your airline's security team if you need to, then sign in to set it up again.`;
}

// Whether the server still knows this tablet as enrolled (device.js): on start
// and on `online` at once, before a delivery pass at most every few minutes.
// No answer (offline, timeout, server trouble) changes nothing.
const deviceCheck = new DeviceCheck({ intervalMs: testConfig.deviceCheckInterval || 5 * 60000 });

async function checkDevice({ force = false } = {}) {
  if (force && navigator.onLine === false) return;
  const state = await deviceCheck.run({ force });
  if (state === "revoked") await refreshDevice();
}

function describeEnrolled(d) {
  return `This tablet is set up for airline ${d.airline}. Notes can be written offline.`;
}

async function refreshDevice({ allowReenroll = false } = {}) {
  try {
    device = await getDevice();
  } catch (err) {
    showDevice("error", "This browser's storage is not available, so notes cannot be kept here. Check that private browsing is off.");
    return;
  }
  if (device && !device.revoked) {
    showDevice("enrolled", describeEnrolled(device));
    checkDevice({ force: true }).catch(() => {});
    refreshKeys().then((d) => d && !d.revoked && (device = d)).catch(() => {});
    if (localStorage.getItem(SIGNOUT_KEY)) {
      // the sign-out after enrollment did not get through: try again
      signOut().then((ok) => ok && localStorage.removeItem(SIGNOUT_KEY)).catch(() => {});
    }
    return;
  }
  if (device && device.revoked && !allowReenroll && !localStorage.getItem(REENROLL_KEY)) {
    showDevice("revoked", describeRevoked(device), { reenroll: true });
    return;
  }
  let session;
  try {
    session = await fetchSession();
  } catch (err) {
    showDevice("offline", "This tablet is not set up yet. Connect to the internet and sign in to set it up.", { signIn: true });
    return;
  }
  if (!session.signed_in) {
    showDevice("signed-out", "This tablet is not set up yet. Sign in once, while online, to set it up.", { signIn: true });
    return;
  }
  if (session.role !== "crew") {
    showDevice("wrong-role", `You are signed in as ${session.username}, which is not a cabin crew account. Sign in with a crew account to set up this tablet.`, { signIn: true });
    return;
  }
  showDevice("enrolling", "Setting up this tablet…");
  try {
    if (device) await forgetDevice();
    device = await enroll(session);
    localStorage.removeItem(REENROLL_KEY);
    if (session.username) {
      defaultCrewId = session.username;
      $("#f-crew-id").placeholder = session.username;
      try {
        await saveIdentity({ username: session.username });
      } catch (err) {
        /* kept in memory for this session only */
      }
    }
    // Least privilege on an unattended tablet: reporting needs only the device
    // key, so the web session ends here. Setting the tablet up again needs a new sign-in.
    localStorage.setItem(SIGNOUT_KEY, "1");
    const signedOut = await signOut(session.csrf_token);
    if (signedOut) localStorage.removeItem(SIGNOUT_KEY);
    showDevice("enrolled", describeEnrolled(device) + (signedOut ? " You have been signed out; sending notes needs no sign-in." : ""));
    scheduler.run("enrolled");
  } catch (err) {
    device = null;
    showDevice("error", `This tablet could not be set up: ${err.message}`, { signIn: err.code === "unauthenticated" || err.code === "http_401" });
  }
}

async function reenroll() {
  let session = null;
  try {
    session = await fetchSession();
  } catch (err) {
    showDevice("revoked", "Connect to the internet to set up this tablet again.", { reenroll: true });
    return;
  }
  if (!session.signed_in || session.role !== "crew") {
    localStorage.setItem(REENROLL_KEY, "1");
    location.assign("/auth/login?next=/");
    return;
  }
  await refreshDevice({ allowReenroll: true });
}

// ---------- people rows ----------

let personSeq = 0;

function addPersonRow() {
  const frag = $("#person-template").content.cloneNode(true);
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
    scheduleDraftSave();
    $("#add-person").focus();
  });
  $("#people").append(row);
  numberPeople();
  return row;
}

function numberPeople() {
  [...document.querySelectorAll("[data-person]")].forEach((row, i) => {
    row.querySelector(".person-number").textContent = String(i + 1);
  });
}

// ---------- drafts ----------

let draftTimer = null;
let draftDirty = false;

function hasContent(values) {
  return !!(values.narrative.trim() || values.indicators.length || values.people.length);
}

async function saveDraftNow() {
  clearTimeout(draftTimer);
  draftTimer = null;
  if (!draftDirty) return;
  draftDirty = false;
  const values = readForm(form);
  try {
    if (hasContent(values)) await saveDraft(values);
    else await wipeDraft();
  } catch (err) {
    /* autosave is best effort; the form itself is untouched */
  }
}

function scheduleDraftSave() {
  draftDirty = true;
  clearTimeout(draftTimer);
  draftTimer = setTimeout(saveDraftNow, 600);
}

// Flight details (not sensitive) are kept in localStorage for the next note;
// the crew ID is not: it is kept sealed (identity.js).
function rememberFlight(values) {
  const keep = {};
  for (const name of FLIGHT_FIELDS) if (name !== "crew_id") keep[name] = values[name] || "";
  try {
    localStorage.setItem(FLIGHT_KEY, JSON.stringify(keep));
  } catch (err) {
    /* not essential */
  }
  saveIdentity({ crew_id: (values.crew_id || "").trim() }).catch(() => {});
}

async function restoreIdentity() {
  let identity = { crew_id: "", username: "" };
  try {
    identity = await loadIdentity();
    // Older versions kept these in clear: seal them, then drop the clear copies.
    const legacy = {};
    const username = await takeLegacyUsername();
    if (username && !identity.username) legacy.username = username;
    const remembered = JSON.parse(localStorage.getItem(FLIGHT_KEY) || "null");
    if (remembered && "crew_id" in remembered) {
      if (remembered.crew_id && !identity.crew_id) legacy.crew_id = remembered.crew_id;
      delete remembered.crew_id;
      localStorage.setItem(FLIGHT_KEY, JSON.stringify(remembered));
    }
    if (Object.keys(legacy).length) identity = await saveIdentity(legacy);
  } catch (err) {
    /* nothing kept, or storage unavailable: the crew types it */
  }
  defaultCrewId = identity.username || "";
  if (identity.crew_id) fillForm(form, { crew_id: identity.crew_id });
  if (defaultCrewId) $("#f-crew-id").placeholder = defaultCrewId;
}

async function restoreForm() {
  try {
    const remembered = JSON.parse(localStorage.getItem(FLIGHT_KEY) || "null");
    if (remembered) {
      // Flight details are for the rest of that flight only.
      const sta = remembered.sta ? Date.parse(`${remembered.sta}Z`) : NaN;
      if (!Number.isNaN(sta) && sta >= Date.now() - 12 * 3600 * 1000) {
        const { crew_id, ...flight } = remembered;
        fillForm(form, flight);
      }
    }
  } catch (err) {
    /* ignore */
  }
  await restoreIdentity();
  try {
    await expireDraft(); // an abandoned draft goes 12 hours after it was last saved
  } catch (err) {
    /* loadDraft checks again */
  }
  try {
    const draft = await loadDraft();
    if (draft) {
      fillForm(form, draft, addPersonRow);
      setStatus("Your unfinished note was restored.");
    }
  } catch (err) {
    /* no draft */
  }
  updateCounter();
}

function updateCounter() {
  const n = charCount($("#f-narrative").value);
  $("#f-narrative-count").textContent = `${n} of 5000 characters.`;
}

// ---------- submit ----------

let submitting = false;
// A scheduled arrival far in the past or future is probably a slip (a wrong
// day typed in a hurry), but a delayed flight can be past its time: warn once,
// and accept the same value on a second tap.
const STA_PAST_WARN_MS = 60 * 60000;
const STA_FUTURE_WARN_MS = 20 * 3600000;
let staWarnedFor = null;

async function onSubmit(event) {
  event.preventDefault();
  if (submitting) return;
  submitting = true;
  const button = $("#submit-button");
  button.disabled = true;
  try {
    await submitReport();
  } finally {
    submitting = false;
    button.disabled = false;
  }
}

async function submitReport() {
  const now = new Date();
  const values = readForm(form);
  const result = validateReport(values, { codes, username: defaultCrewId, now });
  if (!result.ok) {
    reportErrors(result.errors);
    return;
  }
  const staOffset = Date.parse(result.flight.sta) - now.getTime();
  if ((staOffset < -STA_PAST_WARN_MS || staOffset > STA_FUTURE_WARN_MS) && staWarnedFor !== values.sta) {
    staWarnedFor = values.sta;
    const hours = Math.abs(staOffset) / 3600000;
    const span = hours >= 2 ? `${Math.round(hours)} h` : formatDuration(staOffset).replace(/ 00 min$/, "");
    const first = showErrors(form, {
      sta: `This arrival time is ${staOffset < 0 ? `${span} ago` : `in ${span}`} (UTC). Check the date and time, then tap Save and send again to confirm.`,
    });
    setStatus("Check the scheduled arrival, then tap Save and send again to confirm.", "error");
    if (first) first.focus();
    return;
  }
  clearErrors(form);
  let current;
  try {
    current = await getDevice();
  } catch (err) {
    current = null;
  }
  if (!current || current.revoked) {
    setStatus("This note was NOT queued: this tablet is not set up to send notes. It is still in the form.", "error");
    return;
  }
  const header = {
    v: 1,
    id: uuid4(),
    device: current.device_id,
    created: rfc3339(now),
    rcpt: current.recipients.map((r) => r.kid),
    airline: current.airline,
    flight: result.flight.flight,
    dep: result.flight.dep,
    arr: result.flight.arr,
    sta: result.flight.sta,
    urgency: result.flight.urgency,
  };
  try {
    const key = await getSigningKey();
    if (!key) throw new Error("the tablet's key is missing");
    const envelope = await buildEnvelope(header, result.body, current.recipients, key);
    if (envelopeBytes(envelope) > ENVELOPE_LIMIT) {
      // The server could never accept it: keep everything in the form and say what to shorten.
      reportErrors({ narrative: "This note is too long to send; shorten the text or the descriptions." });
      return;
    }
    await enqueue(header, envelope);
  } catch (err) {
    const reason = err && err.name === "QuotaExceededError" ? "the tablet's storage is full" : (err && err.message) || "storage failed";
    setStatus(`This note was NOT queued (${reason}). It is still in the form; please try again.`, "error");
    return;
  }
  rememberFlight({ ...values, flight: result.flight.flight, dep: result.flight.dep, arr: result.flight.arr, urgency: result.flight.urgency });
  resetReport(form); // keeps the flight details, urgency included
  fillForm(form, { flight: result.flight.flight, dep: result.flight.dep, arr: result.flight.arr, urgency: result.flight.urgency });
  draftDirty = false;
  clearTimeout(draftTimer);
  try {
    await wipeDraft();
  } catch (err) {
    /* the draft key goes with it next time */
  }
  updateCounter();
  setStatus(SAVED_TEXT, "ok", header.id);
  await renderOutbox();
  showWhatMatters(header.id);
  requestBackgroundSync();
  scheduler.backoff.reset();
  scheduler.run("submit");
}

// After a submit, bring the crew to what matters: the landing notice if it is
// shown (focused, so it is read out), otherwise the new note in the outbox.
function showWhatMatters(id) {
  const banner = $("#landing-banner");
  if (!banner.hidden) {
    banner.scrollIntoView({ block: "start" });
    banner.focus({ preventScroll: true });
    return;
  }
  const item = document.querySelector(`#outbox [data-report-id="${CSS.escape(id)}"]`);
  if (item) item.scrollIntoView({ block: "center" }); // centred: the entry grows as delivery is tried
}

// Show the messages by their fields (opening any closed section that holds
// one), name the first field in the status line and move focus to it.
function reportErrors(errors) {
  const first = showErrors(form, errors);
  const label = first ? fieldLabel(first) : "";
  setStatus(label ? `Please check the marked fields, starting with "${label}".` : "Please check the marked fields.", "error");
  if (first) first.focus();
}

// ---------- outbox view and landing banner ----------

const STATE_TEXT = {
  queued: "Waiting to send",
  sending: "Sending…",
  delivered: "Delivered",
  rejected: "Not accepted",
};

function hotlineLink() {
  return HOTLINE ? [": ", el("a", { href: `tel:${HOTLINE.replace(/[^0-9+]/g, "")}` }, HOTLINE), "."] : ["."];
}

// The server's message without its own "tell the captain…" sentence (the app says that once, with the number).
function plainReason(error) {
  const text = String((error && error.message) || "")
    .replace(/\s*(?:please\s+)?(?:tell the captain|call the 24-hour line)[^.]*\.?/gi, "")
    .trim();
  return text || "The server did not accept this note.";
}

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
        : el("p", { class: "report-advice" }, "Not delivered and cannot be re-sent. If the captain does not know yet, tell them; or call the 24-hour line", ...hotlineLink())
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

let lastReports = [];

async function renderOutbox() {
  let reports;
  try {
    reports = await listReports();
  } catch (err) {
    $("#delivery-status").textContent = "The outbox cannot be read right now.";
    return;
  }
  lastReports = reports;
  const list = $("#outbox");
  list.replaceChildren(...reports.map(reportItem));
  if (!reports.length) list.append(el("li", { class: "empty hint" }, "No notes yet."));
  const anyDelivered = reports.some((r) => r.state === "delivered");
  if (!anyDelivered) disarmClear();
  $("#clear-delivered").hidden = !anyDelivered;
  renderBanner();
  followNoteStatus();
}

async function dismissReport(id) {
  const item = lastReports.find((r) => r.id === id);
  if (!item || item.state !== "rejected") return;
  try {
    await removeReport(id);
  } catch (err) {
    $("#delivery-status").textContent = "The note could not be removed right now.";
    return;
  }
  await renderOutbox();
  $("#send-now").focus();
}

// "Clear delivered": the first tap arms it, a second tap within a few seconds clears.
const CLEAR_LABEL = "Clear delivered";
const CLEAR_CONFIRM = "Tap again to clear";
let clearArmedTimer = null;

function disarmClear() {
  clearTimeout(clearArmedTimer);
  clearArmedTimer = null;
  const b = $("#clear-delivered");
  b.textContent = CLEAR_LABEL;
  delete b.dataset.armed;
}

async function onClearDelivered() {
  const b = $("#clear-delivered");
  if (!b.dataset.armed) {
    b.dataset.armed = "true";
    b.textContent = CLEAR_CONFIRM;
    $("#delivery-status").textContent = "Tap again to remove delivered notes and their references from this tablet.";
    clearArmedTimer = setTimeout(disarmClear, 5000);
    return;
  }
  disarmClear();
  try {
    const n = await clearDelivered();
    $("#delivery-status").textContent = n === 1 ? "1 delivered note removed from this tablet." : `${n} delivered notes removed from this tablet.`;
  } catch (err) {
    $("#delivery-status").textContent = "Delivered notes could not be removed right now.";
  }
  await renderOutbox();
  $("#send-now").focus();
}

// Undelivered: waiting, being sent, or rejected and not yet dismissed (a
// rejected note will never arrive, so it needs the captain all the more).
const UNDELIVERED = new Set(["queued", "sending", "rejected"]);
let bannerText = null;

function nearLanding(r, now = Date.now()) {
  return UNDELIVERED.has(r.state) && !!r.header && Date.parse(r.header.sta) - now <= LANDING_MINUTES * 60000;
}

// Worded to be right whether or not the captain was already told ("I have told the captain").
function renderBanner() {
  const now = Date.now();
  const soon = lastReports.filter((r) => nearLanding(r, now));
  const banner = $("#landing-banner");
  let parts = null;
  if (soon.length) {
    const flights = [...new Set(soon.map((r) => r.header.flight))].join(", ");
    const rejected = soon.filter((r) => r.state === "rejected").length;
    const ahead = soon.map((r) => Date.parse(r.header.sta) - now).filter((ms) => ms >= 0);
    const when = ahead.length ? `landing in ${formatDuration(Math.min(...ahead))}` : "the flight has landed";
    parts = [
      `${soon.length === 1 ? "1 note" : `${soon.length} notes`} for ${flights} not yet delivered` +
        `${rejected ? ` (${rejected} not accepted, cannot be re-sent)` : ""} and ${when}.`,
      "If the captain does not know yet, tell them now; or call the 24-hour line",
    ];
  }
  // role="alert": touch the DOM only when the words change, or it is announced again on every render.
  const text = parts ? JSON.stringify([...parts, HOTLINE]) : "";
  if (text === bannerText) return;
  bannerText = text;
  if (!parts) {
    banner.hidden = true;
    banner.replaceChildren();
    return;
  }
  banner.replaceChildren(el("p", {}, el("strong", {}, parts[0])), el("p", {}, parts[1], ...hotlineLink()));
  banner.hidden = false;
}

// ---------- delivery ----------

const backoff = new Backoff({ base: testConfig.backoffBase || 5000, max: testConfig.backoffMax || 60000 });

// What the status line says after a failed pass: only a network error is "no connection".
const TROUBLE_TEXT = {
  network: "No connection to the server",
  server: "The server is not available at the moment",
  receipt: "The server answered, but its receipt could not be checked, so the note is kept",
  busy: "The server asked to wait a little",
  other: "The note could not be sent yet",
};

const scheduler = new DeliveryScheduler({
  deliverFn: async () => {
    try {
      await checkDevice(); // throttled: not on every back-off tick
    } catch (err) {
      /* never stands in the way of delivery */
    }
    return deliver();
  },
  backoff,
  onResult(result) {
    const status = $("#delivery-status");
    const at = new Date().toISOString().slice(11, 16);
    if (result.status === "transient") {
      status.textContent = `${TROUBLE_TEXT[result.trouble] || TROUBLE_TEXT.other} (${at} UTC). Trying again in ${Math.round((scheduler.nextDelay || 0) / 1000)} s.`;
    } else if (result.status === "ok") {
      status.textContent = `Checked at ${at} UTC.`;
    } else if (result.status === "not-enrolled") {
      status.textContent = "";
    }
    renderOutbox();
    if (result.rejected) refreshDevice();
  },
});

// ---------- discretion ----------

function hideApp() {
  saveDraftNow();
  $("#app-view").hidden = true;
  $("#neutral-view").hidden = false;
  $("#neutral-title").setAttribute("tabindex", "-1");
  $("#neutral-title").focus();
}

function unhideApp() {
  $("#neutral-view").hidden = true;
  $("#app-view").hidden = false;
  $("#hide-button").focus();
}

// ---------- start ----------

async function start() {
  form.addEventListener("submit", onSubmit);
  form.addEventListener("input", (e) => {
    if (e.target.name === "narrative") updateCounter();
    scheduleDraftSave();
  });
  form.addEventListener("change", scheduleDraftSave);
  $("#add-person").addEventListener("click", () => {
    const row = addPersonRow();
    row.querySelector('[name="role"]').focus();
    scheduleDraftSave();
  });
  $("#send-now").addEventListener("click", () => {
    backoff.reset();
    $("#delivery-status").textContent = "Sending…";
    scheduler.run("manual");
  });
  $("#hide-button").addEventListener("click", hideApp);
  $("#unhide-button").addEventListener("click", unhideApp);
  $("#reenroll-button").addEventListener("click", reenroll);
  $("#clear-delivered").addEventListener("click", onClearDelivered);
  $("#f-sta").addEventListener("input", () => (staWarnedFor = null));
  $("#f-sta").addEventListener("change", () => {
    staWarnedFor = null;
    const v = $("#f-sta").value;
    const d = v ? new Date(`${v}Z`) : null;
    $("#f-sta-hint").textContent =
      d && !Number.isNaN(d.getTime())
        ? `Coordinated Universal Time (Zulu). On this tablet's clock: ${d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" })}.`
        : "Coordinated Universal Time (Zulu).";
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") saveDraftNow();
    else scheduler.run("visible");
  });
  window.addEventListener("pagehide", () => saveDraftNow());
  window.addEventListener("online", () => {
    backoff.reset();
    checkDevice({ force: true }).catch(() => {});
    scheduler.run("online");
  });
  try {
    const channel = new BroadcastChannel(CHANNEL_NAME);
    channel.addEventListener("message", (e) => {
      if (e.data && e.data.type === "outbox-changed") renderOutbox();
    });
  } catch (err) {
    /* no BroadcastChannel */
  }
  setInterval(async () => {
    try {
      await pruneDelivered(); // a tablet left open drops old delivered notes too
    } catch (err) {
      /* shown by renderOutbox if the outbox cannot be read */
    }
    renderOutbox();
  }, 30000);

  await restoreForm();
  try {
    await pruneDelivered(); // delivered entries go 12 hours after their arrival time
  } catch (err) {
    /* the outbox view says so if it cannot be read */
  }
  await renderOutbox();
  setupServiceWorker();
  await refreshDevice();
  await scheduler.run("start");
  root.dataset.ready = "true";
}

window.__cabinNotes = { scheduler, renderOutbox };
start();
