"""Generated malformed envelopes (DESIGN.md section 8): random JSON, broken
base64, mutated headers and bodies (re-signed by the enrolled test device, so
they reach the later checks), huge numbers, deep nesting, wrong types; each
for envelope version 1 (P-256) and version 2 (X-Wing), with version 2's own
traps (truncated encapsulations, the v1 label, keys of the other suite).
Every one must get a 4xx with a known error code, never a 5xx, and nothing
stored.

Deterministic: one seeded `random.Random`, no extra dependencies.
"""
from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import envelope
from crewreport.intake import STATUS
from crewreport.times import stamp

from .helpers import DEVICE_ID, KeySet, valid_body

SEED = 20260501
KNOWN = set(STATUS)
Case = tuple[str, Any]  # (description, request JSON or raw bytes)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def base_header(keyset: KeySet, version: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"v": version, "id": str(uuid.uuid4()), "device": DEVICE_ID, "created": stamp(now),
            "rcpt": [keyset.kid(k) for k in keyset.recipients(version)], "airline": "ZZ",
            "flight": "ZZ101", "dep": "LOS", "arr": "LHR", "sta": stamp(now + timedelta(hours=3)),
            "urgency": "priority"}


def seal_and_sign(keyset: KeySet, header_bytes: bytes, plaintext: bytes, n_sealed: int = 2,
                  version: int = 1, label: int | None = None) -> dict[str, Any]:
    """An envelope from raw header and body bytes, validly sealed (to the keys
    of `version`, under the info label of `label`, by default the same) and
    signed by the test device: whatever is wrong with it is in those bytes,
    not in the crypto."""
    info = envelope.hpke_info(header_bytes, label or version)
    protected = b64u(header_bytes)
    recipients = keyset.recipients(version)[:n_sealed]
    sealed = [b64u(envelope.seal(plaintext, k.public_key(), info)) for k in recipients]
    sig = envelope.sign_raw(keyset.device, envelope.signing_input(protected, sealed))
    return {"protected": protected, "sealed": sealed, "signature": b64u(sig)}


def header_bytes(header: Any) -> bytes:
    # ensure_ascii keeps lone surrogates as \\udXXX escapes, as a hostile client could send them.
    return json.dumps(header, separators=(",", ":")).encode("ascii")


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["null", "bool", "int", "float", "str"] + (["list", "dict"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, 1, -1, 2, 2**53 + 1, -(2**63), 10**30, rng.randint(-1000, 1000)])
    if kind == "float":
        return rng.choice([0.5, -1.5, 1e308, -1e-308, 1.0])
    if kind == "str":
        return rng.choice(["", "a", "protected", "sealed", "signature", "AAAA", "e30", "é", "\ud800",
                           "x" * rng.randint(0, 300), "\u0000", "../../etc/passwd"])
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["protected", "sealed", "signature", "v", "rcpt", "envelopes", "x", ""]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def garble(rng: random.Random, text: str) -> str:
    """Base64url that is no longer strictly base64url, or no longer the same text."""
    while (changed := _garble_once(rng, text)) == text:
        pass
    return changed


def _garble_once(rng: random.Random, text: str) -> str:
    choice = rng.randrange(7)
    if choice == 0:
        return text[: rng.randrange(len(text))] + rng.choice("=+/ !\n\té")
    if choice == 1:
        return text + "="
    if choice == 2:
        return text[:-1] if len(text) % 4 != 2 else text[:-2] + "A"  # wrong length or changed bits
    if choice == 3:
        return text.replace(text[0], "+", 1)
    if choice == 4:
        return text + "A"  # length 4n+1 is never valid, or a changed value
    if choice == 5:
        return ""
    pos = rng.randrange(len(text))
    return text[:pos] + rng.choice("ABCDEFabcdef0123456789-_") + text[pos + 1:]


def outer_cases(rng: random.Random, good: dict[str, Any]) -> Iterator[Case]:
    for i in range(60):
        yield f"random json {i}", random_json(rng)
    for field in ("protected", "sealed", "signature"):
        yield f"drop {field}", {k: v for k, v in good.items() if k != field}
        value: Any
        for value in (None, 1, 1.5, True, "x", [], {}, ["AAAA"], [[]], [None], 10**30, "=" * 8):
            if value == good[field]:
                continue
            yield f"{field}={value!r:.20}", {**good, field: value}
    yield "extra field", {**good, "extra": 1}
    for i in range(40):
        field = rng.choice(["protected", "signature", "sealed0", "sealed1"])
        env = json.loads(json.dumps(good))
        if field.startswith("sealed"):
            idx = int(field[-1])
            env["sealed"][idx] = garble(rng, env["sealed"][idx])
        else:
            env[field] = garble(rng, env[field])
        yield f"garbled {field} {i}", env
    yield "sealed count differs", {**good, "sealed": good["sealed"][:1]}
    yield "sealed extra", {**good, "sealed": good["sealed"] + good["sealed"][:1]}
    yield "deep request", b"[" * 50000 + b"]" * 50000
    yield "deep request object", b'{"protected":' * 30000 + b"1" + b"}" * 30000
    yield "huge int request", b'{"protected": ' + b"9" * 5000 + b', "sealed": [], "signature": ""}'
    yield "nan", b'{"protected": NaN, "sealed": [Infinity], "signature": -Infinity}'
    broken = {**good, "signature": good["signature"][:-4]}
    yield "utf-16", json.dumps(broken).encode("utf-16")
    yield "bad utf-8", b'{"protected": "\xff\xfe", "sealed": [], "signature": ""}'
    yield "bom", b"\xef\xbb\xbf" + json.dumps(broken).encode()
    yield "duplicate keys", b'{"protected": "e30", "protected": 5, "sealed": ["AA"], "signature": "AA"}'


WRONG_TYPES: list[Any] = [None, True, 0, 1.5, "x", [], {}, ["x"], 10**40, -1]


def header_cases(rng: random.Random, keyset: KeySet, version: int) -> Iterator[Case]:
    body = json.dumps(valid_body()).encode()
    for name in list(base_header(keyset, version)):
        h = base_header(keyset, version)
        del h[name]
        yield f"header lacks {name}", seal_and_sign(keyset, header_bytes(h), body, version=version)
        for value in WRONG_TYPES:
            h = base_header(keyset, version)
            if value == h[name] or (name == "rcpt" and isinstance(value, list) and value == []):
                pass
            h[name] = value
            yield f"header {name}={value!r:.20}", seal_and_sign(keyset, header_bytes(h), body, version=version)
    for value in (0, 1, 2, 3, -1, 10**400, 1.0, 2.0, 1.5, "1", "2", True, [1], {"v": 1}):
        if type(value) is int and value == version:
            continue  # the valid one
        h = base_header(keyset, version)
        h["v"] = value
        yield f"v={value!r:.20}", seal_and_sign(keyset, header_bytes(h), body, version=version)
    strings = ["", " ", "\ud800", "\udfff\ud800", "\u0000", "é" * 50, "x" * 20000, "ZZ101\n",
               "' OR 1=1 --", "%s%s", "{}", "2026-02-30T25:61:61Z", "0000-00-00T00:00:00Z",
               "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"]
    for name in ("id", "device", "created", "airline", "flight", "dep", "arr", "sta", "urgency"):
        for value in rng.sample(strings, 6):
            h = base_header(keyset, version)
            h[name] = value
            yield f"header {name}={value!r:.20}", seal_and_sign(keyset, header_bytes(h), body, version=version)
    for rcpt in ([], ["x", "x"], ["x"], [1, 2], ["\ud800", "y"], [keyset.kid(keyset.recipients(version)[1])] * 2):
        h = base_header(keyset, version)
        h["rcpt"] = rcpt
        yield f"rcpt={rcpt!r:.30}", seal_and_sign(keyset, header_bytes(h), body, n_sealed=max(1, min(2, len(rcpt))),
                                                  version=version)
    h = base_header(keyset, version)
    h["extra"] = "field"
    yield "header extra field", seal_and_sign(keyset, header_bytes(h), body, version=version)
    for raw in (b"[" * 100000 + b"]" * 100000, b'{"v":' * 5000 + b"1" + b"}" * 5000, b"\xff\xfe",
                b"[1,2]", b'"text"', b"null", b"1e999", b'{"v": 1e999}', b'{"v": ' + b"1" * 5000 + b"}",
                b"{", b"", b'{"v":1}' + b" " * 10, b'{"v":NaN}', b'{"v":1,"v":2}'):
        yield f"header bytes {raw[:12]!r}", seal_and_sign(keyset, raw, body, version=version)


def body_cases(rng: random.Random, keyset: KeySet, version: int) -> Iterator[Case]:
    def signed(body: Any, raw: bytes | None = None) -> dict[str, Any]:
        plaintext = raw if raw is not None else json.dumps(body).encode()
        return seal_and_sign(keyset, header_bytes(base_header(keyset, version)), plaintext, version=version)

    for name in ("observed_at", "indicators", "people", "narrative", "captain_informed", "reporter"):
        body = valid_body()
        del body[name]
        yield f"body lacks {name}", signed(body)
        for value in WRONG_TYPES:
            if (name, value) in (("indicators", []), ("people", []), ("narrative", "x"), ("captain_informed", True)):
                continue  # valid values, not mutations
            yield f"body {name}={value!r:.20}", signed(valid_body(**{name: value}))
    for when in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00Z",
                 "2026-13-01T00:00:00Z", "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00.1234567Z"):
        yield f"observed_at={when}", signed(valid_body(observed_at=when))
    for person in ({"role": None}, {"role": ["possible_victim"]}, {"role": {"x": 1}},
                   {"role": "other", "sex": ["female"]}, {"role": "other", "age_range": 12},
                   {"role": "other", "seat": 32}, [1], "person", None):
        yield f"person {person!r:.30}", signed(valid_body(people=[person]))
    for indicators in ([{"code": "x"}], [["docs_held_by_other"]], [None], [1.5], ["\ud800"]):
        yield f"indicators {indicators!r:.30}", signed(valid_body(indicators=indicators))
    yield "deep body", signed(None, b"[" * 100000 + b"]" * 100000)
    deep = b"[" * 50000 + b"]" * 50000
    yield "deep narrative", signed(None, json.dumps(valid_body()).encode()[:-1] + b',"x":' + deep + b"}")
    yield "body not json", signed(None, b"not json")
    yield "body bad utf-8", signed(None, b'{"narrative": "\xff"}')
    yield "body huge int", signed(None, b'{"observed_at": ' + b"9" * 5000 + b"}")
    yield "body array", signed([valid_body()])
    yield "body extra field", signed(valid_body(passenger_name="A Person"))
    for i in range(20):
        body = valid_body()
        body[rng.choice(sorted(body))] = random_json(rng)
        body["narrative"] = ""  # whatever else happened, this alone makes it invalid
        yield f"random body {i}", signed(body)


def crypto_cases(rng: random.Random, keyset: KeySet, version: int) -> Iterator[Case]:
    hb = header_bytes(base_header(keyset, version))
    good = seal_and_sign(keyset, hb, json.dumps(valid_body()).encode(), version=version)
    # Version 2's encapsulation is 1120 bytes: garbage around that length too.
    sizes = [0, 1, 16, 64, 65, 81, 200] + ([1088, 1119, 1120, 1136, 1137, 1400] if version == 2 else [])
    for _i in range(12):
        env = json.loads(json.dumps(good))
        size = rng.choice(sizes)
        env["sealed"][0] = b64u(rng.randbytes(size))
        env["signature"] = b64u(envelope.sign_raw(keyset.device, envelope.signing_input(env["protected"],
                                                                                        env["sealed"])))
        yield f"sealed garbage {size}", env
    for length in (0, 1, 63, 65, 72, 128):
        yield f"signature {length} bytes", {**good, "signature": b64u(rng.randbytes(length))}
    yield "signature all zero", {**good, "signature": b64u(b"\0" * 64)}
    yield "signature of n", {**good, "signature": b64u(bytes.fromhex(
        "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551") * 2)}
    other = seal_and_sign(keyset, header_bytes(base_header(keyset, version)), b"{}", version=version)
    moved_input = envelope.signing_input(good["protected"], other["sealed"])
    yield "sealed moved under another header", {**good, "sealed": other["sealed"],
                                                "signature": b64u(envelope.sign_raw(keyset.device, moved_input))}
    # The other version's label, or the other suite's keys, under this header.
    body = json.dumps(valid_body()).encode()
    yield "sealed under the other version's label", seal_and_sign(keyset, hb, body, version=version, label=3 - version)
    yield "sealed to the other suite's keys", seal_and_sign(keyset, hb, body, version=3 - version)
    yield "sealed to the other suite's keys, its label", seal_and_sign(keyset, hb, body, version=3 - version,
                                                                       label=3 - version)
    for length in ((1, 32, 1100, 1119, 1120, 1135) if version == 2 else (1, 32, 64, 65, 80)):
        env = json.loads(json.dumps(good))
        env["sealed"][0] = b64u(envelope.b64u_decode(env["sealed"][0])[:length])
        env["signature"] = b64u(envelope.sign_raw(keyset.device, envelope.signing_input(env["protected"],
                                                                                        env["sealed"])))
        yield f"sealed truncated to {length} bytes", env


def all_cases(keyset: KeySet, good: dict[str, Any], version: int) -> list[Case]:
    rng = random.Random(SEED)
    return [*outer_cases(rng, good), *header_cases(rng, keyset, version), *body_cases(rng, keyset, version),
            *crypto_cases(rng, keyset, version)]


@pytest.fixture
def fuzz_app(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The test app, tuned for hundreds of requests: no rate limit, and no fsync
    per commit (durability is not what this file tests; it would cost seconds)."""
    from crewreport import db

    connect = db.connect

    def fast_connect(path: str) -> Any:
        conn = connect(path)
        conn.execute("PRAGMA synchronous = OFF")
        return conn

    monkeypatch.setattr(db, "connect", fast_connect)
    app.config["RATELIMIT_ENABLED"] = False
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash is a 500 to count, not a test error
    return app


def post(client: FlaskClient, payload: Any, path: str = "/api/v1/reports") -> Any:
    if isinstance(payload, bytes):
        return client.post(path, data=payload, content_type="application/json")
    return client.post(path, json=payload)


def check(description: str, resp: Any) -> str | None:
    if not 400 <= resp.status_code < 500:
        return f"{description}: status {resp.status_code}"
    body = resp.get_json(silent=True)
    if not isinstance(body, dict) or body.get("error", {}).get("code") not in KNOWN:
        return f"{description}: body {resp.get_data()[:200]!r}"
    if not body["error"].get("message"):
        return f"{description}: no message"
    if STATUS[body["error"]["code"]] != resp.status_code:
        return f"{description}: {body['error']['code']} with status {resp.status_code}"
    return None


def stored(app: Flask) -> int:
    from crewreport.db import connect
    conn = connect(app.config["DATABASE"])
    try:
        return int(conn.execute("SELECT count(*) FROM report").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("version", [1, 2])
def test_fuzz_single(fuzz_app: Flask, keyset: KeySet, make_envelope: Callable[..., dict[str, Any]],
                     version: int) -> None:
    cases = all_cases(keyset, make_envelope(v=version), version)
    assert len(cases) >= 300
    client = fuzz_app.test_client()
    problems, codes = [], set()
    for description, payload in cases:
        resp = post(client, payload)
        if problem := check(description, resp):
            problems.append(problem)
        else:
            codes.add(resp.get_json()["error"]["code"])
    assert not problems, f"{len(problems)} of {len(cases)}:\n" + "\n".join(problems[:40])
    assert stored(fuzz_app) == 0
    # The cases reach every check, up to opening the sealed copies and the schema.
    assert {"malformed", "unsupported_version", "bad_signature", "unknown_recipient", "undecryptable",
            "invalid_report"} <= codes


@pytest.mark.parametrize("version", [1, 2])
def test_fuzz_batch(fuzz_app: Flask, keyset: KeySet, make_envelope: Callable[..., dict[str, Any]],
                    version: int) -> None:
    cases = [(d, p) for d, p in all_cases(keyset, make_envelope(v=version), version) if not isinstance(p, bytes)]
    client = fuzz_app.test_client()
    problems = []
    for start in range(0, len(cases), 100):
        chunk = cases[start:start + 100]
        resp = client.post("/api/v1/reports/batch", json={"envelopes": [p for _, p in chunk]})
        assert resp.status_code == 200
        results = resp.get_json()["results"]
        assert len(results) == len(chunk)
        for (description, _), result in zip(chunk, results, strict=False):
            code = result.get("error", {}).get("code") if isinstance(result, dict) else None
            if code not in KNOWN or not result["error"].get("message"):
                problems.append(f"{description}: {json.dumps(result)[:200]}")
    assert not problems, "\n".join(problems[:40])
    assert stored(fuzz_app) == 0


@pytest.mark.parametrize("payload", [
    b"[" * 50000, b'{"envelopes": ' + b"[" * 50000 + b"]" * 50000 + b"}",
    b'{"envelopes": [' + b",".join([b"{}"] * 101) + b"]}", b'{"envelopes": null}',
])
def test_fuzz_batch_wrappers(fuzz_app: Flask, payload: bytes) -> None:
    resp = post(fuzz_app.test_client(), payload, "/api/v1/reports/batch")
    assert check("batch wrapper", resp) is None, resp.get_data()[:200]
