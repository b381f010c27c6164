// The one IndexedDB database of the crew app (via idb).
// Stores:
//   keys    - CryptoKey objects (device signing pair, draft key); non-extractable
//   meta    - device registration, cached recipient and receipt keys
//   outbox  - {id, header, envelope?, state, receipt?, error?} keyed by report id;
//             only the sealed envelope and its cleartext header, never the body
//   drafts  - {saved_at, iv, ct} AES-GCM sealed draft, keyed by its note's id (drafts.js)
import { openDB } from "/static/vendor/idb.js";

export const DB_NAME = "cabin-notes";

// The schema's history, like the server's numbered SQL migrations: step i
// takes the database from version i to version i + 1, and an upgrade runs,
// in order, every step after the version the tablet has (oldVersion). A step
// that has shipped is never edited (tablets in the field ran it); a change
// is a new step at the end. Steps run inside the upgrade transaction (tx).
// A window still running the old version is asked to let go first: it saves
// its draft, closes, and offers a reload (onDatabaseUpgrade below).
export const MIGRATIONS = [
  // 1: the first schema.
  (database) => {
    database.createObjectStore("keys");
    database.createObjectStore("meta");
    database.createObjectStore("outbox", { keyPath: "id" });
    database.createObjectStore("drafts");
  },
];

export const DB_VERSION = MIGRATIONS.length;

/** Run the steps from oldVersion up to newVersion, in order (the upgrade callback of openDB). */
export function migrate(database, oldVersion, newVersion, tx, steps = MIGRATIONS) {
  if (newVersion > steps.length) throw new Error(`no migration to version ${newVersion}`);
  for (let v = oldVersion; v < newVersion; v++) steps[v](database, tx);
}

let dbPromise = null;
// A newer version of the app, in another window, wants to upgrade the
// database: this window runs `before` (the app saves the draft) for at most
// UPGRADE_WAIT_MS, then closes its connection, which its code can no longer
// reopen, and runs `after` (the app offers a reload).
const UPGRADE_WAIT_MS = 2000;
const upgradeHooks = { before: async () => {}, after: () => {}, held: () => {} };

/**
 * What this window does when it is the newer version and a window of an older
 * one has not let the database go in the time it is given: that window cannot
 * answer (suspended, its script stuck) and holds this one up until it is closed.
 */
export function onDatabaseHeld(held) {
  upgradeHooks.held = held;
}

/** What this window does when a newer version of the app upgrades the database. */
export function onDatabaseUpgrade({ before = async () => {}, after = () => {} }) {
  upgradeHooks.before = before;
  upgradeHooks.after = after;
}

function letUpgrade() {
  const closing = dbPromise;
  const waited = new Promise((resolve) => setTimeout(resolve, UPGRADE_WAIT_MS));
  Promise.race([Promise.resolve().then(upgradeHooks.before), waited]).catch(() => {}).then(() => {
    if (dbPromise === closing) dbPromise = null;
    closing?.then((d) => d.close()).catch(() => {});
    upgradeHooks.after();
  });
}

export function db() {
  if (!dbPromise) {
    let held;
    dbPromise = openDB(DB_NAME, DB_VERSION, {
      upgrade(database, oldVersion, newVersion, tx) {
        migrate(database, oldVersion, newVersion, tx);
      },
      blocked() {
        held = setTimeout(() => upgradeHooks.held(), UPGRADE_WAIT_MS + 1000); // the older window's letUpgrade, and then some
      },
      blocking() {
        letUpgrade(); // a newer version elsewhere wants the database: let it, once the draft is saved
      },
      terminated() {
        // The browser closed the connection (e.g. storage pressure): reopen next time.
        dbPromise = null;
      },
    }).finally(() => clearTimeout(held)).catch((err) => {
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

/**
 * Ask the browser to keep this app's storage (the outbox is in it): true if
 * it will, false if not, null if it cannot say. Safari keeps it for an app
 * opened from the Home Screen; in a tab, storage of a site not used for 7
 * days may be cleared. Asked at every start: the answer can change.
 */
export async function keepStorage() {
  const storage = navigator.storage;
  if (!storage || !storage.persisted) return null;
  try {
    if (await storage.persisted()) return true;
    return storage.persist ? await storage.persist() : false;
  } catch {
    return null;
  }
}
