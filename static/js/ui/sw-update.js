// The service worker: registered at start; when a new version of the app is
// waiting, the update banner offers it, and its button saves the draft,
// hands over to the new worker and reloads.

// Said when a newer version in another window has taken the storage: this
// window's form is closed (report-form.js holdForUpgrade), its note saved or not.
export const UPGRADE_KEPT_TEXT = "A new version is ready. Your unfinished note is kept: tap Reload to go on with it.";
export const UPGRADE_NOT_KEPT_TEXT = "A new version is ready, but your unfinished note could not be saved on this tablet: "
  + "write its words down elsewhere before you tap Reload.";

/** Show the update banner for a newer version that took the storage (kept: whether the note was saved). */
export function offerReloadAfterUpgrade(banner, kept) {
  banner.querySelector("p").textContent = kept ? UPGRADE_KEPT_TEXT : UPGRADE_NOT_KEPT_TEXT;
  banner.hidden = false;
}

/**
 * Register /sw.js. banner: the update banner; reloadButton: its button;
 * beforeReload(): awaited before the page goes (the draft is saved).
 */
export async function setupServiceWorker({ banner, reloadButton, beforeReload = async () => {} }) {
  if (!("serviceWorker" in navigator)) return null;
  let reloadRequested = false;
  try {
    const reg = await navigator.serviceWorker.register("/sw.js", { scope: "/", type: "module", updateViaCache: "none" });
    const offerUpdate = () => {
      if (reg.waiting && navigator.serviceWorker.controller) banner.hidden = false;
    };
    offerUpdate();
    reg.addEventListener("updatefound", () => {
      const worker = reg.installing;
      if (worker) worker.addEventListener("statechange", () => worker.state === "installed" && offerUpdate());
    });
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      if (reloadRequested) location.reload();
    });
    reloadButton.addEventListener("click", async () => {
      await beforeReload();
      reloadRequested = true;
      if (reg.waiting) reg.waiting.postMessage({ type: "skip-waiting" });
      else location.reload();
    });
    return reg;
  } catch {
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
