"""Helpers shared by the test modules: the fixed test keys and users, a valid
report body, and short ways to deliver a report, read or change the store,
and sign in. Fixtures live in conftest.py; test modules import from here,
never from one another."""
from __future__ import annotations

import base64
import glob
import html
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from crewreport import db as store
from crewreport import envelope, flights, xwing
from crewreport.db import get_db, transaction
from crewreport.times import stamp

VECTORS = json.loads((Path(__file__).parent / "vectors" / "envelope-v1.json").read_text("utf-8"))
VECTORS_V2 = json.loads((Path(__file__).parent / "vectors" / "envelope-v2.json").read_text("utf-8"))
PASSWORD = "correct horse battery staple"
# The known second factor of every staff user of the test store (RFC 6238).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
DEVICE_ID = VECTORS["keys"]["device"]["device_id"]
# The `make_envelope` fixture: keyword arguments override header fields.
Make = Callable[..., dict[str, Any]]


class KeySet:
    """The session's private keys: vectors' Border Force, ZZ and device keys,
    plus generated ones for airline YY, the receipt key and a YY device; the
    X-Wing keys (`*_v2`) from the version 2 vectors' seeds, and YY's generated."""

    def __init__(self) -> None:
        k = VECTORS["keys"]
        self.border_force = envelope.private_key_from_jwk(k["border_force"]["jwk"])
        self.airline_zz = envelope.private_key_from_jwk(k["airline_ZZ"]["jwk"])
        self.device = envelope.private_key_from_jwk(k["device"]["jwk"])
        self.airline_yy = ec.generate_private_key(ec.SECP256R1())
        self.receipt = ec.generate_private_key(ec.SECP256R1())
        self.device_yy = ec.generate_private_key(ec.SECP256R1())
        k2 = VECTORS_V2["keys"]
        self.border_force_v2 = xwing.private_key_from_seed(envelope.b64u_decode(k2["border_force"]["seed"]))
        self.airline_zz_v2 = xwing.private_key_from_seed(envelope.b64u_decode(k2["airline_ZZ"]["seed"]))
        self.airline_yy_v2 = xwing.generate_private_key()
        # The version 2 vectors were signed by another key for the same device id.
        self.device_of_v2_vectors = envelope.private_key_from_jwk(k2["device"]["jwk"])

    def kid(self, key: envelope.RecipientPrivateKey) -> str:
        return envelope.thumbprint(envelope.recipient_jwk(key.public_key()))

    def recipients(self, version: int) -> list[envelope.RecipientPrivateKey]:
        """Border Force's and ZZ's keys of one envelope version, in rcpt order."""
        if version == 2:
            return [self.border_force_v2, self.airline_zz_v2]
        return [self.border_force, self.airline_zz]


def hand_sealed(header: dict[str, Any], copies: list[tuple[envelope.RecipientPrivateKey, bytes]]) -> list[bytes]:
    """Copies sealed by hand for `hand_signed` with this `header`: each
    (recipient key, plaintext) in its key's suite, bound to the header."""
    info = envelope.hpke_info(json.dumps(header).encode(), header["v"] if header["v"] in envelope.SUITES else 1)
    return [envelope.seal(plaintext, key.public_key(), info) for key, plaintext in copies]


def hand_signed(keyset: KeySet, header: dict[str, Any], sealed: list[bytes]) -> dict[str, Any]:
    """An envelope of `header` and these sealed copies, signed by the ZZ test
    device: what a tablet could send that `make_envelope` would not build."""
    protected = envelope.b64u_encode(json.dumps(header).encode())
    sealed_b64 = [envelope.b64u_encode(s) for s in sealed]
    signature = envelope.sign_raw(keyset.device, envelope.signing_input(protected, sealed_b64))
    return {"protected": protected, "sealed": sealed_b64, "signature": envelope.b64u_encode(signature)}


def header_of(env: dict[str, Any]) -> dict[str, Any]:
    """An envelope's header, decoded."""
    return dict(json.loads(envelope.b64u_decode(env["protected"])))


def totp_code(secret: str = TOTP_SECRET, steps_ahead: int = 0) -> str:
    """The code of the current 30 s step, or of a step before or after it (a code
    is good once, and the server also takes the steps either side, for clocks a
    little off)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def wrong_code(secret: str = TOTP_SECRET) -> str:
    """Six digits that no step the server takes now (the one before, this one,
    the next) gives for `secret`."""
    taken = {totp_code(secret, ahead) for ahead in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in taken)


def code_due(resp: Any) -> bool:
    return resp.status_code == 200 and b'id="totp-form"' in resp.data


def enrolment_secret(resp: Any) -> str | None:
    """The secret an enrolment page shows (a user with no known secret)."""
    found = re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', resp.get_data(as_text=True))
    return found.group(1) if found else None


class AuthActions:
    """Sign in as the users of the test store, through the code step for staff."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, username: str = "officer", password: str = PASSWORD, *,
              secret: str = TOTP_SECRET, **kwargs: Any) -> Any:
        """The answer to the last step: the password's, or the code's when one
        was due (at enrolment, with the secret the page shows)."""
        resp = self._client.post("/auth/login", data={"username": username, "password": password}, **kwargs)
        return self.code_step(resp, enrolment_secret(resp) or secret, **kwargs) if code_due(resp) else resp

    def code_step(self, resp: Any, secret: str = TOTP_SECRET, **kwargs: Any) -> Any:
        """Answer a code page (with its CSRF token); a code of this step used
        already, then next step's."""
        for ahead in (0, 1):
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', resp.get_data(as_text=True))
            data = {"code": totp_code(secret, ahead), **({"csrf_token": token.group(1)} if token else {})}
            resp = self._client.post("/auth/login", data=data, **kwargs)
            if not code_due(resp):
                break
        return resp

    def logout(self) -> Any:
        return self._client.post("/auth/logout")


def signed_in(client: FlaskClient) -> bool:
    return bool(client.get("/auth/session").get_json()["signed_in"])


def utcnow() -> datetime:
    """Now, taken when a test runs (a module-level time goes stale in a long run)."""
    return datetime.now(UTC)


def valid_header(**changes: Any) -> dict[str, Any]:
    """The header values `report.validate_header` checks, all valid (made
    now, landing in three hours, airline ZZ); keyword arguments replace fields."""
    created = utcnow()
    value = {"id": "8c4c3f7e-3d0f-4b5e-9a55-2f1d5b7a6c01", "airline": "ZZ", "flight": "ZZ101", "dep": "LOS",
             "arr": "LHR", "created": stamp(created), "sta": stamp(created + timedelta(hours=3)), "urgency": "routine"}
    value.update(changes)
    return value


def valid_body(**changes: Any) -> dict[str, Any]:
    """A report body the server accepts; keyword arguments replace fields."""
    body = {"observed_at": stamp(utcnow()), "indicators": ["docs_held_by_other"],
            "people": [{"role": "possible_victim", "seat": "32B", "age_range": "12_17",
                        "description": "Quiet girl in a grey hoodie"}],
            "narrative": "Man in 32C holds both passports and answers for her.",
            "captain_informed": True, "reporter": {"crew_id": "C1234"}}
    body.update(changes)
    return body


def largest_body(ch: str) -> dict[str, Any]:
    """Every field of the schema at its limit, in the character `ch` (pick
    ones that cost the most bytes): the size limit must still take it."""
    from crewreport import catalogue

    return valid_body(
        indicators=sorted(catalogue.CODES), narrative=ch * 5000, languages=[ch * 40] * 10,
        people=[{"role": "possible_victim", "seat": "123K", "sex": "unknown", "age_range": "unknown",
                 "description": ch * 500}] * 20,
        reporter={"crew_id": ch * 32, "name": ch * 100}, documents_held_by="companion",
        phase_of_flight="boarding", share_identity_with_airline=True)


def deliver(client: FlaskClient, make_envelope: Make, **kwargs: Any) -> str:
    """Post an envelope to the intake and return the stored report's id."""
    env = make_envelope(**kwargs)
    resp = client.post("/api/v1/reports", json=env)
    assert resp.status_code == 201, resp.get_json()
    return json.loads(base64.urlsafe_b64decode(env["protected"] + "==="))["id"]


def update_report(app: Flask, report_id: str, **columns: Any) -> None:
    """Set report columns directly (times in the past, status, ...). A new
    airline, flight number, arrival airport or sta puts the report on a flight as the intake
    would have, had it been sent so (`flights.place`)."""
    with app.app_context():
        db = get_db()
        with transaction(db):
            sets = ", ".join(f"{k} = ?" for k in columns)
            db.execute(f"UPDATE report SET {sets} WHERE id = ?", (*columns.values(), report_id))
            if columns.keys() & {"airline", "flight", "arr", "sta"}:
                r = db.execute("SELECT airline, flight, arr, sta FROM report WHERE id = ?", (report_id,)).fetchone()
                db.execute("UPDATE report SET flight_id = ? WHERE id = ?",
                           (flights.place(db, r["airline"], r["flight"], r["arr"], r["sta"]), report_id))


def row(app: Flask, report_id: str) -> dict[str, Any] | None:
    """The report's stored row, or None when there is none."""
    with app.app_context():
        r = get_db().execute("SELECT * FROM report WHERE id = ?", (report_id,)).fetchone()
        return dict(r) if r else None


def events(app: Flask, action: str, subject: str | None = None) -> list[dict[str, Any]]:
    """Audit events of one action (and subject), oldest first."""
    with app.app_context():
        sql, params = "SELECT * FROM audit_event WHERE action = ?", [action]
        if subject:
            sql += " AND subject = ?"
            params.append(subject)
        return [dict(r) for r in get_db().execute(sql + " ORDER BY id", params)]


def count(app: Flask, sql: str, *params: Any) -> int:
    with app.app_context():
        return get_db().execute(sql, params).fetchone()[0]


def store_bytes(app: Flask) -> bytes:
    """Every byte of the store on disk: the database, its WAL and shm."""
    return b"".join(open(p, "rb").read() for p in glob.glob(app.config["DATABASE"] + "*"))


def text(resp: Any) -> str:
    return resp.get_data(as_text=True)


def said(page: str) -> list[str]:
    """What a page tells its reader: its flashed messages and field errors, in order."""
    return [html.unescape(m) for m in re.findall(r'class="(?:flash|error)"[^>]*>([^<]*)<', page)]


def add_officer(app: Flask, username: str = "officer2") -> None:
    """A second Border Force officer, with the test store's known second factor."""
    from crewreport.auth import create_user

    with app.app_context():
        create_user(username, "border_force", PASSWORD, totp_secret=TOTP_SECRET)


def login_as(client: FlaskClient, username: str) -> None:
    client.post("/auth/logout")
    resp = AuthActions(client).login(username)
    assert resp.status_code == 302, f"sign-in as {username} failed"


def csrf_login(client: FlaskClient, username: str) -> None:
    page = text(client.get("/auth/login"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    resp = client.post("/auth/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert AuthActions(client).code_step(resp).status_code == 302


def page_token(client: FlaskClient, path: str) -> str:
    """The CSRF token a page hands its scripts."""
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', text(client.get(path))).group(1)  # type: ignore[union-attr]


FLIGHT_CARD = re.compile(r'<li class="flight-card[^"]*"(?P<attrs>[^>]*)>(?P<body>.*?)</ol>\s*</li>', re.S)


def board_flights(html: str) -> list[dict[str, Any]]:
    """The flights of a board page (or its refresh fragment), in order: each
    with its data attributes and the ids of the reports listed under it."""
    found = []
    for m in FLIGHT_CARD.finditer(html):
        attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', m.group("attrs")))
        found.append({**attrs, "reports": re.findall(r'data-report-id="([0-9a-f-]{36})"', m.group("body")),
                      "html": m.group(0)})
    return found


def report_line(html: str, report_id: str) -> str:
    """The board's line for one report."""
    m = re.search(rf'<li data-report-id="{report_id}".*?</li>', html, re.S)
    assert m, f"report {report_id} is not on the page"
    return m.group(0)


def store_before(path: Path, monkeypatch: pytest.MonkeyPatch, migration: str, at: str) -> sqlite3.Connection:
    """A store as the release before `migration` (a file name's ending, such
    as "_flight.sql") left it, with airline ZZ, its crew user 1 and device
    dev-1 (made at `at`): rows for an upgrade test to add to, before it calls
    `store.migrate` again."""
    known = store.migrations()
    before = next(i for i, (_, name, _) in enumerate(known) if name.endswith(migration))
    conn = store.connect(str(path / "old.sqlite"))
    with monkeypatch.context() as patched:
        patched.setattr(store, "migrations", lambda: known[:before])
        store.migrate(conn)
    conn.execute("INSERT INTO airline VALUES ('ZZ', 'Demo Airways', ?)", (at,))
    conn.execute("INSERT INTO user (id, username, password_hash, role, airline, created_at)"
                 " VALUES (1, 'crew', '$argon2id$x', 'crew', 'ZZ', ?)", (at,))
    conn.execute("INSERT INTO device (id, user_id, airline, label, public_jwk, kid, enrolled_at)"
                 " VALUES ('dev-1', 1, 'ZZ', 'Tablet', '{}', 'kid-dev', ?)", (at,))
    return conn


def deliver_yy(client: FlaskClient, make_envelope: Make, keyset: KeySet, **kwargs: Any) -> str:
    """A note from airline YY's tablet (dev-yy), sealed to Border Force and YY."""
    return deliver(client, make_envelope, device="dev-yy", device_key=keyset.device_yy, airline="YY",
                   flight="YY12", recipients=[keyset.border_force, keyset.airline_yy], **kwargs)


def bulk_insert(app: Flask, n: int, template_id: str) -> list[str]:
    """Copies of one stored report under new ids, each on its own flight
    with spread landing times (no crypto: for queue size and speed only)."""
    ids = []
    with app.app_context():
        db = get_db()
        t = dict(db.execute("SELECT * FROM report WHERE id = ?", (template_id,)).fetchone())
        rows = []
        for i in range(n):
            rid = str(uuid.uuid4())
            ids.append(rid)
            rows.append({**t, "id": rid, "reference": f"B{i:07d}", "arr": ("LHR", "MAN", "LGW", "EDI")[i % 4],
                         "flight": f"ZB{i}",  # one report per flight
                         "urgency_rank": i % 3, "urgency": ("immediate", "priority", "routine")[i % 3],
                         "sta": stamp(utcnow() + timedelta(minutes=7 * i - 600)),
                         "status": ("received", "assessing", "referred")[i % 3]})
        cols = list(t)
        with transaction(db):
            for r in rows:
                r["flight_id"] = db.execute(
                    "INSERT INTO flight (airline, flight, arr, sta, estimated) VALUES (?, ?, ?, ?, ?) RETURNING id",
                    (r["airline"], r["flight"], r["arr"], r["sta"], r["created"])).fetchone()[0]
            db.executemany(f"INSERT INTO report ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                           [tuple(r[c] for c in cols) for r in rows])
    return ids


def current_kids(client: FlaskClient, suite: str = "v1") -> dict[str, str]:
    """Each owner's current key id of a suite, and the receipt key's, as /api/v1/keys publishes them."""
    body = client.get("/api/v1/keys").get_json()
    return {**{r["owner"]: r["kid"] for r in body["recipients"] if r["suite"] == suite},
            "receipt": body["receipt_key"]["kid"]}


@contextmanager
def store_refusing_writes(pragma: str) -> Iterator[None]:
    """Every store connection the app opens meanwhile runs `PRAGMA <pragma>`:
    `max_page_count = 1` keeps the file from growing (a write that needs a new
    page fails SQLITE_FULL, as on a full disk), `query_only = 1` refuses every
    write (SQLITE_READONLY). SQLite's own refusals, not stand-ins."""
    with store_opened_with(f"PRAGMA {pragma}"):
        yield


@contextmanager
def store_opened_with(statement: str) -> Iterator[None]:
    """Every store connection the app opens meanwhile first runs `statement`
    (a pragma, a TEMP trigger refusing one table's writes...)."""
    real = store.connect

    def connect(path: str) -> sqlite3.Connection:
        conn = real(path)
        conn.execute(statement)
        return conn

    store._pool.clear()  # no connection opened before may serve meanwhile
    store.connect = connect  # type: ignore[assignment]
    try:
        yield
    finally:
        store.connect = real  # type: ignore[assignment]
        store._pool.clear()


def store_dump(app: Flask, *, leave_out: tuple[str, ...] = ()) -> list[str]:
    """Every row of the store as SQL, but the tables named in `leave_out`: to
    show that a request changed nothing (store_bytes would also see a checkpoint)."""
    with app.app_context():
        return [line for line in get_db().iterdump()
                if not any(line.startswith(f'INSERT INTO "{table}"') for table in leave_out)]


def raced(app: Flask, monkeypatch: pytest.MonkeyPatch, module: Any, sql: str, *params: Any) -> None:
    """Another request's write lands between this request's look at the store
    and its own write: the first `transaction` that `module` opens commits
    `sql` through a connection of its own before taking the write lock (as a
    double-clicked form's other POST does, served by another worker)."""
    real = module.transaction
    pending = [sql]

    def racing(db: sqlite3.Connection) -> Any:
        while pending:
            other = sqlite3.connect(app.config["DATABASE"])
            try:
                with other:
                    other.execute(pending.pop(), params)
            finally:
                other.close()
        return real(db)

    monkeypatch.setattr(module, "transaction", racing)


def user_id(app: Flask, username: str) -> int:
    """The id of the test store's user `username`."""
    with app.app_context():
        return int(get_db().execute("SELECT id FROM user WHERE username = ?", (username,)).fetchone()[0])


def staff_client(app: Flask, username: str) -> FlaskClient:
    """A client of its own, signed in as `username` (a browser of theirs
    beside the test's own `client`)."""
    other = app.test_client()
    assert AuthActions(other).login(username).status_code == 302, f"sign-in as {username} failed"
    return other


def active(app: Flask, username: str) -> bool:
    """Whether the account may sign in (`user.active`)."""
    return bool(count(app, "SELECT active FROM user WHERE username = ?", username))


def form_fields(page: str, form_id: str) -> dict[str, str]:
    """The hidden fields of the page's form `form_id` (its CSRF token among
    them), as the browser would send them back."""
    form = re.search(rf'<form [^>]*id="{form_id}".*?</form>', page, re.S)
    assert form, f"no form {form_id} on the page"
    return {name: html.unescape(value) for name, value in
            re.findall(r'<input[^>]*name="([^"]+)"[^>]*type="hidden"[^>]*value="([^"]*)"', form.group(0))}
