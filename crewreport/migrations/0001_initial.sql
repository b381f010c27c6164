-- crewreport schema, version 1.
-- Times are RFC 3339 UTC strings with a Z (they sort as text).

CREATE TABLE airline (
    code        TEXT PRIMARY KEY CHECK (code GLOB '[A-Z0-9][A-Z0-9]'),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at  TEXT NOT NULL
);

CREATE TABLE user (
    id               INTEGER PRIMARY KEY,
    username         TEXT NOT NULL UNIQUE COLLATE NOCASE
                     CHECK (length(username) BETWEEN 1 AND 64),
    password_hash    TEXT NOT NULL,
    role             TEXT NOT NULL
                     CHECK (role IN ('crew', 'airline_security', 'border_force', 'admin')),
    airline          TEXT REFERENCES airline (code),
    -- Bumped on password change or reset: every session carrying an older
    -- value is signed out.
    session_version  INTEGER NOT NULL DEFAULT 1,
    active           INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at       TEXT NOT NULL,
    CHECK ((role IN ('crew', 'airline_security')) = (airline IS NOT NULL))
);

-- Failed sign-ins, for throttling by account and by address.
CREATE TABLE login_failure (
    id          INTEGER PRIMARY KEY,
    username    TEXT NOT NULL COLLATE NOCASE,
    address     TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX login_failure_username ON login_failure (username, at);
CREATE INDEX login_failure_address ON login_failure (address, at);

-- Key pairs the service holds. Private halves are PEM files in the instance
-- folder (keys/<kid>.pem); this table says whose each key is and whether it
-- is still the one to encrypt to. Retired keys stay, to open old reports.
CREATE TABLE service_key (
    kid          TEXT PRIMARY KEY,
    owner        TEXT NOT NULL
                 CHECK (owner IN ('border_force', 'receipt') OR owner GLOB 'airline:[A-Z0-9][A-Z0-9]'),
    public_jwk   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    retired_at   TEXT
);
CREATE UNIQUE INDEX service_key_current ON service_key (owner) WHERE retired_at IS NULL;

CREATE TABLE device (
    id            TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES user (id),
    airline       TEXT NOT NULL REFERENCES airline (code),
    label         TEXT NOT NULL,
    public_jwk    TEXT NOT NULL,
    kid           TEXT NOT NULL UNIQUE,
    enrolled_at   TEXT NOT NULL,
    last_seen_at  TEXT,
    revoked_at    TEXT,
    revoked_by    INTEGER REFERENCES user (id)
);
CREATE INDEX device_airline ON device (airline);
CREATE INDEX device_user ON device (user_id);

-- One row per accepted envelope. `envelope` is the envelope exactly as
-- received (canonical JSON); the body inside it is sealed and never stored
-- in clear. The header columns are copies of its cleartext header for
-- routing, ordering and filtering.
CREATE TABLE report (
    id                TEXT PRIMARY KEY,
    reference         TEXT NOT NULL UNIQUE,
    device_id         TEXT NOT NULL REFERENCES device (id),
    airline           TEXT NOT NULL REFERENCES airline (code),
    flight            TEXT NOT NULL,
    dep               TEXT NOT NULL,
    arr               TEXT NOT NULL,
    sta               TEXT NOT NULL,
    urgency           TEXT NOT NULL CHECK (urgency IN ('routine', 'priority', 'immediate')),
    urgency_rank      INTEGER NOT NULL,  -- 0 immediate, 1 priority, 2 routine
    created           TEXT NOT NULL,
    rcpt              TEXT NOT NULL,     -- JSON list of kids, as in the header
    envelope          TEXT NOT NULL,
    envelope_sha256   TEXT NOT NULL,
    received_at       TEXT NOT NULL,
    receipt           TEXT NOT NULL,
    receipt_signature TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'received'
                      CHECK (status IN ('received', 'assessing', 'meet_aircraft',
                                        'no_further_action', 'referred')),
    status_changed_at TEXT NOT NULL,
    assignee_id       INTEGER REFERENCES user (id),
    lock_user_id      INTEGER REFERENCES user (id),
    lock_expires_at   TEXT,
    closed_at         TEXT
);
CREATE INDEX report_queue ON report (sta, urgency_rank, received_at);
CREATE INDEX report_arr ON report (arr, sta);
CREATE INDEX report_status ON report (status, sta);
CREATE INDEX report_airline ON report (airline, sta);
CREATE INDEX report_assignee ON report (assignee_id, sta);
CREATE INDEX report_received ON report (received_at);
CREATE INDEX report_closed ON report (closed_at) WHERE closed_at IS NOT NULL;

-- Intake requests per client address per minute, for `rate_limited`.
CREATE TABLE intake_window (
    client     TEXT NOT NULL,
    minute     TEXT NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (client, minute)
) WITHOUT ROWID;

-- Append-only, hash-chained: hash = SHA-256(prev_hash || canonical row).
CREATE TABLE audit_event (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT,
    action     TEXT NOT NULL,
    subject    TEXT,
    detail     TEXT NOT NULL DEFAULT '{}',
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_event_subject ON audit_event (subject, id);

CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END;

CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END;
