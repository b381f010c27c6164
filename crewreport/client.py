"""A small crew-side client over real HTTP, in Python: what the tablet does,
for `send-test-report`, the served-app tests and the benchmarks."""
from __future__ import annotations

import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from email.message import Message
from typing import Any

import pyotp
from cryptography.hazmat.primitives.asymmetric import ec

from . import envelope
from .times import now


def csrf_field(page: Any) -> str:
    """The CSRF token of the form on an HTML page."""
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', str(page))
    if not token:
        raise RuntimeError("no CSRF token on the page")
    return token.group(1)


def retry_after_seconds(value: str | None) -> int:
    """A Retry-After in seconds, within 1 to 60; 5 when absent or an HTTP date."""
    try:
        return min(60, max(1, int(value or "")))
    except ValueError:
        return 5


class Client:
    def __init__(self, base_url: str, timeout: float = 30) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"the service URL must be http:// or https://, not {base_url!r}")
        self.base = base_url.rstrip("/")
        self.timeout = timeout  # seconds for each request; a test may ask for less
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.device_key = ec.generate_private_key(ec.SECP256R1())
        self.device_id = ""
        self.airline = ""
        self.recipients: list[dict[str, Any]] = []
        self.receipt_key: dict[str, Any] = {}
        self.last_headers: Message = Message()  # of the last answer (names without case)

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None, form: dict[str, str] | None = None) -> tuple[int, Any]:
        data, hdrs = None, dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        req = urllib.request.Request(  # noqa: S310 - __init__ refuses every scheme but http(s)
            self.base + path, data=data, headers=hdrs, method=method)
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                status, raw, self.last_headers = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            status, raw, self.last_headers = exc.code, exc.read(), exc.headers
        ctype = self.last_headers.get("Content-Type", "")
        return status, (json.loads(raw) if "json" in ctype else raw.decode("utf-8", "replace"))

    def sign_in(self, username: str, password: str, totp_secret: str | None = None) -> None:
        """Password, then (staff) a code from `totp_secret`: this step's, else
        the next step's; when both were used already (a code is good once),
        the step after, once its time has come."""
        _, page = self.request("GET", "/auth/login")
        posted, page = self.request("POST", "/auth/login",
                                    form={"username": username, "password": password, "csrf_token": csrf_field(page)})
        for attempt in range(3):
            if totp_secret is None or 'id="totp-form"' not in str(page):
                break
            if attempt == 2:  # the server takes this step's code and the next's: wait for a fresh one
                time.sleep(30 - time.time() % 30 + 0.5)
            code = pyotp.TOTP(totp_secret).at(time.time() + 30 * min(attempt, 1))
            posted, page = self.request("POST", "/auth/login", form={"code": code, "csrf_token": csrf_field(page)})
        status, info = self.request("GET", "/auth/session")
        if status != 200 or not info.get("signed_in"):
            raise RuntimeError(f"sign-in as {username} failed: the last form posted answered {posted},"
                               f" /auth/session {status} {str(info)[:200]!r}")

    def enroll(self, label: str = "test tablet", tries: int = 5) -> None:
        """Enroll this client's device key; a refusal as too busy (429) is tried
        again after the wait the server names, as the crew app does."""
        _, info = self.request("GET", "/auth/session")
        public = envelope.jwk_from_public_key(self.device_key.public_key())
        for _ in range(tries):
            status, body = self.request("POST", "/api/v1/devices", {"public_key": public, "label": label},
                                        headers={"X-CSRFToken": info["csrf_token"]})
            if status != 429:
                break
            time.sleep(retry_after_seconds(self.last_headers.get("Retry-After")))
        if status not in (200, 201):
            raise RuntimeError(f"enrollment failed: {status} {body}")
        self.device_id, self.airline = body["device_id"], body["airline"]
        self.recipients, self.receipt_key = body["recipients"], body["receipt_key"]

    def sealing_keys(self, version: int | None = None) -> tuple[int, list[dict[str, Any]]]:
        """The envelope version and recipient keys to seal with, as the tablet
        chooses them: version 2 (X-Wing) keys, each owner falling back to its
        version 1 key only when it has no version 2 one; unless asked for a version."""
        by_suite: dict[str, dict[str, dict[str, Any]]] = {}
        for r in self.recipients:  # legacy answers carry no suite: they are v1
            by_suite.setdefault(r.get("suite", "v1"), {}).setdefault(r["owner"], r)
        owners = list(dict.fromkeys(r["owner"] for r in self.recipients))
        if version is None:
            version = 2 if all(o in by_suite.get("v2", {}) for o in owners) else 1
        chosen = by_suite.get(f"v{version}", {})
        return version, [chosen[o] for o in owners if o in chosen]

    def envelope(self, fields: dict[str, Any], body: dict[str, Any], report_id: str | None = None,
                 version: int | None = None) -> dict[str, Any]:
        version, recipients = self.sealing_keys(version)
        header = {"v": version, "id": report_id or str(uuid.uuid4()), "device": self.device_id,
                  "created": now(),
                  "rcpt": [r["kid"] for r in recipients], "airline": self.airline, **fields}
        keys = [envelope.recipient_key_from_jwk(r["jwk"]) for r in recipients]
        return envelope.build(header, body, keys, self.device_key)

    def post_report(self, env: dict[str, Any]) -> tuple[int, Any]:
        return self.request("POST", "/api/v1/reports", env)

    def post_batch(self, envs: list[dict[str, Any]]) -> tuple[int, Any]:
        return self.request("POST", "/api/v1/reports/batch", {"envelopes": envs})

    def report_states(self, ids: list[str], at: str | None = None) -> tuple[int, Any]:
        """Ask the coarse state of this device's reports (DESIGN 4a), signed
        by the device key; `at` defaults to now."""
        question = {"device": self.device_id, "ids": ids, "at": at or now()}
        protected = envelope.b64u_encode(json.dumps(question, separators=(",", ":")).encode("utf-8"))
        signature = envelope.b64u_encode(envelope.sign_raw(self.device_key, protected.encode("ascii")))
        return self.request("POST", "/api/v1/reports/status", {"protected": protected, "signature": signature})

    def verify_receipt(self, answer: dict[str, Any]) -> dict[str, Any]:
        return envelope.verify_receipt(answer, envelope.public_key_from_jwk(self.receipt_key["jwk"]))
