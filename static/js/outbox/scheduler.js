// When the outbox is delivered: one pass at a time across tabs and the
// service worker (a Web Lock), an exponential back-off while anything is
// pending, and the page's triggers (back online, shown again).
import { deliverPending } from "./delivery.js";

export const LOCK_NAME = "cabin-notes-outbox";

/** Send everything queued, unless another tab or the service worker is already sending. */
export async function deliver(options = {}) {
  if (typeof navigator !== "undefined" && navigator.locks && navigator.locks.request) {
    return navigator.locks.request(LOCK_NAME, { ifAvailable: true }, async (lock) => {
      if (!lock) return { status: "busy", delivered: 0, rejected: 0, pending: -1 };
      return deliverPending(options);
    });
  }
  return deliverPending(options);
}

/** Exponential back-off: base, 2*base, ... capped at max; reset on success. */
export class Backoff {
  constructor({ base = 5000, max = 60000 } = {}) {
    this.base = base;
    this.max = max;
    this.current = base;
  }
  next() {
    const d = this.current;
    this.current = Math.min(this.current * 2, this.max);
    return d;
  }
  reset() {
    this.current = this.base;
  }
}

/**
 * Runs delivery now and keeps a back-off timer while anything is pending.
 * deliverFn returns a summary like deliver(); timers are injectable for tests.
 */
export class DeliveryScheduler {
  constructor({ deliverFn = deliver, backoff = new Backoff(), setTimer = (f, ms) => setTimeout(f, ms), clearTimer = (t) => clearTimeout(t), onResult = () => {} } = {}) {
    this.deliverFn = deliverFn;
    this.backoff = backoff;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.onResult = onResult;
    this.timer = null;
    this.nextDelay = null;
    this.running = null;
    this.again = false;
  }

  async run(reason = "manual") {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.cancel();
    this.running = (async () => {
      let result;
      do {
        this.again = false;
        try {
          result = await this.deliverFn();
        } catch (err) {
          result = { status: "transient", pending: -1, error: String(err && err.message ? err.message : err) };
        }
        // A trigger that came during the pass (back online, "Send now") gets a pass
        // of its own now, even after a failure: the connection may be back since.
      } while (this.again);
      return result;
    })();
    let result;
    try {
      result = await this.running;
    } finally {
      this.running = null;
    }
    this.plan(result);
    this.onResult(result, reason);
    return result;
  }

  plan(result) {
    this.cancel();
    if (result.status === "ok" || result.status === "idle") {
      this.backoff.reset();
      if (result.pending > 0) this.schedule(this.backoff.next());
      return;
    }
    if (result.status === "not-enrolled") return;
    // transient failure, or another tab / the service worker is busy sending;
    // never sooner than the server asked (Retry-After)
    this.schedule(Math.max(this.backoff.next(), result.retryAfterMs || 0));
  }

  schedule(ms) {
    this.nextDelay = ms;
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.run("timer");
    }, ms);
  }

  cancel() {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.nextDelay = null;
  }
}

/**
 * A page's delivery triggers: back online (at once, back-off reset; onOnline
 * runs first) and shown again. onHidden runs when the page is hidden.
 */
export function watchTriggers(scheduler, { win = window, doc = document, onOnline = () => {}, onHidden = () => {} } = {}) {
  doc.addEventListener("visibilitychange", () => {
    if (doc.visibilityState === "hidden") onHidden();
    else scheduler.run("visible");
  });
  win.addEventListener("online", () => {
    scheduler.backoff.reset();
    onOnline();
    scheduler.run("online");
  });
}
