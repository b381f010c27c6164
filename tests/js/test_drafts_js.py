"""drafts.js: unfinished notes, one sealed slot per note, each held by the window
that shows it (Web Locks), so that two windows never overwrite each other's
note nor restore the same one; a draft from the old shared slot moves to its
note's own; abandoned drafts expire."""
from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e

# Each test starts from no drafts and no slots held by this page.
FRESH = """
  const d = await import('/static/js/drafts.js');
  const { db } = await import('/static/js/store.js');
  const database = await db();
  for (const id of await database.getAllKeys('drafts')) { d.releaseDraft(id); await d.wipeDraft(id); }
  const H = 3600 * 1000;
  // Hold a slot as another window would (a lock this module did not take); returns release().
  const elsewhere = (id) => new Promise((resolve) => navigator.locks.request('cabin-notes-draft:' + id,
    () => new Promise((done) => resolve(done))));
"""


def test_each_note_is_sealed_in_its_own_slot_under_its_own_key(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {""" + FRESH + """
      await d.saveDraft('note-a', {narrative: 'secret draft text', people: [], report_id: 'note-a'});
      await d.saveDraft('note-b', {narrative: 'another note', people: [], report_id: 'note-b'});
      const raw = await database.get('drafts', 'note-a');
      const keyA = await database.get('keys', 'draft-key:note-a');
      const keyB = await database.get('keys', 'draft-key:note-b');
      const back = [await d.loadDraft('note-a'), await d.loadDraft('note-b')];
      await d.wipeDraft('note-a');
      return {
        rawHasText: JSON.stringify(raw).includes('secret') || new TextDecoder().decode(raw.ct).includes('secret'),
        fields: Object.keys(raw).sort(), extractable: keyA.extractable, algorithm: keyA.algorithm.name,
        twoKeys: keyA !== keyB && !!keyB, back,
        afterWipe: await d.loadDraft('note-a'), keyAfterWipe: (await database.get('keys', 'draft-key:note-a')) === undefined,
        otherKept: (await d.loadDraft('note-b')).narrative,
      };
    }""")
    assert out["rawHasText"] is False and out["fields"] == ["ct", "iv", "saved_at"]
    assert out["extractable"] is False and out["algorithm"] == "AES-GCM" and out["twoKeys"]
    assert out["back"] == [{"narrative": "secret draft text", "people": [], "report_id": "note-a"},
                           {"narrative": "another note", "people": [], "report_id": "note-b"}]
    assert out["afterWipe"] is None and out["keyAfterWipe"] is True
    assert out["otherKept"] == "another note"


def test_a_window_claims_the_last_saved_draft_no_other_window_shows(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {""" + FRESH + """
      await d.saveDraft('shown', {narrative: 'shown elsewhere'});
      await new Promise((r) => setTimeout(r, 5));
      await d.saveDraft('older', {narrative: 'older'});
      await new Promise((r) => setTimeout(r, 5));
      await d.saveDraft('newer', {narrative: 'newer'});
      const release = await elsewhere('shown');
      const first = await d.claimDraft();
      const again = await d.claimDraft();  // 'newer' is held here now: the next one
      const none = await d.claimDraft();
      const holders = (await navigator.locks.query()).held.map((l) => l.name).sort();
      release();
      await new Promise((r) => setTimeout(r, 20));
      const freed = await d.claimDraft();
      for (const id of ['older', 'newer', 'shown']) d.releaseDraft(id);
      return {first, again, none, holders, freed};
    }""")
    assert out["first"] == {"id": "newer", "values": {"narrative": "newer"}, "more": 1}
    assert out["again"] == {"id": "older", "values": {"narrative": "older"}, "more": 0}
    assert out["none"] is None
    assert out["holders"] == ["cabin-notes-draft:newer", "cabin-notes-draft:older", "cabin-notes-draft:shown"]
    assert out["freed"] == {"id": "shown", "values": {"narrative": "shown elsewhere"}, "more": 0}


def test_holding_a_slot_fails_while_another_window_holds_it(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {""" + FRESH + """
      const release = await elsewhere('taken');
      const refused = await d.holdDraft('taken');
      const mine = await d.holdDraft('mine');
      const twice = await d.holdDraft('mine');  // this window's own slot: still held
      d.releaseDraft('mine');
      release();
      await new Promise((r) => setTimeout(r, 20));
      const names = (await navigator.locks.query()).held.map((l) => l.name);
      return {refused, mine, twice, names};
    }""")
    assert out == {"refused": False, "mine": True, "twice": True, "names": []}


def test_a_draft_in_the_old_shared_slot_moves_to_its_notes_own(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {""" + FRESH + """
      const { sealedRecord } = await import('/static/js/sealed.js');
      // as the version before slots per note saved it
      const legacy = sealedRecord('drafts', 'current', 'draft-key');
      await legacy.save({narrative: 'written before the upgrade', report_id: 'kept-id'}, {saved_at: new Date().toISOString()});
      const moved = await d.claimDraft();
      const keys = await database.getAllKeys('drafts');
      const oldKey = (await database.get('keys', 'draft-key')) === undefined;
      d.releaseDraft('kept-id');
      await d.wipeDraft('kept-id');
      // one from before ids were kept gets a new id
      await legacy.save({narrative: 'no id yet'}, {saved_at: new Date().toISOString()});
      const fresh = await d.claimDraft();
      d.releaseDraft(fresh.id);
      return {moved, keys, oldKey, fresh, freshKeys: await database.getAllKeys('drafts')};
    }""")
    assert out["moved"] == {"id": "kept-id", "values": {"narrative": "written before the upgrade", "report_id": "kept-id"},
                            "more": 0}
    assert out["keys"] == ["kept-id"] and out["oldKey"] is True
    assert out["fresh"]["values"] == {"narrative": "no id yet", "report_id": out["fresh"]["id"]}
    assert len(out["fresh"]["id"]) == 36 and out["freshKeys"] == [out["fresh"]["id"]]


def test_drafts_expire_12_hours_after_they_were_last_saved_unless_a_window_shows_them(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {""" + FRESH + """
      await d.saveDraft('old', {narrative: 'old draft'});
      await d.saveDraft('shown', {narrative: 'open in another window'});
      const release = await elsewhere('shown');
      const saved = Date.parse((await database.get('drafts', 'old')).saved_at);
      const early = await d.expireDrafts(saved + 11 * H);
      const claimLate = await d.claimDraft(saved + 13 * H);  // never restores an expired draft
      const late = await d.expireDrafts(saved + 13 * H);
      const left = await database.getAllKeys('drafts');
      const keyGone = (await database.get('keys', 'draft-key:old')) === undefined;
      release();
      await new Promise((r) => setTimeout(r, 20));
      const afterRelease = await d.expireDrafts(saved + 13 * H);
      return {early, claimLate, late, left, keyGone, afterRelease, finally: await database.getAllKeys('drafts')};
    }""")
    assert out["early"] == 0 and out["claimLate"] is None
    assert out["late"] == 1 and out["left"] == ["shown"] and out["keyGone"]
    assert out["afterRelease"] == 1 and out["finally"] == []


def test_without_web_locks_every_slot_counts_as_free(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {""" + FRESH + """
      await d.saveDraft('solo', {narrative: 'no locks here'});
      const locks = Object.getOwnPropertyDescriptor(Navigator.prototype, 'locks');
      Object.defineProperty(Navigator.prototype, 'locks', {configurable: true, get: () => undefined});
      try {
        const claimed = await d.claimDraft();
        const held = await d.holdDraft('other');
        d.releaseDraft('solo');
        d.releaseDraft('other');
        return {claimed, held};
      } finally {
        Object.defineProperty(Navigator.prototype, 'locks', locks);
      }
    }""")
    assert out == {"claimed": {"id": "solo", "values": {"narrative": "no locks here"}, "more": 0}, "held": True}


def test_the_old_shared_slot_is_not_moved_onto_a_note_another_window_shows(js_page: Any) -> None:
    """An old version's window may still write the shared slot: its copy never overwrites the note's own."""
    out = js_page.evaluate("""async () => {""" + FRESH + """
      const { sealedRecord } = await import('/static/js/sealed.js');
      await d.saveDraft('note-x', {narrative: 'newer text, shown elsewhere', report_id: 'note-x'});
      const release = await elsewhere('note-x');
      await sealedRecord('drafts', 'current', 'draft-key').save({narrative: 'older copy', report_id: 'note-x'},
                                                                 {saved_at: new Date().toISOString()});
      const claimed = await d.claimDraft();
      release();
      await new Promise((r) => setTimeout(r, 20));
      const kept = await d.loadDraft('note-x');
      const keys = (await database.getAllKeys('drafts')).sort();
      const names = (await navigator.locks.query()).held.map((l) => l.name);
      return {claimed, kept, keys, names};
    }""")
    assert out["claimed"] is None
    assert out["kept"] == {"narrative": "newer text, shown elsewhere", "report_id": "note-x"}
    assert out["keys"] == ["current", "note-x"] and out["names"] == []


def test_a_window_claims_the_draft_it_showed_before_a_reload_first(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {""" + FRESH + """
      await d.saveDraft('shown-before', {narrative: 'mine'});
      await new Promise((r) => setTimeout(r, 5));
      await d.saveDraft('saved-later', {narrative: 'left by another window'});
      const claimed = await d.claimDraft(Date.now(), 'shown-before');
      const gone = await d.claimDraft(Date.now(), 'no-such-draft');
      for (const id of ['shown-before', 'saved-later']) d.releaseDraft(id);
      return {claimed, gone};
    }""")
    assert out["claimed"] == {"id": "shown-before", "values": {"narrative": "mine"}, "more": 1}
    assert out["gone"] == {"id": "saved-later", "values": {"narrative": "left by another window"}, "more": 0}


def test_a_slot_released_before_its_lock_came_is_let_go(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {""" + FRESH + """
      const asked = d.holdDraft('begun-then-ended');
      d.releaseDraft('begun-then-ended');
      const got = await asked;
      await new Promise((r) => setTimeout(r, 20));
      return {got, names: (await navigator.locks.query()).held.map((l) => l.name)};
    }""")
    assert out == {"got": False, "names": []}


def test_two_asks_for_one_slot_do_not_cancel_each_other(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {""" + FRESH + """
      const [first, second] = await Promise.all([d.holdDraft('asked-twice'), d.holdDraft('asked-twice')]);
      const names = (await navigator.locks.query()).held.map((l) => l.name);
      d.releaseDraft('asked-twice');
      return {got: [first, second].sort(), names};
    }""")
    # one of the two gets it, and it stays held
    assert out == {"got": [False, True], "names": ["cabin-notes-draft:asked-twice"]}


def test_the_old_shared_slot_is_not_moved_onto_the_note_this_window_shows(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {""" + FRESH + """
      const { sealedRecord } = await import('/static/js/sealed.js');
      await d.holdDraft('note-y');
      await d.saveDraft('note-y', {narrative: 'being written here', report_id: 'note-y'});
      const legacySavedAt = new Date(Date.now() + 1000).toISOString();
      await sealedRecord('drafts', 'current', 'draft-key').save({narrative: 'older copy', report_id: 'note-y'},
                                                                 {saved_at: legacySavedAt});
      const claimed = await d.claimDraft();
      const mine = await d.loadDraft('note-y');
      d.releaseDraft('note-y');
      const later = await d.claimDraft();  // once no window shows it, the old copy moves, keeping when it was saved
      const savedAt = (await database.get('drafts', 'note-y')).saved_at;
      d.releaseDraft('note-y');
      return {claimed, mine, later, keys: await database.getAllKeys('drafts'), same: savedAt === legacySavedAt};
    }""")
    assert out["claimed"] is None and out["mine"] == {"narrative": "being written here", "report_id": "note-y"}
    assert out["later"] == {"id": "note-y", "values": {"narrative": "older copy", "report_id": "note-y"}, "more": 0}
    assert out["keys"] == ["note-y"] and out["same"] is True


def test_a_draft_that_cannot_be_opened_now_does_not_hide_the_others(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {""" + FRESH + """
      const { sealedRecord } = await import('/static/js/sealed.js');
      await d.saveDraft('plain', {narrative: 'an ordinary draft'});
      await new Promise((r) => setTimeout(r, 5));
      // the last saved, so tried first; moving it needs a new key, which fails this time
      await sealedRecord('drafts', 'current', 'draft-key').save({narrative: 'old slot', report_id: 'note-z'},
                                                                 {saved_at: new Date().toISOString()});
      const generateKey = crypto.subtle.generateKey;
      crypto.subtle.generateKey = async () => { throw new DOMException('no key today', 'OperationError'); };
      let claimed;
      try {
        claimed = await d.claimDraft();
      } finally {
        crypto.subtle.generateKey = generateKey;
      }
      const keys = (await database.getAllKeys('drafts')).sort();
      d.releaseDraft('plain');
      await new Promise((r) => setTimeout(r, 20));
      const names = (await navigator.locks.query()).held.map((l) => l.name);
      return {claimed, keys, names};
    }""")
    assert out["claimed"] == {"id": "plain", "values": {"narrative": "an ordinary draft"}, "more": 0}
    assert out["keys"] == ["current", "plain"] and out["names"] == []
