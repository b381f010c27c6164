"""An account's life: made (`create-user`; the pages make crew accounts in
crewreport.review), then switched off and on again (`user.active`).

Someone who leaves (crew, or staff) is switched off, not deleted: their name
stays on what they did (audit events, revocations, a report's history). What
switching off does, and why:

- Every session of the account ends at once (its rows are deleted; a
  session's user is also read with `active = 1`), and it cannot sign in.
- Its tablets stay enrolled and keep delivering. A tablet's signature, not
  its crew member's session, sends a note, and a tablet may fly for days
  with notes queued that were written while the crew member still worked
  for the airline: refusing them would lose reports about people who may be
  victims. A tablet that should send nothing more (not handed back, maybe in
  someone else's hands) is revoked on its own, as before.
- An officer's report locks are let go, as when they sign out everywhere,
  and the reports assigned to them become unassigned: a report assigned to
  someone who cannot sign in looks taken on the board while no one works on
  it. Each is audited with who had it; reactivating gives neither back.
- Airline security switches back on only what airline security switched
  off: an account the service's operators switched off (the command: an
  investigation, an account taken over) stays off until they say so.
- The web never switches off the last active administrator (staff could
  then be managed only from the shell); the command may, since the shell is
  where an administrator is brought back from (a sole administrator's
  account that was taken over must be stoppable at once).
"""
from __future__ import annotations

import sqlite3

import click
from flask.cli import with_appcontext

from . import audit
from .auth import ROLES, create_user, end_sessions
from .cli_text import TEXT
from .db import get_db, init_db, transaction
from .times import now


class LastAdmin(Exception):
    """Switching this account off would leave no active administrator."""


class OperatorsOnly(Exception):
    """The service's operators switched this account off: not the airline's to switch on."""


def tablets(db: sqlite3.Connection, user_id: int) -> list[sqlite3.Row]:
    """The account's tablets that still deliver: what to revoke as well, if need be."""
    return db.execute("SELECT id, label, enrolled_at FROM device WHERE user_id = ? AND revoked_at IS NULL"
                      " ORDER BY enrolled_at", (user_id,)).fetchall()


def assigned(db: sqlite3.Connection, user_id: int) -> int:
    """How many reports are assigned to the account (an officer's)."""
    return int(db.execute("SELECT count(*) FROM report WHERE assignee_id = ?", (user_id,)).fetchone()[0])


def deactivate(db: sqlite3.Connection, user_id: int, by: int | None, *, keep_an_admin: bool = True) -> bool:
    """Switch the account off; False when it was off already (the other POST
    of a double click: no second event). Everything is checked again under
    the write lock, so two administrators switching each other off at once
    cannot leave none (`LastAdmin`)."""
    with transaction(db):
        user = db.execute("SELECT id, username, role FROM user WHERE id = ? AND active = 1", (user_id,)).fetchone()
        if user is None:
            return False
        if keep_an_admin and user["role"] == "admin" and not db.execute(
                "SELECT 1 FROM user WHERE role = 'admin' AND active = 1 AND id != ?", (user_id,)).fetchone():
            raise LastAdmin(user["username"])
        db.execute("UPDATE user SET active = 0, deactivated_at = ?, deactivated_by = ? WHERE id = ?",
                   (now(), by, user_id))
        audit.record("user_deactivated", subject=f"user:{user['username']}", db=db, role=user["role"])
        end_sessions(db, user_id, reason="deactivated")
        for (report_id,) in db.execute("SELECT id FROM report WHERE assignee_id = ?", (user_id,)).fetchall():
            db.execute("UPDATE report SET assignee_id = NULL WHERE id = ?", (report_id,))
            audit.record("report_assigned", subject=f"report:{report_id}", db=db, assignee=None,
                         reason="assignee_deactivated", was=user["username"])
    return True


def take_over(db: sqlite3.Connection, user_id: int) -> bool:
    """An account someone switched off becomes the operators' (switched off by
    no one: only `reactivate-user` switches it on); False when it is not off,
    or theirs already."""
    with transaction(db):
        user = db.execute("SELECT username, role FROM user WHERE id = ? AND active = 0"
                          " AND deactivated_by IS NOT NULL", (user_id,)).fetchone()
        if user is None:
            return False
        db.execute("UPDATE user SET deactivated_by = NULL WHERE id = ?", (user_id,))
        audit.record("user_deactivated", subject=f"user:{user['username']}", db=db, role=user["role"],
                     taken_over=True)
    return True


def reactivate(db: sqlite3.Connection, user_id: int, *, by_airline: bool = False) -> bool:
    """Switch the account on again (same password, same second factor);
    False when it was on already. `by_airline`: only if airline security
    switched it off (`OperatorsOnly` otherwise), checked under the write lock."""
    with transaction(db):
        user = db.execute("SELECT u.username, by_.role AS by_role FROM user u LEFT JOIN user by_"
                          " ON by_.id = u.deactivated_by WHERE u.id = ? AND u.active = 0", (user_id,)).fetchone()
        if user is None:
            return False
        if by_airline and user["by_role"] != "airline_security":
            raise OperatorsOnly(user["username"])
        db.execute("UPDATE user SET active = 1, deactivated_at = NULL, deactivated_by = NULL WHERE id = ?",
                   (user_id,))
        audit.record("user_reactivated", subject=f"user:{user['username']}", db=db)
    return True


def named(username: str) -> sqlite3.Row:
    row = get_db().execute("SELECT id, username, role FROM user WHERE username = ?", (username,)).fetchone()
    if row is None:
        raise click.ClickException(f"no user {username}")
    return row


@click.command("deactivate-user")
@click.argument("username", type=TEXT)
@with_appcontext
def deactivate_user_command(username: str) -> None:
    """Switch USERNAME off: signed out everywhere, no sign-in; their tablets still deliver."""
    db = get_db()
    user = named(username)
    if not deactivate(db, user["id"], None, keep_an_admin=False):
        if take_over(db, user["id"]):
            click.echo(f"{user['username']} was already deactivated by someone else; it is now the service"
                       " operators' to switch on again (`reactivate-user`).")
            return
        raise click.ClickException(f"{user['username']} is already deactivated")
    click.echo(f"Deactivated {user['username']}: signed out everywhere, and cannot sign in.")
    for d in tablets(db, user["id"]):
        click.echo(f"  tablet {d['id']} ({d['label']}) still delivers its notes; "
                   f"`flask revoke-device {d['id']}` if it should send nothing more.")
    if not db.execute("SELECT 1 FROM user WHERE role = 'admin' AND active = 1").fetchone():
        click.echo("Note: no active administrator is left; `reactivate-user` or `create-user --role admin`"
                   " brings one back.")


@click.command("reactivate-user")
@click.argument("username", type=TEXT)
@with_appcontext
def reactivate_user_command(username: str) -> None:
    """Switch USERNAME on again, with the password and second factor they had."""
    user = named(username)
    if not reactivate(get_db(), user["id"]):
        raise click.ClickException(f"{user['username']} is not deactivated")
    click.echo(f"Reactivated {user['username']}: they sign in with the password they had.")


@click.command("create-user")
@click.argument("username", type=TEXT)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--airline", type=TEXT, default=None, help="IATA code; required for crew and airline_security")
@click.option("--password", type=TEXT, prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--totp-secret", type=TEXT, default=None, metavar="BASE32",
              help="Staff only: a known TOTP secret (else the user enrols at first sign-in).")
@with_appcontext
def create_user_command(username: str, role: str, airline: str | None, password: str,
                        totp_secret: str | None) -> None:
    """Create a user."""
    init_db()
    try:
        create_user(username, role, password, airline.upper() if airline else None, totp_secret)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {role} {username}.")
