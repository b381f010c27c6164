-- Repeated identical audit events (a device's refused envelopes), counted
-- per actor, action, code and minute. The first event of a minute is chained
-- in audit_event as usual; the repeats only raise `count` here, and once the
-- minute is over one chained summary row carries the total and this row goes.
CREATE TABLE audit_tally (
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    code        TEXT NOT NULL,
    minute      TEXT NOT NULL,   -- 2026-12-01T14:35
    count       INTEGER NOT NULL CHECK (count >= 1),
    first_hash  TEXT NOT NULL,   -- the chained row of the minute's first event
    PRIMARY KEY (actor, action, code, minute)
) WITHOUT ROWID;
CREATE INDEX audit_tally_minute ON audit_tally (minute);

-- The last audit event the admin page verified, so that a view walks only
-- the events after it. `full_verified_at`: when a check from the first event
-- (verify-audit, or a view without a checkpoint) last passed.
CREATE TABLE audit_checkpoint (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    event_id          INTEGER NOT NULL,
    hash              TEXT NOT NULL,
    count             INTEGER NOT NULL,
    verified_at       TEXT NOT NULL,
    full_verified_at  TEXT
);

-- intake_window (version 1) is no longer written: rate-limit counters are
-- kept out of the durable store (crewreport/ratelimit.py). It stays, since
-- migrations never drop what a store holds.
