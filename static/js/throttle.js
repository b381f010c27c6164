// One question to the server at a time, and at most once per interval unless
// forced: the shape of both the device check and the status check.

export class ThrottledCheck {
  /**
   * `joinForced`: a forced run while one is under way waits for that one's
   * answer (instead of returning null at once).
   */
  constructor({ checkFn, intervalMs, now = () => Date.now(), joinForced = false }) {
    this.checkFn = checkFn;
    this.intervalMs = intervalMs;
    this.now = now;
    this.joinForced = joinForced;
    this.lastAsked = null;
    this.running = null;
  }

  async run({ force = false } = {}) {
    if (this.running) return force && this.joinForced ? this.running : null;
    if (!force && this.lastAsked !== null && this.now() - this.lastAsked < this.intervalMs) return null;
    this.lastAsked = this.now();
    this.running = (async () => {
      try {
        return await this.checkFn();
      } catch {
        return null;
      }
    })();
    try {
      return await this.running;
    } finally {
      this.running = null;
    }
  }
}
