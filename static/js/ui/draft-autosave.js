// Autosave of the note being written: sealed in IndexedDB (drafts.js) a moment
// after each change, and at once when the page is hidden or reloaded.
import { saveDraft, wipeDraft } from "../drafts.js";
import { readForm } from "../form.js";

const SAVE_DELAY_MS = 600;

/** Whether the form holds anything worth keeping as a draft. */
export function hasContent(values) {
  return !!(values.narrative.trim() || values.indicators.length || values.people.length);
}

/**
 * reportId(): the id the note will be sent under, kept in its draft;
 * onEmptied(): the form was emptied, so whatever is written next is another note.
 */
export function createDraftAutosave(form, { reportId = () => null, onEmptied = () => {} } = {}) {
  let timer = null;
  let dirty = false;

  async function saveNow() {
    clearTimeout(timer);
    timer = null;
    if (!dirty) return;
    dirty = false;
    const values = readForm(form);
    try {
      if (hasContent(values)) await saveDraft({ ...values, report_id: reportId() });
      else {
        onEmptied();
        await wipeDraft();
      }
    } catch {
      /* autosave is best effort; the form itself is untouched */
    }
  }

  return {
    saveNow,
    /** Save a moment from now (changes in between are saved together). */
    schedule() {
      dirty = true;
      clearTimeout(timer);
      timer = setTimeout(saveNow, SAVE_DELAY_MS);
    },
    /** The note was queued: nothing to save, and the stored draft goes. */
    async discard() {
      dirty = false;
      clearTimeout(timer);
      try {
        await wipeDraft();
      } catch {
        /* the draft key goes with it next time */
      }
    },
  };
}
