// The note being written, as a draft: its id, fixed when it is begun, and its
// sealed copy in IndexedDB (drafts.js), saved a moment after each change and
// at once when the page is hidden or reloaded. The id goes into the draft, so
// a window that restores the note sends it under the same id, and the outbox
// refuses it there rather than queueing one note twice as two reports.
import { uuid4 } from "../b64.js";
import { claimDraft, expireDrafts, holdDraft, releaseDraft, saveDraft, wipeDraft } from "../drafts.js";
import { readForm } from "../form.js";

const SAVE_DELAY_MS = 600;

/** Whether the form holds anything worth keeping as a draft. */
export function hasContent(values) {
  return !!(values.narrative.trim() || values.indicators.length || values.people.length);
}

export function createDraftAutosave(form) {
  let timer = null;
  let dirty = false;
  let id = null;

  /** The id the note will be sent under, begun (and its slot held) on first need. */
  function noteId() {
    if (!id) {
      id = uuid4();
      holdDraft(id).catch(() => {});
    }
    return id;
  }

  // This note is done with here: its draft goes, and what is written next is another note.
  async function end() {
    const old = id;
    id = null;
    if (!old) return;
    try {
      await wipeDraft(old);
    } catch {
      /* the draft expires */
    }
    releaseDraft(old);
  }

  async function saveNow() {
    clearTimeout(timer);
    timer = null;
    if (!dirty) return;
    dirty = false;
    const values = readForm(form);
    try {
      if (hasContent(values)) await saveDraft(noteId(), { ...values, report_id: noteId() });
      else await end(); // the form was emptied
    } catch {
      /* autosave is best effort; the form itself is untouched */
    }
  }

  return {
    noteId,
    /** The note's id if it has been begun, else null. */
    begunId: () => id,
    saveNow,
    /** Save a moment from now (changes in between are saved together). */
    schedule() {
      dirty = true;
      clearTimeout(timer);
      timer = setTimeout(saveNow, SAVE_DELAY_MS);
    },
    /** The note was queued: nothing to save, and its draft goes. */
    async discard() {
      dirty = false;
      clearTimeout(timer);
      await end();
    },
    /**
     * The note under this id was queued elsewhere, but the form keeps what it
     * holds: that is kept as a new note, with a new id.
     */
    async renew() {
      await end();
      dirty = true;
      await saveNow();
    },
    /**
     * Wipe abandoned drafts, then take the last saved draft no other window
     * shows: {draft: {values, more} or null, expired: how many were wiped}.
     */
    async restore() {
      const expired = await expireDrafts();
      if (id) return { draft: null, expired }; // this window is writing a note already
      const draft = await claimDraft();
      if (draft) id = draft.id;
      return { draft, expired };
    },
  };
}
