"""Paging through the board while reports arrive: a flight that a new report
moves to a page the officer has already read is said to be elsewhere."""
from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from crewreport.times import stamp

from .helpers import AuthActions, Make, board_flights, deliver, text, update_report, utcnow


def test_a_flight_moved_to_a_page_already_read_is_said_to_be_elsewhere(client: FlaskClient, app: Flask,
                                                                      make_envelope: Make,
                                                                      auth: AuthActions) -> None:
    # 26 flights whose notes all came after landing: newest receipt first, 25 a page
    for n in range(26):
        rid = deliver(client, make_envelope, flight=f"ZZ{500 + n}")
        update_report(app, rid, sta=stamp(utcnow() - timedelta(hours=5)),
                      received_at=stamp(utcnow() - timedelta(hours=4) + timedelta(minutes=n)))
    auth.login("officer")
    client.get("/triage/?status=any")  # an earlier look: what arrives from now on is new
    page1 = text(client.get("/triage/?status=any"))
    assert "ZZ500" not in {f["flight"] for f in board_flights(page1)}
    since = re.search(r'data-since="([^"]+)"', page1).group(1)  # type: ignore[union-attr]
    newcomer = deliver(client, make_envelope, flight="ZZ500")  # ZZ500 jumps to page 1
    update_report(app, newcomer, sta=stamp(utcnow() - timedelta(hours=5)))
    page2 = text(client.get(f"/triage/?status=any&page=2&since={since}"))
    assert newcomer not in page2
    notice = re.search(r'id="new-elsewhere">([^<]*)<a href="([^"]+)"', page2)
    assert notice, "page 2 does not say a new report is elsewhere"
    assert notice.group(1) == "1 new report not on this page: " and "page=" not in notice.group(2)
    refreshed = client.get(f"/triage/queue.json?status=any&page=2&since={since}").get_json()
    assert "1 new report not on this page" in refreshed["pager"]
    # on page 1 it is listed, and nothing is said
    assert "new-elsewhere" not in text(client.get(f"/triage/?status=any&since={since}"))
