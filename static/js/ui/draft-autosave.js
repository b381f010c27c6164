// The note being written, as a draft: its id, fixed when it is begun, and its
// sealed copy in IndexedDB (drafts.js), saved a moment after each change and
// at once when the page is hidden or reloaded. The id goes into the draft, so
// a window that restores the note sends it under the same id, and the outbox
// refuses it there rather than queueing one note twice as two reports.
import { uuid4 } from "../b64.js";
import { heard } from "../clock.js";
import { claimDraft, expireDrafts, holdDraft, releaseDraft, saveDraft, unshownDrafts, wipeDraft } from "../drafts.js";
import { readForm } from "../form.js";

const SAVE_DELAY_MS = 600;
// The note this tab shows, so that a reload (the update banner's, say) shows
// it again rather than another window's newer draft. Only its id: per tab.
const SHOWN_KEY = "cabin-notes-draft-shown";

/** Whether the form holds anything worth keeping as a draft. */
export function hasContent(values) {
  return !!(values.narrative.trim() || values.indicators.length || values.people.length || values.child_involved);
}

function remember(id) {
  try {
    if (id) sessionStorage.setItem(SHOWN_KEY, id);
    else sessionStorage.removeItem(SHOWN_KEY);
  } catch {
    /* without it a reload shows the last saved draft */
  }
}

function remembered() {
  try {
    return sessionStorage.getItem(SHOWN_KEY);
  } catch {
    return null;
  }
}

/**
 * The form's draft. onSaved(ok, err) runs after each save: whether it was
 * kept, and why not (the app must say so: "Hide" and a relaunch would lose it).
 */
export function createDraftAutosave(form, { onSaved = () => {} } = {}) {
  let timer = null;
  let dirty = false;
  let id = null;
  // Whether the last save of what the form holds (or its wipe) went through.
  let kept = true;
  // Saves and wipes run one after another, in the order asked: a wipe never
  // overtakes a save still sealing, which would leave a sent note's copy.
  let chain = Promise.resolve();
  const serial = (fn) => {
    const run = chain.then(fn);
    chain = run.catch(() => {});
    return run;
  };

  /** The id the note will be sent under, begun (and its slot held) on first need. */
  function noteId() {
    if (!id) {
      id = uuid4();
      remember(id);
      holdDraft(id).catch(() => {});
    }
    return id;
  }

  // This note is done with here: what is written next is another note, and its draft goes.
  function end() {
    const old = id;
    id = null;
    kept = true; // nothing of this note is left to keep
    onSaved(true, null);
    remember(null);
    if (!old) return chain;
    return serial(async () => {
      try {
        await wipeDraft(old);
      } catch {
        /* the draft expires */
      }
      releaseDraft(old);
    });
  }

  function saveNow() {
    clearTimeout(timer);
    timer = null;
    if (!dirty) return Promise.resolve(); // never waits on an earlier save (one that hangs would hold a reload)
    dirty = false;
    const values = readForm(form);
    if (!hasContent(values)) return end(); // the form was emptied
    const note = noteId();
    return serial(() => saveDraft(note, { ...values, report_id: note })).then(
      () => {
        kept = true;
        onSaved(true, null);
      },
      (err) => {
        if (id !== note) return; // sent or emptied meanwhile: nothing of it is left to keep
        kept = false; // the form itself is untouched; the crew is told
        dirty = true; // so Hide, the page hidden or a flush tries again
        onSaved(false, err);
      }
    );
  }

  return {
    noteId,
    /** The note's id if it has been begun, else null. */
    begunId: () => id,
    saveNow,
    /**
     * Save what is not saved yet and wait for every save under way: whether
     * the note as the form holds it is kept (true also when there is none).
     */
    async flush() {
      await saveNow();
      await chain;
      return kept;
    },
    /** Save a moment from now (changes in between are saved together). */
    schedule() {
      dirty = true;
      clearTimeout(timer);
      timer = setTimeout(saveNow, SAVE_DELAY_MS);
    },
    /**
     * The note was queued here: nothing more to save, its draft goes (once
     * any save still sealing is done), and what is written next is another note.
     */
    discard() {
      dirty = false;
      clearTimeout(timer);
      return end();
    },
    /**
     * The note under this id was queued in another window: its draft goes, and
     * what the form holds is kept as another note only once it is changed
     * (a change not yet saved counts), so no copy of it is offered as unsent.
     */
    forget() {
      return end();
    },
    /**
     * Wipe abandoned drafts (only on a clock the server has confirmed in this
     * page: drafts.js), then take the draft this tab showed before a
     * reload, else the last saved one no other window shows:
     * {draft: {values, more} or null, expired: how many were wiped, aside:
     * how many are left aside until then, more: how many wait for the note
     * in the form}. Nothing is taken while the form holds a note of its own.
     */
    async restore() {
      const expired = heard ? await expireDrafts() : 0;
      const aside = heard ? 0 : await unshownDrafts(true);
      const busy = () => id || dirty || hasContent(readForm(form));
      const waiting = async () => ({ draft: null, expired, aside, more: await unshownDrafts(false) });
      if (busy()) return waiting();
      const draft = await claimDraft(undefined, remembered());
      if (draft && busy()) {
        releaseDraft(draft.id); // written into meanwhile (just after a send): that stays
        return waiting();
      }
      if (draft) {
        id = draft.id;
        remember(id);
      }
      return { draft, expired, aside, more: draft ? draft.more : 0 };
    },
  };
}
