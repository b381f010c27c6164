// Who writes the notes on this tablet: the crew ID typed last (with the
// arrival of its flight: ui/flight-memory.js) and the crew username from
// enrollment (the default crew ID). Kept only sealed
// (sealed.js), as drafts are; never in Web Storage, never in the device record.
import { sealedRecord } from "./sealed.js";

const identity = sealedRecord("meta", "identity", "identity-key");

/** {crew_id, crew_id_sta, username}; empty strings when nothing is kept. */
export async function loadIdentity() {
  const v = (await identity.load()) || {};
  return { crew_id: String(v.crew_id || ""), crew_id_sta: String(v.crew_id_sta || ""), username: String(v.username || "") };
}

/** Merge `changes` ({crew_id?, crew_id_sta?, username?}) into the sealed identity. */
export async function saveIdentity(changes) {
  const next = { ...(await loadIdentity()), ...changes };
  await identity.save(next);
  return next;
}

export async function wipeIdentity() {
  await identity.wipe();
}
