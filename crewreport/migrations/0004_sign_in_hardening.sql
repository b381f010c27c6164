-- Sign-in under attack: throttling that keeps no typed name, device cookies,
-- and a second factor for staff.
--
-- login_failure held what was typed into the username box in clear, which is
-- sometimes a password. Those rows are only throttling state that expires
-- within minutes: they are dropped, not carried over (secure_delete is on, so
-- their pages are overwritten). The new table keeps a keyed hash (HMAC with
-- an instance secret) of the typed name, never the name; rows older than the
-- throttling window are purged as new ones are written.
DROP TABLE login_failure;
CREATE TABLE login_failure (
    id        INTEGER PRIMARY KEY,
    account   TEXT NOT NULL,           -- HMAC-SHA256 of the case-folded typed username, hex
    address   TEXT NOT NULL,           -- client address (an IPv6 address by its /64)
    device    TEXT,                    -- SHA-256 of the device-cookie nonce: a trusted browser
    step      TEXT NOT NULL DEFAULT 'password' CHECK (step IN ('password', 'code')),
    at        TEXT NOT NULL
);
CREATE INDEX login_failure_account ON login_failure (account, step, at);
CREATE INDEX login_failure_address ON login_failure (address, step, at);
CREATE INDEX login_failure_device ON login_failure (device, at) WHERE device IS NOT NULL;
CREATE INDEX login_failure_at ON login_failure (at);

-- The TOTP secret (RFC 6238) of a staff user, sealed with AES-256-GCM under a
-- key derived from the instance secret (the user id is the associated data),
-- so a copy of the store alone does not yield the secrets. `confirmed_at` is
-- NULL while an enrolment waits for its first code. `last_step` is the time
-- step of the last code accepted: a code is good once.
CREATE TABLE user_totp (
    user_id       INTEGER PRIMARY KEY REFERENCES user (id) ON DELETE CASCADE,
    sealed        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    confirmed_at  TEXT,
    last_step     INTEGER NOT NULL DEFAULT 0
);

-- One-time recovery codes, as keyed hashes (the codes are random, 80 bits).
CREATE TABLE recovery_code (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX recovery_code_user ON recovery_code (user_id);
