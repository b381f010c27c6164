// The service worker: registered at start; when a new version of the app is
// waiting, the update banner offers it, and its button saves the draft,
// hands over to the new worker and reloads. A first install that fails
// (the connection lost half-way, say) leaves an app that cannot open offline:
// the banner says so, and its Reload tries again.

// Said when a newer version in another window has taken the storage: this
// window's form is closed (report-form.js holdForUpgrade), its note saved or not.
export const UPGRADE_KEPT_TEXT = "A new version is ready. Your unfinished note is kept: tap Reload.";
export const UPGRADE_NOT_KEPT_TEXT = "A new version is ready, but your unfinished note could not be saved: write its words down before you tap Reload.";

/** Show the update banner for a newer version that took the storage (kept: whether the note was saved). */
export function offerReloadAfterUpgrade(banner, kept) {
  banner.querySelector("p").textContent = kept ? UPGRADE_KEPT_TEXT : UPGRADE_NOT_KEPT_TEXT;
  banner.hidden = false;
}

export const NOT_OFFLINE_TEXT = "This app cannot open offline yet: tap Reload while connected.";

const SAVE_WAIT_MS = 2000;

/**
 * Whether the page may go: keep() saves the note and says whether it is kept.
 * When it is not (or not within SAVE_WAIT_MS), the banner says so and the
 * first tap stays; a second tap goes all the same.
 */
export function reloadGuard(banner, keep) {
  let warned = false;
  return async () => {
    const waited = new Promise((resolve) => setTimeout(resolve, SAVE_WAIT_MS, false));
    if (warned || (await Promise.race([Promise.resolve().then(keep).catch(() => false), waited]))) return true;
    warned = true;
    offerReloadAfterUpgrade(banner, false);
    return false;
  };
}

/**
 * Register /sw.js. banner: the update banner; reloadButton: its button;
 * beforeReload(): awaited before the page goes: whether the draft is kept.
 */
export async function setupServiceWorker({ banner, reloadButton, beforeReload = async () => true }) {
  const sw = navigator.serviceWorker;
  let reloadRequested = false;
  const mayReload = reloadGuard(banner, beforeReload);
  const words = banner.querySelector("p");
  // Only while no worker serves this page (a failed update leaves the old one
  // working), and never over what the banner says already (a newer version).
  const notOffline = () => {
    if (sw.controller || !banner.hidden) return;
    words.textContent = NOT_OFFLINE_TEXT;
    banner.hidden = false;
  };
  const register = () => sw.register("/sw.js", { scope: "/", type: "module", updateViaCache: "none" });
  // Also where there are no service workers (an in-app browser): the banner
  // still offers a newer version another window opened.
  reloadButton.addEventListener("click", async () => {
    if (!(await mayReload())) return;
    reloadRequested = true;
    const reg = await sw?.getRegistration("/");
    if (reg?.waiting) reg.waiting.postMessage({ type: "skip-waiting" });
    // No worker at all (a first install failed): it is installed again, and
    // the page reloads once one serves it. Without a connection that fails and
    // the page stays: reloaded, it could not open offline (a Home Screen app
    // would be left on an error page, in the air for the rest of the flight).
    // Only while the banner says so: a newer version that took the storage must reload.
    else if (words.textContent === NOT_OFFLINE_TEXT && !reg?.active) register().catch(() => {});
    else location.reload();
  });
  if (!sw) return null;
  try {
    const reg = await register();
    const offerUpdate = () => {
      if (reg.waiting && sw.controller) banner.hidden = false;
    };
    const watch = (worker) =>
      worker?.addEventListener("statechange", () => {
        if (worker.state === "installed") offerUpdate();
        if (worker.state === "redundant" && !reg.active) notOffline();
      });
    offerUpdate();
    watch(reg.installing);
    reg.addEventListener("updatefound", () => watch(reg.installing));
    sw.addEventListener("controllerchange", () => {
      if (reloadRequested) location.reload();
    });
    return reg;
  } catch {
    notOffline();
    return null;
  }
}

/** Ask for a Background Sync of the outbox (optional: the page's timer covers it). */
export async function requestBackgroundSync() {
  try {
    const reg = await navigator.serviceWorker?.getRegistration("/");
    if (reg && reg.sync) await reg.sync.register("outbox");
  } catch {
    /* Background Sync is optional; the timer covers it */
  }
}
