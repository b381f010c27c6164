"""The JSON API (DESIGN.md section 4): published keys, device enrollment,
and the intake. The intake views are CSRF-exempt: the envelope's signature
by an enrolled device is the credential, and no cookie is read.
"""
from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from datetime import timedelta
from importlib import resources
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import audit, csrf, intake, keys, ratelimit, report_status
from .auth import role_required, session_alive
from .db import get_db, transaction
from .envelope import (
    EnvelopeError,
    TwiceNamed,
    jwk_from_public_key,
    loads_per_item,
    public_key_from_jwk,
    thumbprint,
    unique_keys,
)
from .safe_methods import looked
from .times import now
from .unavailable import SIDE_WRITE_WAIT

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)


def api_error(code: str, message: str, status: int) -> Any:
    return jsonify(error={"code": code, "message": message}), status


def exception_headers(exc: HTTPException) -> list[tuple[str, str]]:
    """The headers Werkzeug gives the error (`Allow` on a 405, `Retry-After`,
    `WWW-Authenticate`), which an answer in the app's own body must keep;
    only its Content-Type is the body's own."""
    return [(name, value) for name, value in exc.get_headers() if name.lower() != "content-type"]


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Any:
    """Framework errors on API routes still answer in the API's error shape."""
    if isinstance(exc, RequestEntityTooLarge):
        code, message = "too_large", "The request is too large."
    elif isinstance(exc, CSRFError):  # the token, or over HTTPS the Referer
        code, message = "csrf_failed", "The CSRF token is missing or stale; reload and try again."
    else:
        code = {400: "malformed", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 503: "service_unavailable"}.get(exc.code or 500, "error")
        message = exc.description or exc.name
    body, status = api_error(code, message, exc.code or 500)
    return body, status, exception_headers(exc)


def read_json(*, per_item: bool = False) -> Any:
    """The request body as JSON, or None when it is not UTF-8 JSON at all (or
    names a key twice: which copy counts would be the parser's guess). `per_item`
    (a batch) keeps an object naming a key twice, or a number too long to
    read, inside the body for the item holding it to be refused on its own
    (envelope.loads_per_item)."""
    if not request.is_json:
        return None
    data = request.get_data()
    limit = request.max_content_length
    if limit is not None and request.content_length is None and len(data) >= limit:
        # A body without Content-Length (chunked) is cut at the limit as it is
        # read; one that reaches the limit is too large, not malformed JSON.
        raise RequestEntityTooLarge()
    try:
        # Strictly UTF-8 (docs/api.md), no BOM: json.loads on bytes would
        # guess UTF-16 or skip a BOM, where another reader may not.
        text = data.decode("utf-8")
        if text.startswith("\ufeff"):
            return None
        if per_item:
            return loads_per_item(text)
        return json.loads(text, object_pairs_hook=unique_keys)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def keyring_or_503() -> keys.Keyring | Any:
    try:
        return keys.keyring()
    except keys.KeysUnavailable as exc:
        log.error("intake refused: %s", exc)
        return api_error("service_unavailable",
                         "The service's keys are not available; nothing was accepted. Try again later.", 503)


def _plain_text(value: Any, limit: int) -> bool:
    """One line of real text: JSON can carry lone surrogates (which the store
    cannot encode) and control characters (which the review pages would show)."""
    if not isinstance(value, str) or len(value) > limit:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value)


@bp.get("/openapi.json")
def openapi() -> Any:
    """The OpenAPI 3.1 description of this API (crewreport/openapi.json)."""
    document = resources.files(__package__).joinpath("openapi.json").read_bytes()
    return current_app.response_class(document, mimetype="application/json")


@bp.get("/keys")
def published_keys() -> Any:
    body = keys.published(get_db())
    if not body["recipients"] or body["receipt_key"] is None:
        log.error("GET /api/v1/keys: no current keys; run `flask --app crewreport demo` or rotate-key")
        return api_error("service_unavailable", "The service has no keys yet.", 503)
    return jsonify(body)


@bp.post("/devices")
@role_required("crew")
def enroll_device() -> Any:
    refused = ratelimit.first_refusal(("enroll_per_address", audit.client_address()),
                                      ("enroll_per_user", str(current_user.id_number)))
    if refused is not None:
        return refused
    data = read_json()
    if not isinstance(data, dict) or set(data) - {"public_key", "label"} or "public_key" not in data:
        return api_error("malformed", "Send {\"public_key\": JWK, \"label\": text}.", 400)
    label = data.get("label", "")
    if not _plain_text(label, 100):
        return api_error("malformed", "'label' must be text of at most 100 characters, on one line.", 400)
    try:
        key = public_key_from_jwk(data["public_key"])
    except ValueError as exc:
        return api_error("malformed", f"'public_key' is not a P-256 public key: {exc}", 400)
    ring = keyring_or_503()
    if not isinstance(ring, keys.Keyring):
        return ring
    jwk = jwk_from_public_key(key)
    kid = thumbprint(jwk)
    db = get_db()
    with transaction(db):
        # Again under the write lock: a deactivation, a password reset or a
        # revocation may have ended this session since the request began.
        if not session_alive(db):
            return api_error("unauthenticated", "You were signed out meanwhile; sign in again. "
                             "Nothing was set up.", 401)
        existing = db.execute("SELECT * FROM device WHERE kid = ?", (kid,)).fetchone()
        if existing is not None:
            if existing["user_id"] != current_user.id_number or existing["revoked_at"]:
                return api_error("conflict", "This key is already enrolled.", 409)
            device_id, status = existing["id"], 200
        else:
            device_id, status = f"dev-{secrets.token_hex(8)}", 201
            db.execute(
                "INSERT INTO device (id, user_id, airline, label, public_jwk, kid, enrolled_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (device_id, current_user.id_number, current_user.airline,
                 label.strip() or "Tablet", json.dumps(jwk), kid, now()))
            audit.record("device_enrolled", db=db, subject=f"device:{device_id}",
                         airline=current_user.airline)
    body = keys.published(db)
    return jsonify(device_id=device_id, airline=current_user.airline,
                   recipients=keys.recipients_for(db, current_user.airline),
                   receipt_key=body["receipt_key"]), status


@bp.get("/devices/<device_id>")
def device_state(device_id: str) -> Any:
    """Whether a tablet is still enrolled: it asks on start, so crew learn of a
    revocation before they write a note that would be refused. Only the
    state: the id is random and the answer names no one."""
    refused = ratelimit.first_refusal(("device_state_per_address", audit.client_address()),
                                      ("device_state_per_device", device_id[:64]))
    if refused is not None:
        return refused
    db = get_db()
    row = db.execute("SELECT revoked_at, last_seen_at FROM device WHERE id = ?", (device_id,)).fetchone()
    if row is None:
        return api_error("unknown_device", "This device is not enrolled.", 404)
    if not row["revoked_at"] and looked():  # the app's GET; a HEAD is no use of the tablet
        mark_used(db, device_id, row["last_seen_at"])
    return jsonify(device_id=device_id, state="revoked" if row["revoked_at"] else "active")


def mark_used(db: sqlite3.Connection, device_id: str, last_seen_at: str | None) -> None:
    """The tablet's last use, as its airline sees it (in months): when the
    crew app started and asked, which every enrolled tablet does, never when
    it delivered a note, which few do and which would name the reporters.
    Written at most once a day (the app asks every few minutes), and only if
    the store can take it: the answer (is this tablet revoked?) matters more,
    and is not held for the writers' whole wait (SIDE_WRITE_WAIT)."""
    stamp = now()
    if last_seen_at is None or last_seen_at[:10] < stamp[:10]:
        try:
            with transaction(db, wait=SIDE_WRITE_WAIT):
                db.execute("UPDATE device SET last_seen_at = ? WHERE id = ? AND revoked_at IS NULL"
                           " AND (last_seen_at IS NULL OR last_seen_at < ?)", (stamp, device_id, stamp[:10]))
        except sqlite3.Error as exc:
            log.warning("a tablet's use was not recorded: %s", type(exc).__name__)


def intake_limits() -> intake.Limits:
    return intake.Limits(max_bytes=current_app.config["MAX_ENVELOPE_BYTES"],
                         max_offline=timedelta(days=float(current_app.config["MAX_OFFLINE_DAYS"])))


def answer(outcomes: list[intake.Outcome], body: Any, status: int) -> Any:
    """The JSON answer, with Retry-After when any envelope was rate-limited."""
    response = jsonify(body)
    response.status_code = status
    waits = [o.retry_after for o in outcomes if o.retry_after]
    if waits:
        response.headers["Retry-After"] = str(max(waits))
    return response


@bp.post("/reports")
@csrf.exempt
def submit_report() -> Any:
    if (refused := ratelimit.first_refusal(("intake_per_address", audit.client_address()))) is not None:
        return refused
    limits = intake_limits()
    size = request.content_length
    if size is None:  # chunked: its length as read, cut at the request's limit
        size = len(request.get_data())
    try:
        intake.check_size(size, limits.max_bytes)  # before parsing: 400 KiB of junk is too_large
    except EnvelopeError as exc:
        log.info("intake rejected an unsigned envelope: %s", exc.code)
        return api_error(exc.code, exc.message, intake.STATUS[exc.code])
    env = read_json()
    if env is None:
        return api_error("malformed", "The request body must be one JSON envelope.", 400)
    ring = keyring_or_503()
    if not isinstance(ring, keys.Keyring):
        return ring
    outcomes = intake.accept(get_db(), ring, [(env, size)], limits)
    return answer(outcomes, outcomes[0].body, outcomes[0].status)


@bp.post("/reports/batch")
@csrf.exempt
def submit_batch() -> Any:
    data = read_json(per_item=True)
    shaped = (isinstance(data, dict) and not isinstance(data, TwiceNamed) and set(data) == {"envelopes"}
              and isinstance(data["envelopes"], list))
    envelopes: list[Any] = data["envelopes"] if shaped else []
    limit = current_app.config["MAX_BATCH"]
    # Each envelope counts against the address, before any crypto work; the
    # ones over the limit are answered `rate_limited` and the rest go ahead.
    decision = ratelimit.take("intake_per_address", audit.client_address(), max(1, min(len(envelopes), limit)))
    if decision.granted == 0:
        return ratelimit.refusal(decision)
    if not shaped:
        return api_error("malformed", "Send {\"envelopes\": [envelope, ...]}.", 400)
    if len(envelopes) > limit:
        return api_error("too_large", f"A batch may hold at most {limit} envelopes.", 413)
    ring = keyring_or_503()
    if not isinstance(ring, keys.Keyring):
        return ring
    checked = envelopes[:decision.granted]
    outcomes = intake.accept(get_db(), ring, [(env, None) for env in checked], intake_limits())
    outcomes += [intake.rate_limited(decision.retry_after) for _ in envelopes[decision.granted:]]
    return answer(outcomes, {"results": [o.body for o in outcomes]}, 200)


@bp.post("/reports/status")
@csrf.exempt
def report_states() -> Any:
    """The coarse state of the asking tablet's own reports (DESIGN 4a); the
    device signature is the credential, no cookie is read, nothing is stored."""
    if (refused := ratelimit.first_refusal(("status_per_address", audit.client_address()))) is not None:
        return refused
    data = read_json()
    if data is None:
        return api_error("malformed", "The request body must be one JSON object.", 400)
    outcome = report_status.answer(get_db(), data)
    return answer([outcome], outcome.body, outcome.status)
