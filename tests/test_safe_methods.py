"""A HEAD changes nothing: Flask answers HEAD with the GET view, and a HEAD
is sent by link previews, monitors and link checkers, never by a person
reading a page. Opening a report (its audit event, the `first_opened_at`
that tells the tablet it was seen, DESIGN 4a), an export, the board's
"seen" mark and a tablet's use are a person's or the crew app's GET only."""
from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from crewreport.db import get_db

from .helpers import DEVICE_ID, AuthActions, Make, count, deliver, events, login_as, row, store_dump, user_id


def test_a_head_of_a_report_page_opens_nothing(client: FlaskClient, app: Flask, make_envelope: Make,
                                               auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    auth.login("officer")
    for path in (f"/triage/reports/{rid}", f"/triage/reports/{rid}/nrm"):
        resp = client.head(path)
        assert resp.status_code == 405 and resp.headers["Allow"] == "GET", path
        assert resp.get_data() == b""
    assert events(app, "report_opened") == [] and events(app, "report_exported") == []
    assert row(app, rid)["first_opened_at"] is None  # type: ignore[index]
    # A person's GET still opens it, once audited, and the tablet may learn it was seen.
    assert client.get(f"/triage/reports/{rid}").status_code == 200
    assert len(events(app, "report_opened", f"report:{rid}")) == 1
    assert row(app, rid)["first_opened_at"] is not None  # type: ignore[index]


def test_a_head_of_the_airlines_report_page_is_not_an_open(client: FlaskClient, app: Flask, make_envelope: Make,
                                                           auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    auth.login("security")
    resp = client.head(f"/review/reports/{rid}")
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET"
    assert events(app, "report_opened") == []
    assert client.get(f"/review/reports/{rid}").status_code == 200
    assert len(events(app, "report_opened", f"report:{rid}")) == 1


def test_a_head_of_the_export_exports_nothing(client: FlaskClient, app: Flask, make_envelope: Make,
                                              auth: AuthActions) -> None:
    deliver(client, make_envelope)
    auth.login("officer")
    resp = client.head("/triage/export.csv")
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET"
    assert events(app, "queue_exported") == []


def test_a_head_of_the_board_leaves_what_is_new(client: FlaskClient, app: Flask, make_envelope: Make,
                                                auth: AuthActions) -> None:
    """The board answers HEAD (nothing is opened there), but only a look by
    the officer moves their "new since you last looked" mark."""
    deliver(client, make_envelope)
    auth.login("officer")
    assert client.head("/triage/").status_code == 200
    assert count(app, "SELECT count(*) FROM officer_seen") == 0
    client.get("/triage/")
    assert count(app, "SELECT count(*) FROM officer_seen") == 1


def test_a_head_of_a_devices_state_is_not_its_use(client: FlaskClient, app: Flask) -> None:
    """Only the crew app's start-up GET counts as the tablet's use (docs/api.md)."""
    resp = client.head(f"/api/v1/devices/{DEVICE_ID}")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    assert count(app, "SELECT count(*) FROM device WHERE id = ? AND last_seen_at IS NOT NULL", DEVICE_ID) == 0
    client.get(f"/api/v1/devices/{DEVICE_ID}")
    assert count(app, "SELECT count(*) FROM device WHERE id = ? AND last_seen_at IS NOT NULL", DEVICE_ID) == 1


def test_no_head_of_any_page_changes_the_store(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    """Every GET route of the app, asked with HEAD by anyone and by each role:
    the store is as it was. (The admin pages' verification checkpoint is left
    out: it only remembers that a check of events already there passed.) A
    new GET route fails here until it is given an address below."""
    rid = deliver(client, make_envelope)
    with app.app_context():
        r = get_db().execute("SELECT flight_id, airline, flight, sta FROM report WHERE id = ?", (rid,)).fetchone()
    values = {"report_id": rid, "device_id": DEVICE_ID, "flight_id": r["flight_id"], "airline": r["airline"],
              "flight": r["flight"], "sta": r["sta"], "user_id": user_id(app, "crew"),
              "action": "set by the rule itself (its defaults), not in its path"}
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint == "static":
            continue
        assert set(rule.arguments) <= values.keys(), f"give {rule.rule} an address in this test"
        paths.append(_fill(rule.rule, values))
    for who in (None, "crew", "security", "officer", "admin"):
        if who:
            login_as(client, who)
        before = store_dump(app, leave_out=("audit_checkpoint",))
        for path in paths:
            client.head(path)
            client.head(path + "?page=1&report=" + rid)
        assert store_dump(app, leave_out=("audit_checkpoint",)) == before, who


def _fill(rule: str, values: dict[str, object]) -> str:
    """A rule's path with its arguments (`<name>` or `<int:name>`) filled in."""
    for name, value in values.items():
        rule = rule.replace(f"<{name}>", str(value)).replace(f"<int:{name}>", str(value))
    return rule


# What browsers send on a request made ahead of a person's navigation: a
# prefetch or prerender (Chrome's omnibox and bookmark-bar hover, a
# `<link rel=prefetch>`), which may never be shown.
SPECULATIVE = ({"Sec-Purpose": "prefetch"}, {"Sec-Purpose": "prefetch;prerender"}, {"Purpose": "prefetch"},
               {"X-Moz": "prefetch"})


def test_a_prefetch_or_prerender_opens_nothing(client: FlaskClient, app: Flask, make_envelope: Make,
                                              auth: AuthActions) -> None:
    """Refused (a browser discards a speculative answer that is not 2xx and
    asks again when the officer really goes there): no open, no export."""
    rid = deliver(client, make_envelope)
    auth.login("officer")
    for headers in SPECULATIVE:
        for path in (f"/triage/reports/{rid}", f"/triage/reports/{rid}/nrm", "/triage/export.csv"):
            resp = client.get(path, headers=headers)
            assert resp.status_code == 403 and rid.encode() not in resp.get_data(), (headers, path)
        assert client.get("/triage/", headers=headers).status_code == 200
    assert events(app, "report_opened") == [] and events(app, "report_exported") == []
    assert events(app, "queue_exported") == [] and row(app, rid)["first_opened_at"] is None  # type: ignore[index]
    assert count(app, "SELECT count(*) FROM officer_seen") == 0
    assert client.get(f"/triage/reports/{rid}").status_code == 200
    assert len(events(app, "report_opened")) == 1


def test_an_export_is_not_made_for_another_site(client: FlaskClient, app: Flask, make_envelope: Make,
                                                auth: AuthActions) -> None:
    """The session cookie (SameSite=Lax) goes with a top-level GET from any
    site: a link or redirect elsewhere would download the queue to the
    officer's disk and audit an export they never asked for. The board's own
    Export link (same-origin), a bookmark or a typed address (none) still
    export; a client that sends no Sec-Fetch-Site (not a browser) too."""
    deliver(client, make_envelope)
    auth.login("officer")
    for site in ("cross-site", "same-site"):
        resp = client.get("/triage/export.csv?status=open", headers={"Sec-Fetch-Site": site})
        assert resp.status_code == 303 and resp.headers["Location"].startswith("/triage/?"), site
        assert "status=open" in resp.headers["Location"]
    assert events(app, "queue_exported") == []
    page = client.get("/triage/?status=open").get_data(as_text=True)
    assert "Not exported: the export was asked for from another site" in page
    for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}):
        resp = client.get("/triage/export.csv", headers=headers)
        assert resp.status_code == 200 and resp.mimetype == "text/csv", headers
    assert len(events(app, "queue_exported")) == 3
