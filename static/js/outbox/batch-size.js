// How many envelopes the next batch may hold (delivery.js asks once a batch).
//
// A full batch is 100 notes, half a megabyte or more. A slow satellite uplink
// cannot carry that within the request deadline, and sent again whole it
// would time out on every pass: nothing would ever arrive. So a batch of
// several that times out is sent again at once in half, and the smaller size
// is kept for the next passes. A second timeout in the same pass ends it
// (more likely no link at all than a slow one; the back-off takes over).
// Batches answered in time double the size again, up to the full 100, so a
// link that comes back after a dead spell is not left sending one note at a
// time; within a pass that has already had to shrink it does not grow, so a
// size that just failed is not tried again at once. A 413 halves the batch
// for the rest of its pass only (it is about bytes, not time).
export const BATCH_LIMIT = 100;

// The size the next pass starts at (kept between passes in this page or worker).
let timely = BATCH_LIMIT;

export class BatchSize {
  constructor() {
    this.limit = timely;
    this.shrunk = false;
    this.timeouts = 0;
  }

  /** A batch of `n` was answered in time. */
  answered(n) {
    if (!this.shrunk && n >= this.limit && this.limit < BATCH_LIMIT) {
      this.limit = timely = Math.min(BATCH_LIMIT, 2 * n);
    }
  }

  /** A batch of `n` (more than one) was refused as too large. */
  tooLarge(n) {
    this.shrunk = true;
    this.limit = Math.max(1, Math.floor(n / 2));
  }

  /** A note was set aside for this pass: the others go at the pass's own size. */
  setAside() {
    this.limit = Math.max(this.limit, timely);
  }

  /** A batch of `n` (more than one) was not answered in time. Whether to try again at once. */
  timedOut(n) {
    this.shrunk = true;
    this.timeouts += 1;
    this.limit = timely = Math.max(1, Math.floor(n / 2));
    return this.timeouts < 2;
  }

  /** Nothing is pending any more: new notes come a few at a time. */
  static cleared() {
    timely = BATCH_LIMIT;
  }
}
