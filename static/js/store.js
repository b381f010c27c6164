// The one IndexedDB database of the crew app (via idb).
// Stores:
//   keys    - CryptoKey objects (device signing pair, draft key); non-extractable
//   meta    - device registration, cached recipient and receipt keys
//   outbox  - {id, header, envelope?, state, receipt?, error?} keyed by report id;
//             only the sealed envelope and its cleartext header, never the body
//   drafts  - {iv, ct} AES-GCM sealed draft
import { openDB } from "/static/vendor/idb.js";

export const DB_NAME = "cabin-notes";
const DB_VERSION = 1;

let dbPromise = null;

export function db() {
  if (!dbPromise) {
    dbPromise = openDB(DB_NAME, DB_VERSION, {
      upgrade(database) {
        if (!database.objectStoreNames.contains("keys")) database.createObjectStore("keys");
        if (!database.objectStoreNames.contains("meta")) database.createObjectStore("meta");
        if (!database.objectStoreNames.contains("outbox")) database.createObjectStore("outbox", { keyPath: "id" });
        if (!database.objectStoreNames.contains("drafts")) database.createObjectStore("drafts");
      },
      blocking() {
        // A newer version elsewhere wants the database: let it.
        dbPromise?.then((d) => d.close());
        dbPromise = null;
      },
      terminated() {
        // The browser closed the connection (e.g. storage pressure): reopen next time.
        dbPromise = null;
      },
    }).catch((err) => {
      dbPromise = null;
      throw err;
    });
  }
  return dbPromise;
}

// Run fn(database); if the connection was closed under us, reopen once and retry.
export async function withDb(fn) {
  try {
    return await fn(await db());
  } catch (err) {
    if (err && (err.name === "InvalidStateError" || /closing|closed/i.test(String(err.message)))) {
      dbPromise = null;
      return fn(await db());
    }
    throw err;
  }
}
