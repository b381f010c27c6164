-- Sessions held by the server, so that signing out ends a session for good
-- (a signed cookie alone stays valid until it expires, even after sign-out).
-- The cookie carries a random token; only its SHA-256 is stored here.
CREATE TABLE user_session (
    token_sha256  TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX user_session_user ON user_session (user_id);
CREATE INDEX user_session_expires ON user_session (expires_at);

-- user.session_version (migration 1) is superseded by this table and no
-- longer read; it stays, since migrations never drop what a store holds.
