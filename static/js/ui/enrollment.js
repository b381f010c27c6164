// The device status box: whether this tablet is set up (enrolled) to send
// notes, setting it up after a crew sign-in, and telling a revoked tablet so.
import { getDevice, getSigningKey, fetchSession, signOut, enroll, refreshKeys, checkDeviceState, DeviceCheck } from "../device.js";
import { saveIdentity } from "../identity.js";
import { keepStorage } from "../store.js";
import { el, hotlineLink } from "./dom.js";

const REENROLL_KEY = "cabin-notes-reenroll";
const SIGNOUT_KEY = "cabin-notes-signout-pending";

export const STORAGE_UNAVAILABLE_TEXT = "This browser's storage is not available, so notes cannot be kept here. Check that private browsing is off.";
export const OFFLINE_TEXT = "This tablet is not set up yet. Connect to the internet and sign in to set it up.";
export const SIGNED_OUT_TEXT = "This tablet is not set up yet. Sign in once, while online, to set it up.";
// A refused set-up because too many tablets are being set up at once (429) is
// tried again by itself, after the wait the server names (1 to 60 s), this many times.
export const ENROLL_RETRIES = 5;
// Safari keeps a Home Screen app's storage but may clear a tab's, and the two
// may not share it: a tablet is best set up from the icon (docs/operations.md).
export const HOME_SCREEN_FIRST_TEXT = "On an iPad, first add this app to the Home Screen (Share, Add to Home Screen) and set it up from there.";

/** What the box says to a tablet not set up yet (safariTab: iOS Safari, not opened from the Home Screen). */
export function notSetUpText(text, { safariTab = false } = {}) {
  return safariTab ? `${text} ${HOME_SCREEN_FIRST_TEXT}` : text;
}

export const HELD_TEXT = "Close the other windows and tabs of this app: one of them is holding its storage. It starts once they are closed.";
export const REENROLL_OFFLINE_TEXT = "Connect to the internet to set up this tablet again.";

// Said when the browser will not promise to keep the app's storage (keepStorage() false).
export const STORAGE_NOT_KEPT_TEXT = "This browser may clear notes waiting to be sent if the app goes unused for a week: "
  + "open it once there is a connection. On an iPad, use the Home Screen icon.";

/**
 * What the box says for an enrolled tablet. kept: whether the browser keeps the
 * app's storage; offline: whether a service worker serves this page (without
 * one the app cannot open offline, so that is never promised).
 */
export function enrolledText(device, { signedOut = false, kept = null, offline = !!navigator.serviceWorker?.controller } = {}) {
  let text = `This tablet is set up for airline ${device.airline}.${offline ? " Notes can be written offline." : ""}`;
  if (signedOut) text += " You have been signed out; sending notes needs no sign-in.";
  return kept === false ? `${text} ${STORAGE_NOT_KEPT_TEXT}` : text;
}

/** What the box says while a set-up the server was too busy for waits to be tried again. */
export function busyText(seconds) {
  return `Many tablets are being set up right now; trying again in ${seconds} s…`;
}

/** Seconds to wait before trying a rate-limited set-up again: the server's word, within 1 to 60 s. */
export function retryDelay(retryAfter) {
  return retryAfter > 0 ? Math.min(60, Math.ceil(retryAfter)) : 5;
}

/** What the box says for a revoked (or no longer registered) tablet. */
export function revokedText(device) {
  const why =
    device && device.revoked && device.revoked.code === "unknown_device"
      ? "This tablet is no longer registered with the airline, so it can no longer send notes."
      : "This tablet was revoked by the airline, so it can no longer send notes.";
  return `${why} Speak to your airline's security team if you need to, then sign in to set it up again.`;
}

// States in which nothing can be written: said at the form, with what to do, before anyone types.
const CANNOT_WRITE = new Set(["offline", "signed-out", "wrong-role", "error", "revoked"]);

/**
 * What the notice at the form says when this tablet cannot send notes:
 * [first sentence, what to do on the ground, what to do in the air].
 */
export function cannotWriteText(state) {
  const again = state === "revoked" ? " again" : "";
  return [
    state === "revoked"
      ? "This tablet can no longer send notes, so the form is closed."
      : "This tablet is not set up to send notes, so the form is closed.",
    `On the ground: sign in with your crew account, while online, to set it up${again}.`,
    "In the air: tell the captain, who can call the 24-hour line",
  ];
}

/** What the box says to someone signed in with an account that is not crew. */
export function wrongRoleText(username) {
  return `You are signed in as ${username}, which is not a cabin crew account. Sign in with a crew account to set up this tablet.`;
}

/**
 * The enrollment part. Elements: box (#device-status), message, signInLink,
 * reenrollButton, actions, formNotice (the notice at the form), form.
 * onEnrolled() runs once a tablet is newly set up; onUsername(name) when the
 * enrolled crew username is known. checkIntervalMs: how often the server is asked.
 */
export function createEnrollment({ box, message, signInLink, reenrollButton, actions, formNotice, form, formBody, hotline = "", fetchFn = (...a) => fetch(...a), onEnrolled = () => {}, onUsername = () => {}, checkIntervalMs }) {
  // Whether the server still knows this tablet as enrolled (device.js): on start
  // and on `online` at once, before a delivery pass at most every few minutes.
  // No answer (offline, timeout, server trouble) changes nothing.
  const deviceCheck = new DeviceCheck({ intervalMs: checkIntervalMs, checkFn: () => checkDeviceState(fetchFn) });
  let noticeFor = null;
  let enrolledShown = 0;
  const safariTab = navigator.standalone === false; // iOS Safari says false in a tab, true from the Home Screen

  function show(state, text, { signIn = false, reenroll = false } = {}) {
    box.dataset.enrolled = state === "enrolled" ? "true" : "false";
    box.dataset.state = state;
    message.textContent = text;
    signInLink.hidden = !signIn;
    reenrollButton.hidden = !reenroll;
    actions.hidden = !(signIn || reenroll);
    // The note can be written only on a tablet known to be set up: a note that
    // would be refused is never typed. What to do is said at the form itself.
    // Nor in a window whose storage a newer version has taken (report-form.js holdForUpgrade).
    formBody.disabled = state !== "enrolled" || form.dataset.heldForUpgrade === "true";
    const cannot = CANNOT_WRITE.has(state);
    const noticeKey = cannot ? state === "revoked" ? "revoked" : "not-set-up" : null;
    if (noticeKey !== noticeFor) {
      noticeFor = noticeKey;
      const [first, ground, air] = cannotWriteText(state);
      formNotice.replaceChildren(...(cannot ? [el("p", {}, el("strong", {}, first)), el("p", {}, ground), el("p", {}, air, ...hotlineLink(hotline))] : []));
      formNotice.hidden = !cannot;
    }
    if (cannot) form.setAttribute("aria-describedby", formNotice.id);
    else form.removeAttribute("aria-describedby");
  }

  async function check({ force = false } = {}) {
    if (force && navigator.onLine === false) return;
    const state = await deviceCheck.run({ force });
    if (state === "revoked") await refresh();
  }

  // Said at once; the browser's answer on keeping storage (it may ask the user) is added when it comes.
  function showEnrolled(device, { signedOut = false } = {}) {
    const shown = ++enrolledShown;
    show("enrolled", enrolledText(device, { signedOut }));
    keepStorage().then((kept) => {
      // only onto the same words: not after another state, nor over a later set-up's
      if (kept === false && shown === enrolledShown && box.dataset.state === "enrolled") {
        show("enrolled", enrolledText(device, { signedOut, kept }));
      }
    });
  }

  function keepEnrolled() {
    check({ force: true }).catch(() => {});
    refreshKeys(fetchFn).catch(() => {});
    if (localStorage.getItem(SIGNOUT_KEY)) {
      // the sign-out after enrollment did not get through: try again
      signOut().then((ok) => ok && localStorage.removeItem(SIGNOUT_KEY)).catch(() => {});
    }
  }

  async function setUp(session) {
    show("enrolling", "Setting up this tablet…");
    try {
      // The old registration is replaced only once the new one is made (enroll()
      // stores both in one transaction), keeping its receipt keys: a note it sent
      // whose answer was lost gets the receipt signed back then, and a set-up that
      // fails leaves it as it was, its queued notes still answered by the server.
      const enrolled = await enrollWhenNotBusy(session);
      localStorage.removeItem(REENROLL_KEY);
      if (session.username) {
        onUsername(session.username);
        try {
          await saveIdentity({ username: session.username });
        } catch {
          /* kept in memory for this session only */
        }
      }
      // Least privilege on an unattended tablet: reporting needs only the device
      // key, so the web session ends here. Setting the tablet up again needs a new sign-in.
      localStorage.setItem(SIGNOUT_KEY, "1");
      const signedOut = await signOut(session.csrf_token);
      if (signedOut) localStorage.removeItem(SIGNOUT_KEY);
      showEnrolled(enrolled, { signedOut });
      onEnrolled();
    } catch (err) {
      show("error", `This tablet could not be set up: ${err.message}`, { signIn: err.code === "unauthenticated" || err.code === "http_401" });
    }
  }

  async function enrollWhenNotBusy(session) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await enroll(session, fetchFn);
      } catch (err) {
        if (err.code !== "rate_limited" || attempt >= ENROLL_RETRIES) throw err;
        const seconds = retryDelay(err.retryAfter);
        show("enrolling", busyText(seconds));
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      }
    }
  }

  async function refresh({ allowReenroll = false } = {}) {
    let device, key;
    try {
      device = await getDevice();
      key = device && !device.revoked && (await getSigningKey()); // a revoked one is said so, whatever its key
    } catch {
      show("error", STORAGE_UNAVAILABLE_TEXT);
      return;
    }
    // A registration without its signing key (a backup restored to another
    // iPad cannot unwrap it) could seal nothing: it is set up again.
    if (device && !device.revoked && key) {
      showEnrolled(device);
      keepEnrolled();
      return;
    }
    if (device && device.revoked && !allowReenroll && !localStorage.getItem(REENROLL_KEY)) {
      show("revoked", revokedText(device), { reenroll: true });
      return;
    }
    let session;
    try {
      session = await fetchSession();
    } catch {
      show("offline", notSetUpText(OFFLINE_TEXT, { safariTab }), { signIn: true });
      return;
    }
    if (!session.signed_in) show("signed-out", notSetUpText(SIGNED_OUT_TEXT, { safariTab }), { signIn: true });
    else if (session.role !== "crew") show("wrong-role", wrongRoleText(session.username), { signIn: true });
    else await setUp(session);
  }

  async function reenroll() {
    let session;
    try {
      session = await fetchSession();
    } catch {
      show("revoked", REENROLL_OFFLINE_TEXT, { reenroll: true });
      return;
    }
    if (!session.signed_in || session.role !== "crew") {
      localStorage.setItem(REENROLL_KEY, "1");
      location.assign("/auth/login?next=/");
      return;
    }
    await refresh({ allowReenroll: true });
  }

  reenrollButton.addEventListener("click", reenroll);
  return { refresh, check };
}
