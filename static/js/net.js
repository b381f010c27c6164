// Every request of the crew app has a deadline: a request that never answers
// must not hold the outbox lock (and so delivery in every tab) for ever.
// Works in pages and in the service worker.

export const REQUEST_TIMEOUT_MS = 30000;

let defaultTimeout = REQUEST_TIMEOUT_MS;

/** Tests only: a shorter deadline for this page (see window.__CABIN_NOTES_CONFIG). */
export function setRequestTimeout(ms) {
  defaultTimeout = ms > 0 ? ms : REQUEST_TIMEOUT_MS;
}

export function requestTimeout() {
  return defaultTimeout;
}

export class TimeoutError extends Error {
  constructor(ms) {
    super(`no answer within ${Math.round(ms / 1000)} s`);
    this.name = "TimeoutError";
    this.code = "network";
  }
}

function timeoutSignal(ms) {
  if (typeof AbortSignal !== "undefined" && typeof AbortSignal.timeout === "function") {
    return { signal: AbortSignal.timeout(ms), cancel: () => {} };
  }
  const controller = new AbortController();
  const t = setTimeout(() => controller.abort(new TimeoutError(ms)), ms);
  return { signal: controller.signal, cancel: () => clearTimeout(t) };
}

/**
 * Run work(signal) - a fetch and the reading of its body - with a deadline.
 * The signal aborts a real fetch (and its body stream); the race also gives up
 * on a fetch function that ignores the signal. Rejects with TimeoutError.
 */
export async function withDeadline(work, ms = defaultTimeout) {
  const { signal, cancel } = timeoutSignal(ms);
  let timer = null;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
  });
  try {
    return await Promise.race([work(signal), deadline]);
  } catch (err) {
    if (err && (err.name === "TimeoutError" || (err.name === "AbortError" && signal.aborted))) throw new TimeoutError(ms);
    throw err;
  } finally {
    clearTimeout(timer);
    cancel();
  }
}

/** fetch() with a deadline on the answer's headers (the body is read by the caller, also under the signal). */
export function timedFetch(url, init = {}, fetchFn = fetch, ms = defaultTimeout) {
  return withDeadline((signal) => fetchFn(url, { ...init, signal }), ms);
}
