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
      return [e.enrolledText({airline: 'ZZ'}), e.enrolledText({airline: 'ZZ'}, {signedOut: true}),
              e.revokedText({revoked: {code: 'revoked_device'}}), e.revokedText({revoked: {code: 'unknown_device'}}),
              e.wrongRoleText('officer1')];
    }""")
    assert out[0] == "This tablet is set up for airline ZZ. Notes can be written offline."
    assert out[1] == out[0] + " You have been signed out; sending notes needs no sign-in."
    assert out[2].startswith("This tablet was revoked by the airline, so it can no longer send notes. Speak to")
    assert out[3].startswith("This tablet is no longer registered with the airline")
    assert out[4] == ("You are signed in as officer1, which is not a cabin crew account. "
                      "Sign in with a crew account to set up this tablet.")


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
        content: [a.hasContent({{narrative: ' ', indicators: [], people: []}}), a.hasContent({{narrative: 'x', indicators: [], people: []}}),
                  a.hasContent({{narrative: '', indicators: ['a'], people: []}})],
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
    assert out["content"] == [False, True, True]
