"""Airline security review over the Flask test client: own airline only,
content when the airline was a recipient (current or retired key), identity
only when shared, crew administration, device revocation, tenant isolation,
access and CSRF."""
from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import keys
from crewreport.auth import create_user
from crewreport.db import get_db, transaction
from crewreport.display import day, when

from .helpers import (
    DEVICE_ID,
    PASSWORD,
    AuthActions,
    KeySet,
    Make,
    count,
    csrf_login,
    deliver,
    deliver_yy,
    events,
    login_as,
    page_token,
    row,
    said,
    text,
    update_report,
    valid_body,
)


def user(app: Flask, username: str) -> dict[str, Any]:
    with app.app_context():
        return dict(get_db().execute("SELECT * FROM user WHERE username = ?", (username,)).fetchone())


def sessions(app: Flask, username: str) -> int:
    """Open server-side sessions of a user."""
    return count(app, "SELECT count(*) FROM user_session s JOIN user u ON u.id = s.user_id"
                      " WHERE u.username = ?", username)


def device(app: Flask, device_id: str) -> dict[str, Any]:
    with app.app_context():
        return dict(get_db().execute("SELECT * FROM device WHERE id = ?", (device_id,)).fetchone())


def test_list_shows_own_airline_only_with_coarse_status(client: FlaskClient, app: Flask, make_envelope: Make,
                                                        keyset: KeySet, auth: AuthActions) -> None:
    zz_received = deliver(client, make_envelope)
    zz_assessing = deliver(client, make_envelope)
    zz_meet = deliver(client, make_envelope)
    zz_closed = deliver(client, make_envelope)
    yy = deliver_yy(client, make_envelope, keyset)
    update_report(app, zz_assessing, status="assessing")
    update_report(app, zz_meet, status="meet_aircraft")
    update_report(app, zz_closed, status="no_further_action")
    auth.login("security")
    page = text(client.get("/review/"))
    for rid in (zz_received, zz_assessing, zz_meet, zz_closed):
        assert f'data-report-id="{rid}"' in page
        assert row(app, rid)["reference"] in page  # type: ignore[index]
    assert yy not in page and row(app, yy)["reference"] not in page  # type: ignore[index]
    assert page.count(">Being assessed<") == 2 and page.count(">Closed<") == 1 and page.count(">Received<") == 1
    assert "Meet aircraft" not in page and "No further action" not in page
    assert "before landing" in page
    login_as(client, "security-yy")
    page = text(client.get("/review/"))
    assert yy in page and zz_received not in page


def test_content_opens_with_the_airline_key_and_is_audited(client: FlaskClient, app: Flask,
                                                           make_envelope: Make, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    auth.login("security")
    resp = client.get(f"/review/reports/{rid}")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    page = text(resp)
    assert "Man in 32C holds both passports and answers for her." in page
    assert "Quiet girl in a grey hoodie" in page
    assert 'id="coarse-status">Received' in page
    opened = events(app, "report_opened", f"report:{rid}")
    assert len(opened) == 1 and opened[0]["actor"] == "user:security"
    assert json.loads(opened[0]["detail"]) == {"content": True, "surface": "review"}


def test_no_content_when_the_airline_was_not_a_recipient(client: FlaskClient, app: Flask, make_envelope: Make,
                                                         keyset: KeySet, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope, recipients=[keyset.border_force])
    auth.login("security")
    page = text(client.get(f"/review/reports/{rid}"))
    assert "not sealed to your airline" in page
    assert "passports" not in page and "grey hoodie" not in page and "C1234" not in page
    assert row(app, rid)["flight"] in page  # type: ignore[index]  # the header is still theirs to see
    assert json.loads(events(app, "report_opened", f"report:{rid}")[0]["detail"])["content"] is False


def test_content_opens_with_a_retired_airline_key(client: FlaskClient, app: Flask, make_envelope: Make,
                                                  auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    with app.app_context():
        db = get_db()
        with transaction(db):
            keys.add_key(db, keys.airline_owner("ZZ"))  # rotate: the vectors' ZZ key is retired
        retired = "SELECT count(*) FROM service_key WHERE owner = 'airline:ZZ' AND retired_at IS NOT NULL"
        assert db.execute(retired).fetchone()[0] == 1
    auth.login("security")
    assert "holds both passports" in text(client.get(f"/review/reports/{rid}"))


def test_reporter_identity_only_when_shared(client: FlaskClient, app: Flask, make_envelope: Make,
                                            auth: AuthActions) -> None:
    hidden = deliver(client, make_envelope, body=valid_body(reporter={"crew_id": "CREWID-HIDDEN",
                                                                      "name": "Hidden Name"}))
    shared = deliver(client, make_envelope, body=valid_body(reporter={"crew_id": "CREWID-SHARED",
                                                                      "name": "Shared Name"},
                                                            share_identity_with_airline=True))
    auth.login("security")
    page = text(client.get(f"/review/reports/{hidden}"))
    assert "chose not to share" in page
    assert "CREWID-HIDDEN" not in page and "Hidden Name" not in page
    assert DEVICE_ID not in page  # the device would name the reporter too
    page = text(client.get(f"/review/reports/{shared}"))
    assert "CREWID-SHARED" in page and "Shared Name" in page and DEVICE_ID in page
    # Border Force always sees the reporter
    login_as(client, "officer")
    assert "CREWID-HIDDEN" in text(client.get(f"/triage/reports/{hidden}"))


def test_tenant_isolation_every_route_is_404_for_another_airline(client: FlaskClient, app: Flask, make_envelope: Make,
                                                                 keyset: KeySet, auth: AuthActions) -> None:
    zz = deliver(client, make_envelope)
    crew_zz = user(app, "crew")
    auth.login("security-yy")
    assert client.get(f"/review/reports/{zz}").status_code == 404
    assert client.get(f"/review/reports/{zz}?airline=ZZ").status_code == 404
    assert client.get(f"/review/reports/{str(uuid.uuid4())}").status_code == 404
    resp = client.post(f"/review/crew/{crew_zz['id']}/password", data={"new_password": "a new password 123"})
    assert resp.status_code == 404
    assert client.post(f"/review/devices/{DEVICE_ID}/revoke").status_code == 404
    assert client.post("/review/devices/no-such-device/revoke").status_code == 404
    assert user(app, "crew") == crew_zz
    assert device(app, DEVICE_ID)["revoked_at"] is None
    assert zz not in text(client.get("/review/")) and DEVICE_ID not in text(client.get("/review/crew"))
    assert "crew-yy" in text(client.get("/review/crew")) and ">crew<" not in text(client.get("/review/crew"))
    assert events(app, "report_opened") == [] and events(app, "device_revoked") == []
    # Not other roles of one's own airline either: only crew accounts
    login_as(client, "security")
    for other in ("security", "officer", "admin", "crew-yy"):
        before = user(app, other)["password_hash"]
        resp = client.post(f"/review/crew/{user(app, other)['id']}/password",
                           data={"new_password": "a new password 123"})
        assert resp.status_code == 404, other
        assert user(app, other)["password_hash"] == before


def test_create_crew_account(client: FlaskClient, app: Flask, auth: AuthActions) -> None:
    auth.login("security")
    resp = client.post("/review/crew", data={"username": "new-crew", "password": "long enough password"})
    assert resp.status_code == 303
    made = user(app, "ZZ/new-crew")
    assert (made["role"], made["airline"]) == ("crew", "ZZ")
    assert "they sign in as ZZ/new-crew" in text(client.get("/review/crew"))
    assert len(events(app, "user_created", "user:ZZ/new-crew")) == 1
    # refused: a name the airline has already, short password, odd characters; nothing made
    resp = client.post("/review/crew", data={"username": "new-crew", "password": "long enough password"})
    assert resp.status_code == 409 and "already has a crew account ZZ/new-crew" in text(resp)
    resp = client.post("/review/crew", data={"username": "short-pw", "password": "short"})
    assert resp.status_code == 400 and "at least 12" in text(resp)
    resp = client.post("/review/crew", data={"username": "bad name<>", "password": "long enough password"})
    assert resp.status_code == 400 and "Letters, digits" in text(resp)
    assert count(app, "SELECT count(*) FROM user WHERE username IN ('short-pw', 'bad name<>')") == 0
    # the new account works, as crew
    other = app.test_client()
    assert other.post("/auth/login", data={"username": "ZZ/new-crew",
                                           "password": "long enough password"}).status_code == 302
    assert other.get("/auth/session").get_json()["role"] == "crew"


@pytest.mark.parametrize("name", ["ab\n", "new-crew\n"])
def test_a_crew_name_ending_in_a_line_break_is_refused(client: FlaskClient, app: Flask, auth: AuthActions,
                                                       name: str) -> None:
    """The rule's `$` also matched before a final line break: "ab\n" passed
    the three-character minimum and was made ZZ/ab, a name the form refuses."""
    auth.login("security")
    users = count(app, "SELECT count(*) FROM user")
    resp = client.post("/review/crew", data={"username": name, "password": "long enough password"})
    assert resp.status_code == 400 and "Letters, digits" in text(resp)
    assert count(app, "SELECT count(*) FROM user") == users


def test_crew_creation_answers_alike_whether_the_name_exists_elsewhere(client: FlaskClient, app: Flask,
                                                                     auth: AuthActions) -> None:
    """Names of other airlines' crew or of staff cannot be probed from the form."""
    auth.login("security")
    answers = []
    for name in ("crew-yy", "officer", "security-yy", "nobody-has-this"):
        resp = client.post("/review/crew", data={"username": name, "password": "long enough password"})
        page = text(client.get(resp.headers.get("Location", "/review/crew"))).replace(name, "NAME")
        answers.append((resp.status_code, resp.headers.get("Location"), said(page)))
        assert user(app, f"ZZ/{name}")["airline"] == "ZZ"
    assert all(a == answers[0] for a in answers), answers
    assert answers[0][:2] == (303, "/review/crew")
    assert answers[0][2] == ["Crew account created: they sign in as ZZ/NAME."]
    # The namespace is the airline's own: no one else may hold a name in it.
    with app.app_context():
        for args in (("YY/x-crew", "crew", PASSWORD, "YY"), ("ZZ/bob", "crew", PASSWORD, "YY"),
                     ("ZZ/boss", "border_force", PASSWORD, None), ("ZZ/sec", "airline_security", PASSWORD, "ZZ")):
            if args[0].startswith("YY/"):
                create_user(*args)  # YY's own crew: fine
            else:
                with pytest.raises(ValueError, match="CODE/name"):
                    create_user(*args)


def test_reset_password_signs_the_crew_member_out(client: FlaskClient, app: Flask, auth: AuthActions) -> None:
    crew_client = app.test_client()
    crew_client.post("/auth/login", data={"username": "crew", "password": PASSWORD})
    assert crew_client.get("/auth/session").get_json()["signed_in"] is True
    auth.login("security")
    crew_id = user(app, "crew")["id"]
    resp = client.post(f"/review/crew/{crew_id}/password", data={"new_password": "short"})
    assert resp.status_code == 400 and "at least 12 characters" in text(resp)
    assert sessions(app, "crew") == 1
    resp = client.post(f"/review/crew/{crew_id}/password", data={"new_password": "a brand new password"})
    assert resp.status_code == 303
    assert sessions(app, "crew") == 0
    assert crew_client.get("/auth/session").get_json()["signed_in"] is False
    fresh = app.test_client()
    assert fresh.post("/auth/login", data={"username": "crew", "password": "a brand new password"}).status_code == 302
    assert len(events(app, "password_reset", "user:crew")) == 1


def test_devices_with_last_seen_and_revocation(client: FlaskClient, app: Flask, make_envelope: Make,
                                               auth: AuthActions) -> None:
    assert client.get(f"/api/v1/devices/{DEVICE_ID}").get_json()["state"] == "active"  # the app's start-up check
    seen = device(app, DEVICE_ID)["last_seen_at"]
    assert seen
    auth.login("security")
    page = text(client.get("/review/crew"))
    assert f'data-device-id="{DEVICE_ID}"' in page and "Active" in page
    assert "Used in the last 30 days" in page
    assert "dev-yy" not in page
    resp = client.post(f"/review/devices/{DEVICE_ID}/revoke")
    assert resp.status_code == 303
    d = device(app, DEVICE_ID)
    assert d["revoked_at"] and d["revoked_by"] == user(app, "security")["id"]
    assert len(events(app, "device_revoked", f"device:{DEVICE_ID}")) == 1
    assert "Revoked" in text(client.get("/review/crew"))
    refused = client.post("/api/v1/reports", json=make_envelope())
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "revoked_device"
    again = client.post(f"/review/devices/{DEVICE_ID}/revoke")
    assert again.status_code == 409 and "already revoked" in text(again)
    assert len(events(app, "device_revoked")) == 1


def test_revoking_asks_once_more_and_shows_which_tablet(client: FlaskClient, app: Flask, auth: AuthActions) -> None:
    """Tablets look alike in a list: the confirmation names the one, newest first."""
    auth.login("security")
    listing = text(client.get("/review/crew"))
    assert f'href="/review/devices/{DEVICE_ID}/revoke"' in listing
    assert f'action="/review/devices/{DEVICE_ID}/revoke"' not in listing  # no one-click revoke
    page = text(client.get(f"/review/devices/{DEVICE_ID}/revoke"))
    assert "Revoke this tablet?" in page and DEVICE_ID in page and "crew" in page
    assert device(app, DEVICE_ID)["revoked_at"] is None  # looking changes nothing
    assert client.post(f"/review/devices/{DEVICE_ID}/revoke").status_code == 303
    assert device(app, DEVICE_ID)["revoked_at"] is not None


def test_device_activity_cannot_name_an_anonymous_reporter(client: FlaskClient, app: Flask,
                                                          make_envelope: Make, auth: AuthActions) -> None:
    """The report list shows delivery to the minute; the device list must not
    show last use to the minute, or the two together name the reporter."""
    rid = deliver(client, make_envelope)  # share_identity_with_airline is absent: not shared
    client.get(f"/api/v1/devices/{DEVICE_ID}")  # and the app asks on start, as it does
    delivered = row(app, rid)["received_at"]  # type: ignore[index]
    with app.app_context():  # enrolled and created long before, as in life
        db = get_db()
        with transaction(db):
            db.execute("UPDATE device SET enrolled_at = '2026-01-05T10:00:00Z'")
            db.execute("UPDATE user SET created_at = '2026-01-04T10:00:00Z'")
    auth.login("security")
    crew_page = text(client.get("/review/crew"))
    minute = when(delivered)
    assert minute in text(client.get("/review/"))  # the report list does show it
    assert minute not in crew_page
    assert delivered not in crew_page and delivered[:16] not in crew_page
    assert "The reporter chose not to share" in text(client.get(f"/review/reports/{rid}"))


def test_device_activity_does_not_say_which_tablets_sent_notes(client: FlaskClient, app: Flask,
                                                              make_envelope: Make, auth: AuthActions) -> None:
    """Notes are rare: a list in which only the tablets that delivered one
    show as used names the reporters, to the month, whatever they chose to
    share. What the airline sees of a tablet is the same before and after it
    delivers a note; it is used when the crew app starts (its revocation check)."""
    auth.login("security")
    before = device_table(client)
    assert "Never used" in before
    rid = deliver(client, make_envelope)  # not shared with the airline
    assert device(app, DEVICE_ID)["last_seen_at"] is None
    assert device_table(client) == before
    assert "The reporter chose not to share" in text(client.get(f"/review/reports/{rid}"))
    client.get(f"/api/v1/devices/{DEVICE_ID}")  # crew app started, on any tablet, note or no note
    assert "Used in the last 30 days" in text(client.get("/review/crew"))


def test_the_device_list_says_what_its_activity_counts(client: FlaskClient, auth: AuthActions) -> None:
    """After migration 0012 every tablet shows "Never used" until its app next
    starts: the page says what is counted, so that no security team revokes
    working tablets (and strands their queued notes) for it."""
    auth.login("security")
    page = " ".join(text(client.get("/review/crew")).split())
    assert "when the crew app last started online on the tablet, never when it sent a note" in page
    assert "has not started since that was first counted" in page


def test_a_tablets_enrolment_shows_its_day_not_its_minute(client: FlaskClient, app: Flask,
                                                          auth: AuthActions) -> None:
    """A tablet set up just before a note was sent would be tied to it by the minute."""
    enrolled = device(app, DEVICE_ID)["enrolled_at"]
    auth.login("security")
    table = device_table(client)
    assert day(enrolled) in table and when(enrolled) not in table
    assert not re.search(r"\d\d:\d\dZ", table)
    revoke_page = text(client.get(f"/review/devices/{DEVICE_ID}/revoke"))
    assert day(enrolled) in revoke_page and when(enrolled) not in revoke_page


def device_table(client: FlaskClient) -> str:
    """The device list of /review/crew: the whole page differs from one second
    to the next (its CSRF token is signed with the time)."""
    page = text(client.get("/review/crew"))
    return page[page.index('<table id="devices">'):page.index("</table>", page.index('<table id="devices">'))]


def review_routes(app: Flask, rid: str) -> list[tuple[str, str, dict[str, str]]]:
    crew_id = user(app, "crew")["id"]
    return [("GET", "/review/", {}), ("GET", f"/review/reports/{rid}", {}), ("GET", "/review/crew", {}),
            ("POST", "/review/crew", {"username": "matrix-crew", "password": "long enough password"}),
            ("POST", f"/review/crew/{crew_id}/password", {"new_password": "long enough password"}),
            ("GET", f"/review/reports/{rid}/flight", {}),
            ("GET", f"/review/devices/{DEVICE_ID}/revoke", {}),
            ("POST", f"/review/devices/{DEVICE_ID}/revoke", {})]


@pytest.mark.parametrize("who", [None, "crew", "officer", "admin", "security"])
def test_access_matrix(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions,
                       who: str | None) -> None:
    rid = deliver(client, make_envelope)
    if who:
        auth.login(who)
    for method, path, data in review_routes(app, rid):
        resp = client.open(path, method=method, data=data)
        if who is None:
            assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"], path
        elif who == "security":
            assert resp.status_code in (200, 303), (path, resp.status_code)
        else:
            assert resp.status_code == 403, (who, method, path)
    revoked = device(app, DEVICE_ID)["revoked_at"]
    assert (revoked is not None) == (who == "security")


def test_csrf_is_enforced_on_every_review_post(csrf_app: Flask, make_envelope: Make) -> None:
    client = csrf_app.test_client()
    rid = deliver(client, make_envelope)
    csrf_login(client, "security")
    crew_hash = user(csrf_app, "crew")["password_hash"]
    for method, path, data in review_routes(csrf_app, rid):
        if method == "POST":
            resp = client.post(path, data=data)
            assert resp.status_code == 400 and "CSRF" in text(resp), path
    assert device(csrf_app, DEVICE_ID)["revoked_at"] is None
    assert user(csrf_app, "crew")["password_hash"] == crew_hash
    assert count(csrf_app, "SELECT count(*) FROM user WHERE username = 'matrix-crew'") == 0
    token = page_token(client, "/review/crew")
    assert client.post(f"/review/devices/{DEVICE_ID}/revoke", data={"csrf_token": token}).status_code == 303
    assert device(csrf_app, DEVICE_ID)["revoked_at"] is not None
