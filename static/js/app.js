// The crew app's entry: reads the page's settings, creates its parts (each in
// ui/) with their elements, wires them to the outbox and starts them.
import { MAX_ENVELOPE_BYTES } from "./envelope.js";
import { setRequestTimeout } from "./net.js";
import { observing, now as clockNow } from "./clock.js";
import { pruneDelivered, CHANNEL_NAME } from "./outbox/store.js";
import { onDatabaseHeld, onDatabaseUpgrade } from "./store.js";
import { deliver, Backoff, DeliveryScheduler, watchTriggers } from "./outbox/scheduler.js";
import { refreshStatuses, StatusCheck } from "./outbox/status.js";
import { createEnrollment, HELD_TEXT } from "./ui/enrollment.js";
import { createReportForm } from "./ui/report-form.js";
import { restoreIdentity } from "./ui/flight-memory.js";
import { createOutboxView } from "./ui/outbox-view.js";
import { createLandingBanner } from "./ui/landing-banner.js";
import { setupServiceWorker, requestBackgroundSync, offerReloadAfterUpgrade } from "./ui/sw-update.js";
import { wireDiscretion } from "./ui/discretion.js";

const PRUNE_EVERY_MS = 30000;

function createCrewApp(root, testConfig = {}) {
  const $ = (sel) => document.querySelector(sel);
  const hotline = root.dataset.hotline || "";
  // Every answer of the server tells this tablet how far off its clock is (clock.js).
  const net = observing();
  const statusCheck = new StatusCheck({ checkFn: () => refreshStatuses({ fetchFn: net }) });
  let askStatusNow = true; // at start; again after "Send now" or back online
  // Tests only: shorter request deadline and envelope limit (the real ones are unit-tested).
  if (testConfig.requestTimeout) setRequestTimeout(testConfig.requestTimeout);

  const banner = createLandingBanner({ banner: $("#landing-banner"), hotline, landingMinutes: Number(root.dataset.landingMinutes || 30) });
  const nearLandingShown = (r) => banner.shown && banner.nearLanding(r, clockNow().getTime());
  const outbox = createOutboxView({
    list: $("#outbox"),
    status: $("#delivery-status"),
    clearButton: $("#clear-delivered"),
    sendNow: $("#send-now"),
    hotline,
    nearLanding: (r) => banner.nearLanding(r, clockNow().getTime()),
    // the notice at the form says what to do (with the number) when this tablet cannot send
    noticeShown: () => !$("#form-device-notice").hidden,
    onRender(reports) {
      banner.render(reports, clockNow().getTime());
      form.followNote(reports, nearLandingShown);
    },
  });
  const backoff = new Backoff({ base: testConfig.backoffBase || 5000, max: testConfig.backoffMax || 60000 });
  const scheduler = new DeliveryScheduler({
    async deliverFn() {
      // The device check (throttled: not on every back-off tick) runs beside
      // the delivery, never before it: on a slow link it would cost a round trip.
      enrollment.check().catch(() => {});
      const result = await deliver({ fetchFn: net });
      if (result.status === "ok" || result.status === "idle") {
        // The server is reachable: ask what became of delivered notes (4a).
        const force = askStatusNow || result.delivered > 0;
        askStatusNow = false;
        statusCheck.run({ force }).catch(() => {});
      }
      return result;
    },
    backoff,
    onResult(result) {
      outbox.showResult(result, scheduler.nextDelay);
      outbox.render();
      if (result.rejected) enrollment.refresh().then(() => outbox.render());
    },
  });
  const form = createReportForm({
    form: $("#report-form"),
    personTemplate: $("#person-template"),
    envelopeLimit: testConfig.maxEnvelopeBytes || MAX_ENVELOPE_BYTES,
    async onQueued() {
      await outbox.render();
      // Bring the crew to what matters: the landing notice if shown, otherwise the
      // top, where the next note on this flight needs only its words and Save,
      // and the status line above Save follows the note just queued.
      if (!banner.focus()) window.scrollTo({ top: 0 });
      requestBackgroundSync();
      backoff.reset();
      scheduler.run("submit");
    },
  });
  const enrollment = createEnrollment({
    box: $("#device-status"),
    message: $("#device-message"),
    signInLink: $("#sign-in-link"),
    reenrollButton: $("#reenroll-button"),
    actions: $("#device-actions"),
    formNotice: $("#form-device-notice"),
    form: $("#report-form"),
    formBody: $("#form-body"),
    hotline,
    fetchFn: net,
    checkIntervalMs: testConfig.deviceCheckInterval || 5 * 60000,
    onUsername: (username) => form.setDefaultCrewId(username),
    onEnrolled: () => scheduler.run("enrolled"),
  });

  $("#send-now").addEventListener("click", () => {
    backoff.reset();
    askStatusNow = true;
    outbox.showSending();
    scheduler.run("manual");
  });
  wireDiscretion({
    appView: $("#app-view"),
    neutralView: $("#neutral-view"),
    neutralTitle: $("#neutral-title"),
    hideButton: $("#hide-button"),
    unhideButton: $("#unhide-button"),
    beforeHide: () => form.saveDraftNow(),
  });
  watchTriggers(scheduler, {
    onOnline: () => {
      askStatusNow = true;
      enrollment.check({ force: true }).catch(() => {});
    },
    onHidden: () => form.saveDraftNow(),
  });
  window.addEventListener("pagehide", () => form.saveDraftNow());
  // A newer version in another window upgrades the storage: the form closes and what
  // it holds is saved first (this page's code can keep nothing after), and the page
  // offers the reload, saying whether the note was kept.
  let keptForUpgrade = false;
  onDatabaseUpgrade({
    before: async () => {
      keptForUpgrade = await form.holdForUpgrade();
    },
    after: () => offerReloadAfterUpgrade($("#update-banner"), keptForUpgrade),
  });
  // This is the newer version and an older window does not let the storage go: the start
  // waits on it, and the device box says what to do (it says what it finds once started).
  onDatabaseHeld(() => {
    $("#device-message").textContent = HELD_TEXT;
  });
  try {
    const channel = new BroadcastChannel(CHANNEL_NAME);
    channel.addEventListener("message", (e) => {
      if (e.data && e.data.type === "outbox-changed") outbox.render();
    });
  } catch {
    /* no BroadcastChannel */
  }
  setInterval(async () => {
    try {
      await pruneDelivered(); // a tablet left open drops old delivered notes too
    } catch {
      /* shown by the outbox view if the outbox cannot be read */
    }
    outbox.render();
    restoreIdentity($("#report-form"), true); // and the last crew's ID, once its flight is over
    if (navigator.onLine !== false) statusCheck.run().catch(() => {}); // now and then, at most every 2 min
  }, PRUNE_EVERY_MS);

  async function start() {
    try {
      await form.restore();
    } catch {
      /* what could not be restored stays empty; delivery must start regardless */
    }
    try {
      await pruneDelivered(); // delivered entries go 12 hours after arrival or delivery, whichever is later
    } catch {
      /* the outbox view says so if it cannot be read */
    }
    await outbox.render();
    setupServiceWorker({ banner: $("#update-banner"), reloadButton: $("#reload-button"), beforeReload: form.flushDraft });
    await enrollment.refresh();
    await scheduler.run("start");
    root.dataset.ready = "true";
  }

  return { scheduler, renderOutbox: outbox.render, start };
}

// The app opens at its top after a reload, its notices in view (scroll
// anchoring keeps the form still when one appears later).
if ("scrollRestoration" in history) history.scrollRestoration = "manual";
const app = createCrewApp(document.querySelector("#crew-app"), window.__CABIN_NOTES_CONFIG || {});
window.__cabinNotes = { scheduler: app.scheduler, renderOutbox: app.renderOutbox };
app.start();
