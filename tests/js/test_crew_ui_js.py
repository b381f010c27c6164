"""The crew app's UI parts, their pure functions imported on their own (no
shell, no DOM at import): the landing banner's decision and words, the outbox
view's texts, the device status texts, the note form's checks and status."""
from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e

NOW = "Date.parse('2026-06-01T12:00:00Z')"


def test_the_landing_banner_covers_undelivered_notes_landing_soon(js_page: Any) -> None:
    out = js_page.evaluate(f"""async () => {{
      const {{ nearLanding, bannerText }} = await import('/static/js/ui/landing-banner.js');
      const now = {NOW};
      const note = (id, state, minutes, flight = 'ZZ1') =>
        ({{id, state, header: {{flight, sta: new Date(now + minutes * 60000).toISOString()}}}});
      const soon = note('a', 'queued', 29), later = note('b', 'queued', 31);
      return {{
        near: [nearLanding(soon, 30, now), nearLanding(later, 30, now), nearLanding(note('c', 'delivered', 5), 30, now),
               nearLanding(note('d', 'rejected', -600), 30, now), nearLanding(note('e', 'sending', 30), 30, now),
               nearLanding({{id: 'f', state: 'queued'}}, 30, now)],
        none: bannerText([later, note('c', 'delivered', 5)], 30, now),
        one: bannerText([soon], 30, now),
        several: bannerText([soon, note('g', 'rejected', 10, 'ZZ2'), note('h', 'queued', -20, 'ZZ1')], 30, now),
        landed: bannerText([note('h', 'queued', -20)], 30, now),
      }};
    }}""")
    assert out["near"] == [True, False, False, True, True, False]
    assert out["none"] is None
    assert out["one"] == ["1 note for ZZ1 not yet delivered and landing in 29 min.",
                          "If the captain does not know yet, tell them now; or call the 24-hour line"]
    # the soonest landing still ahead is the one named; flights once each
    assert out["several"][0] == "3 notes for ZZ1, ZZ2 not yet delivered (1 not accepted, cannot be re-sent) and landing in 10 min."
    assert out["landed"][0] == "1 note for ZZ1 not yet delivered and the flight has landed."


def test_outbox_view_texts(js_page: Any) -> None:
    out = js_page.evaluate(f"""async () => {{
      const v = await import('/static/js/ui/outbox-view.js');
      const now = {NOW};
      const at = new Date(now);
      return {{
        sta: [v.timeToSta('2026-06-01T14:05:00Z', now), v.timeToSta('2026-06-01T11:48:00Z', now),
              v.timeToSta('2026-06-04T16:00:00Z', now), v.timeToSta('', now)],
        reasons: [v.plainReason({{message: 'This device was revoked by the airline. Tell the captain or call the 24-hour line.'}}),
                  v.plainReason({{message: 'Not a valid report. Please tell the captain now.'}}), v.plainReason(null)],
        results: [v.deliveryStatusText({{status: 'transient', trouble: 'network'}}, at, 20000),
                  v.deliveryStatusText({{status: 'transient', trouble: 'strange'}}, at, 5400),
                  v.deliveryStatusText({{status: 'ok'}}, at), v.deliveryStatusText({{status: 'not-enrolled'}}, at),
                  v.deliveryStatusText({{status: 'busy'}}, at)],
        cleared: [v.clearedText(1), v.clearedText(3)],
        states: v.STATE_TEXT,
      }};
    }}""")
    assert out["sta"] == ["Lands in 2 h 05 min", "Landed 12 min ago", "Lands in 3 d 4 h", ""]
    assert out["reasons"] == ["This device was revoked by the airline.", "Not a valid report.",
                              "The server did not accept this note."]
    assert out["results"] == ["No connection to the server (12:00 UTC). Trying again in 20 s.",
                              "The note could not be sent yet (12:00 UTC). Trying again in 5 s.",
                              "Checked at 12:00 UTC.", "", None]
    assert out["cleared"] == ["1 delivered note removed from this tablet.", "3 delivered notes removed from this tablet."]
    assert out["states"] == {"queued": "Waiting to send", "sending": "Sending…", "delivered": "Delivered",
                             "rejected": "Not accepted"}


def test_device_status_texts(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const e = await import('/static/js/ui/enrollment.js');
      const on = {offline: true};  // a service worker serves the page
      return [e.enrolledText({airline: 'ZZ'}, on), e.enrolledText({airline: 'ZZ'}, {...on, signedOut: true}),
              [e.enrolledText({airline: 'ZZ'}, {...on, kept: false}), e.enrolledText({airline: 'ZZ'}, {...on, kept: true}),
               e.enrolledText({airline: 'ZZ'}, {...on, kept: false, signedOut: true})],
              e.revokedText({revoked: {code: 'revoked_device'}}), e.revokedText({revoked: {code: 'unknown_device'}}),
              e.wrongRoleText('officer1'), e.busyText(6),
              [e.notSetUpText(e.SIGNED_OUT_TEXT), e.notSetUpText(e.OFFLINE_TEXT, {safariTab: true})],
              [e.retryDelay(6), e.retryDelay(0), e.retryDelay(undefined), e.retryDelay(0.2), e.retryDelay(3600)]];
    }""")
    assert out[0] == "This tablet is set up for airline ZZ. Notes can be written offline."
    # no service worker here (this page's context blocks them): the app could not open offline, so no promise
    assert js_page.evaluate("async () => (await import('/static/js/ui/enrollment.js')).enrolledText({airline: 'ZZ'})") \
        == "This tablet is set up for airline ZZ."
    assert out[1] == out[0] + " You have been signed out; sending notes needs no sign-in."
    not_kept = (" This browser may clear notes waiting to be sent if the app goes unused for a week: "
                "open it once there is a connection. On an iPad, use the Home Screen icon.")
    # a browser that will not promise to keep storage is named; one that will, or cannot say, is not
    assert out.pop(2) == [out[0] + not_kept, out[0], out[1] + not_kept]
    assert out[2].startswith("This tablet was revoked by the airline, so it can no longer send notes. Speak to")
    assert out[3].startswith("This tablet is no longer registered with the airline")
    assert out[4] == ("You are signed in as officer1, which is not a cabin crew account. "
                      "Sign in with a crew account to set up this tablet.")
    assert out[5] == "Many tablets are being set up right now; trying again in 6 s…"
    # in a Safari tab, set-up is pointed to the Home Screen icon first; elsewhere nothing is added
    assert out.pop(6) == ["This tablet is not set up yet. Sign in once, while online, to set it up.",
                          "This tablet is not set up yet. Connect to the internet and sign in to set it up. "
                          "On an iPad, first add this app to the Home Screen (Share, Add to Home Screen) "
                          "and set it up from there."]
    assert out[6] == [6, 5, 5, 1, 60]  # the server's wait, 5 s when it named none, within 1 to 60 s


def test_report_form_checks_and_status(js_page: Any) -> None:
    out = js_page.evaluate(f"""async () => {{
      const f = await import('/static/js/ui/report-form.js');
      const m = await import('/static/js/ui/flight-memory.js');
      const a = await import('/static/js/ui/draft-autosave.js');
      const now = {NOW};
      const h = 3600000, min = 60000;
      const device = {{device_id: 'dev-1', airline: 'ZZ', recipients: [{{kid: 'k1', owner: 'border_force'}}, {{kid: 'k2', owner: 'airline:ZZ'}}]}};
      const deviceV2 = {{...device, recipients: [...device.recipients, {{kid: 'k3', owner: 'border_force', suite: 'v2'}},
                                                 {{kid: 'k4', owner: 'airline:ZZ', suite: 'v2'}}]}};
      const flight = {{flight: 'ZZ1', dep: 'LOS', arr: 'LHR', sta: '2026-06-01T14:00:00Z', urgency: 'routine'}};
      return {{
        warnings: [f.staWarning(-50 * min), f.staWarning(19 * h), f.staWarning(-(3 * h + 10 * min)),
                   f.staWarning(22 * h + 20 * min), f.staWarning(-(60 * min + 1000)), f.staWarning(-(65 * min))],
        status: [f.noteStatus(undefined, false), f.noteStatus({{state: 'queued'}}, false), f.noteStatus({{state: 'queued'}}, true),
                 f.noteStatus({{state: 'delivered'}}, true), f.noteStatus({{state: 'rejected'}}, false)],
        header: f.noteHeader(device, flight, new Date(now + 999), 'note-1'),
        headerV2: f.noteHeader(deviceV2, flight, new Date(now + 999), 'note-2'),
        counter: f.counterText('ab\\u{{1F600}}'),
        restore: [m.flightToRestore({{flight: 'ZZ1', sta: '2026-06-01T01:00', crew_id: 'c9'}}, now),
                  m.flightToRestore({{flight: 'ZZ1', sta: '2026-05-31T23:59'}}, now), m.flightToRestore(null, now),
                  m.flightToRestore({{flight: 'ZZ1'}}, now)],
        crewId: [m.crewIdToRestore({{crew_id: 'c9', crew_id_sta: '2026-06-01T01:00'}}, now),
                 m.crewIdToRestore({{crew_id: 'c9', crew_id_sta: '2026-05-31T23:59'}}, now),
                 m.crewIdToRestore({{crew_id: 'c9', crew_id_sta: ''}}, now)],
        content: [a.hasContent({{narrative: ' ', indicators: [], people: []}}), a.hasContent({{narrative: 'x', indicators: [], people: []}}),
                  a.hasContent({{narrative: '', indicators: ['a'], people: []}})],
        more: [f.moreDraftsText(1), f.moreDraftsText(3)],
      }};
    }}""")
    w = out["warnings"]
    assert w[0] is None and w[1] is None  # within the usual range
    assert w[2] == "This arrival time is 3 h ago (UTC). Check the date and time, then tap Save and send again to confirm."
    assert w[3].startswith("This arrival time is in 22 h (UTC).")
    assert w[4].startswith("This arrival time is 1 h ago (UTC).") and w[5].startswith("This arrival time is 1 h 05 min ago")
    saved = "Saved and sealed. It will be sent as soon as there is a connection."
    assert out["status"] == [None, [saved, "ok"], [saved + " Not delivered yet and landing soon: see the notice at the top.", "warn"],
                             ["Saved, sealed and delivered.", "ok"],
                             ["This note was not accepted, so it was not delivered. See \u201cYour notes\u201d below.", "error"]]
    assert out["header"] == {"v": 1, "id": "note-1", "device": "dev-1", "created": "2026-06-01T12:00:00Z", "rcpt": ["k1", "k2"],
                             "airline": "ZZ", "flight": "ZZ1", "dep": "LOS", "arr": "LHR", "sta": "2026-06-01T14:00:00Z",
                             "urgency": "routine"}
    # With X-Wing keys for both owners the note is version 2, sealed to those.
    assert out["headerV2"] == {**out["header"], "v": 2, "id": "note-2", "rcpt": ["k3", "k4"]}
    assert out["counter"] == "3 of 5000 characters."
    assert out["restore"] == [{"flight": "ZZ1", "sta": "2026-06-01T01:00"}, None, None, None]
    # The crew ID with it, and only while its flight is current (a tablet shared
    # by crews); one kept by a version before that, with no flight, is not offered.
    assert out["crewId"] == ["c9", "", ""]
    assert out["content"] == [False, True, True]
    assert out["more"] == ["1 more unfinished note is kept; it opens here when this one is sent.",
                           "3 more unfinished notes are kept; each opens here when the one before it is sent."]


def test_outbox_entries_are_told_apart_by_what_is_in_clear(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const v = await import('/static/js/ui/outbox-view.js');
      const s = await import('/static/js/outbox/store.js');
      const h = (id, flight, created, urgency = 'immediate') => ({id, header: {id, flight, dep: 'ACC', arr: 'LGW', sta: '2026-12-01T21:20:00Z', urgency, created}});
      const a = {...h('a', 'ZZ202', '2026-12-01T20:59:12Z'), note_number: 2};
      const old1 = h('o1', 'ZZ9', '2026-12-01T19:00:00Z', 'routine'), old2 = h('o2', 'ZZ9', '2026-12-01T19:05:00Z', 'priority');
      const other = h('x', 'ZZ202', '2026-12-01T19:00:00Z');
      other.header.sta = '2026-12-02T21:20:00Z';  // the same number on another day is another flight
      const numbers = v.noteNumbers([old2, a, old1, other]);
      return {
        title: v.noteTitle(a, 2),
        numbers: [numbers.get('a'), numbers.get('o1'), numbers.get('o2'), numbers.get('x')],
        next: [s.nextNoteNumber([a, old1], a.header), s.nextNoteNumber([a], other.header), s.nextNoteNumber([], a.header)],
        states: [v.stateText({state: 'delivered'}), v.stateText({state: 'delivered', case_state: 'received'}),
                 v.stateText({state: 'delivered', case_state: 'seen'}), v.stateText({state: 'delivered', case_state: 'acting'}),
                 v.stateText({state: 'delivered', case_state: 'closed'}), v.stateText({state: 'delivered', case_state: 'unknown'}),
                 v.stateText({state: 'queued', case_state: 'seen'})],
        nothing: v.nothingWaitingText(new Date(Date.UTC(2026, 11, 1, 21, 5))),
      };
    }""")
    assert out["title"] == "Note 2 on ZZ202 · Immediate · written 20:59:12 UTC"
    assert out["numbers"] == [2, 1, 2, 1]
    assert out["next"] == [3, 1, 1]
    assert out["states"] == ["Delivered", "Delivered", "Seen by Border Force", "Border Force is acting",
                             "Seen by Border Force, closed", "Delivered", "Waiting to send"]
    assert out["nothing"] == "Nothing waiting to be sent (21:05 UTC)."


def test_the_folded_flight_line_and_what_a_tablet_not_set_up_says(js_page: Any) -> None:
    out = js_page.evaluate(f"""async () => {{
      const f = await import('/static/js/ui/flight-summary.js');
      const e = await import('/static/js/ui/enrollment.js');
      const now = {NOW};
      const flight = {{flight: 'ZZ202', dep: 'ACC', arr: 'LGW', sta: new Date(now + 70 * 60000)}};
      return {{
        ahead: f.summaryText(flight, now),
        landed: f.summaryText({{...flight, sta: new Date(now - 5 * 60000)}}, now),
        notSetUp: e.cannotWriteText('signed-out'), revoked: e.cannotWriteText('revoked'),
      }};
    }}""")
    assert out["ahead"] == "ZZ202 ACC → LGW · lands 13:10Z · in 1 h 10 min"
    assert out["landed"] == "ZZ202 ACC → LGW · lands 11:55Z · landed 5 min ago"
    assert out["notSetUp"] == ["This tablet is not set up to send notes, so the form is closed.",
                               "On the ground: sign in with your crew account, while online, to set it up.",
                               "In the air: tell the captain, who can call the 24-hour line"]
    assert out["revoked"][0] == "This tablet can no longer send notes, so the form is closed."
    assert out["revoked"][1].endswith("to set it up again.")


def test_storage_is_asked_to_be_kept_and_the_answer_read(js_page: Any) -> None:
    """keepStorage(): persisted() first, persist() only when not yet kept; no API or an error is "cannot say"."""
    out = js_page.evaluate("""async () => {
      const { keepStorage } = await import('/static/js/store.js');
      const real = Object.getOwnPropertyDescriptor(Navigator.prototype, 'storage');
      const asked = [];
      const use = (storage) => Object.defineProperty(Navigator.prototype, 'storage', {configurable: true, get: () => storage});
      const answers = [];
      try {
        use({persisted: async () => true, persist: async () => { asked.push('kept'); return true; }});
        answers.push(await keepStorage());
        use({persisted: async () => false, persist: async () => { asked.push('granted'); return true; }});
        answers.push(await keepStorage());
        use({persisted: async () => false, persist: async () => { asked.push('refused'); return false; }});
        answers.push(await keepStorage());
        use({persisted: async () => false});
        answers.push(await keepStorage());
        use({persisted: async () => { throw new Error('no'); }});
        answers.push(await keepStorage());
        use(undefined);
        answers.push(await keepStorage());
      } finally {
        Object.defineProperty(Navigator.prototype, 'storage', real);
      }
      return {answers, asked};
    }""")
    assert out["answers"] == [True, True, False, False, None, None]
    assert out["asked"] == ["granted", "refused"]
