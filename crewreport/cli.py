"""Administrator commands (DESIGN.md section 7): `flask --app crewreport ...`."""
from __future__ import annotations

import json
import os
import re
import secrets
import sys
from datetime import UTC, datetime, timedelta

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from . import audit, auth, envelope, keys, retention, second_factor
from .cli_text import TEXT
from .db import get_db, init_db, transaction
from .times import now, stamp

DEMO_USERS = (
    ("demo-crew", "crew", "ZZ"),
    ("demo-security", "airline_security", "ZZ"),
    ("demo-officer", "border_force", None),
    ("demo-admin", "admin", None),
)


def create_airline(code: str, name: str, *, with_key: bool = True) -> None:
    db = get_db()
    with transaction(db):
        db.execute("INSERT INTO airline (code, name, created_at) VALUES (?, ?, ?)", (code, name, now()))
        audit.record("airline_created", db=db, subject=f"airline:{code}", name=name)
        if with_key:  # one security key per suite: P-256 (v1) and X-Wing (v2)
            keys.add_key(db, keys.airline_owner(code), suite=keys.V1)
            keys.add_key(db, keys.airline_owner(code), suite=keys.V2)


@click.command("create-airline")
@click.argument("code", type=TEXT)
@click.argument("name", type=TEXT)
@click.option("--no-key", is_flag=True, help="Do not make a security key for the airline.")
@with_appcontext
def create_airline_command(code: str, name: str, no_key: bool) -> None:
    """Add airline CODE (IATA, two characters) with security keys (v1 and v2)."""
    code = code.upper()
    if not re.fullmatch(r"[A-Z0-9]{2}", code):  # str.isalnum() would let "ÅÅ" through
        raise click.ClickException("CODE is a two-character IATA airline code, like BA")
    if not 1 <= len(name.strip()) <= 100:
        raise click.ClickException("NAME must be 1 to 100 characters")
    if not no_key:
        keys.warn_or_refuse()
    init_db()  # before the lookup: on a new instance there is no table yet
    if get_db().execute("SELECT 1 FROM airline WHERE code = ?", (code,)).fetchone():
        raise click.ClickException(f"airline {code} exists")
    keys.ensure_keys(get_db())
    create_airline(code, name.strip(), with_key=not no_key)
    click.echo(f"Created airline {code} ({name}){'' if no_key else ' with a security key'}.")


@click.command("demo")
@click.option("--password", type=TEXT, default=None, help="One password for every demo user (default: random each).")
@click.option("--totp-secret", type=TEXT, default=None, metavar="BASE32",
              help="One TOTP secret for the demo staff users (default: random each).")
@with_appcontext
def demo_command(password: str | None, totp_secret: str | None) -> None:
    """A demo store: airline ZZ with a security key, and one user per role.

    Idempotent: existing data stays; the demo users get new passwords, and the
    staff among them new TOTP secrets, printed so a person can add them to an
    authenticator app (or an otpauth URI reader) and sign in.
    """
    keys.warn_or_refuse(warn=False)  # warned below, only when this run writes keys
    try:
        secret = second_factor.valid_secret(totp_secret) if totp_secret is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--totp-secret") from None
    if password is not None and len(password) < auth.MIN_PASSWORD:  # set_password (a rerun) checks nothing
        raise click.BadParameter(f"the password must be at least {auth.MIN_PASSWORD} characters",
                                 param_hint="--password")
    init_db()
    db = get_db()
    made = keys.ensure_keys(db)
    if made:
        keys.warn_or_refuse()
    if not db.execute("SELECT 1 FROM airline WHERE code = 'ZZ'").fetchone():
        create_airline("ZZ", "Demo Airways")
    click.echo("Demo sign-ins (at /auth/login):")
    for username, role, airline in DEMO_USERS:
        # Fresh passwords each time, so they are printed and never stored in clear.
        row = db.execute("SELECT id FROM user WHERE username = ?", (username,)).fetchone()
        pw = password or secrets.token_urlsafe(9)
        user_id = row["id"] if row else auth.create_user(username, role, pw, airline)
        staff = second_factor.needs_second_factor(role)
        user_secret = (secret or second_factor.random_secret()) if staff else None
        with transaction(db):
            if row is not None:
                auth.set_password(user_id, pw, db=db)
            if user_secret:
                second_factor.set_secret(db, user_id, user_secret, confirmed=True)
        click.echo(f"  {username:15} ({role}) password: {pw}")
        if user_secret:
            click.echo(f"  {'':15} TOTP secret: {user_secret}"
                       f"  ({second_factor.provisioning_uri(username, user_secret)})")
    click.echo("Staff give a code from an authenticator app after the password "
               "(time-based, SHA-1, 6 digits, 30 s; add the secret or the otpauth URI).")
    if made:  # first run only: say plainly what appeared in the instance folder
        made_rows = [db.execute("SELECT owner, suite FROM service_key WHERE kid = ?", (kid,)).fetchone()
                     for kid in made]
        owners = [r["owner"] for r in made_rows if r["suite"] == keys.V1]
        x_wing = [r["owner"] for r in made_rows if r["suite"] == keys.V2]
        also = f" and X-Wing keys ({', '.join(x_wing)})" if x_wing else ""
        click.echo(f"New service keys ({', '.join(owners)}){also} are in {current_app.config['KEY_DIR']}; "
                   "they are kept from now on (docs/operations.md says how to protect and rotate them).")


@click.command("reset-second-factor")
@click.argument("username", type=TEXT)
@with_appcontext
def reset_second_factor_command(username: str) -> None:
    """Forget USERNAME's TOTP secret and recovery codes; they enrol again at next sign-in.

    For when no administrator can sign in to /admin to do it.
    """
    db = get_db()
    row = db.execute("SELECT id, username, role FROM user WHERE username = ?", (username,)).fetchone()
    if row is None or not second_factor.needs_second_factor(row["role"]):
        raise click.ClickException(f"no staff user {username}")
    with transaction(db):
        second_factor.reset(db, row["id"])
        auth.end_sessions(db, row["id"])
        audit.record("second_factor_reset", subject=f"user:{row['username']}", db=db)
    click.echo(f"Second factor of {row['username']} reset: they set up a new one at their next sign-in.")


@click.command("revoke-device")
@click.argument("device_id", type=TEXT)
@with_appcontext
def revoke_device_command(device_id: str) -> None:
    """Revoke DEVICE_ID: its envelopes are refused from now on."""
    db = get_db()
    with transaction(db):
        cur = db.execute("UPDATE device SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                         (now(), device_id))
        if cur.rowcount:
            # As airline security's revocation (review.revoke_device): its
            # crew member signs in again to set a tablet up.
            owner = db.execute("SELECT user_id FROM device WHERE id = ?", (device_id,)).fetchone()[0]
            auth.end_sessions(db, owner)
            audit.record("device_revoked", db=db, subject=f"device:{device_id}")
    if not cur.rowcount:
        exists = db.execute("SELECT 1 FROM device WHERE id = ?", (device_id,)).fetchone()
        raise click.ClickException(f"device {device_id} is already revoked" if exists
                                   else f"no device {device_id}")
    click.echo(f"Revoked {device_id}.")


@click.command("serve")
@click.option("--host", type=TEXT, default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@with_appcontext
def serve_command(host: str, port: int, workers: int) -> None:
    """Serve with gunicorn; slow or idle clients cost no worker (see crewreport/serving.py)."""
    keys.warn_or_refuse()
    current_app.config["KEY_WARNING_SHOWN"] = True
    init_db()
    try:
        keys.keyring()
    except keys.KeysUnavailable as exc:
        click.echo(f"WARNING: intake will answer 503 until keys are fixed: {exc}", err=True)
    env = dict(os.environ, CREWREPORT_INSTANCE=current_app.instance_path, CREWREPORT_KEY_WARNING_SHOWN="true")
    from . import serving  # gevent and gunicorn: only for this command

    argv = serving.gunicorn_argv(host, port, workers)
    os.execve(sys.executable, argv, env)  # noqa: S606 - becomes gunicorn: fixed argv, no shell, no request text


@click.command("send-test-report")
@click.option("--url", type=TEXT, default="http://127.0.0.1:5000", show_default=True)
@click.option("--username", type=TEXT, default="demo-crew", show_default=True,
              help="A crew user to enroll a throwaway test device for.")
@click.option("--password", type=TEXT, required=True, prompt=True, hide_input=True)
@click.option("--narrative", type=TEXT, default="Test report: please ignore.", show_default=True)
def send_test_report_command(url: str, username: str, password: str, narrative: str) -> None:
    """Enroll a test device over HTTP and send one report built in Python,
    sealed as envelope version 2 (X-Wing) when the server publishes v2 keys."""
    from .client import Client

    client = Client(url)
    client.sign_in(username, password)
    client.enroll("send-test-report")
    sta = stamp(datetime.now(UTC) + timedelta(hours=2))
    env = client.envelope(
        {"flight": f"{client.airline}1", "dep": "CDG", "arr": "LHR", "sta": sta, "urgency": "routine"},
        {"observed_at": now(), "indicators": [], "people": [], "narrative": narrative,
         "captain_informed": False, "reporter": {"crew_id": "TEST"}})
    status, body = client.post_report(env)
    if status not in (200, 201):
        raise click.ClickException(f"{status}: {json.dumps(body)}")
    receipt = client.verify_receipt(body)
    version = json.loads(envelope.b64u_decode(env["protected"]))["v"]
    click.echo(f"Delivered {receipt['id']} (envelope version {version}): reference {receipt['reference']}"
               f" at {receipt['received_at']}.")


def init_app(app: Flask) -> None:
    from . import backup, lifecycle

    for command in (*backup.commands(), create_airline_command, lifecycle.create_user_command,
                    lifecycle.deactivate_user_command,
                    lifecycle.reactivate_user_command, demo_command, reset_second_factor_command,
                    revoke_device_command, serve_command, send_test_report_command, audit.verify_audit_command,
                    retention.purge_command):
        app.cli.add_command(command)
