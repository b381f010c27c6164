-- crewreport schema, version 2: Border Force triage.
-- Status history and notes carry their free text sealed (HPKE) to the
-- Border Force key: `*_kid` names the key, `*_sealed` is b64u(enc || ct).
-- Nothing a person typed is stored in clear.

CREATE TABLE report_status_history (
    id             INTEGER PRIMARY KEY,
    report_id      TEXT NOT NULL REFERENCES report (id) ON DELETE CASCADE,
    at             TEXT NOT NULL,
    actor_id       INTEGER REFERENCES user (id),
    from_status    TEXT NOT NULL,
    to_status      TEXT NOT NULL,
    reason_kid     TEXT NOT NULL,
    reason_sealed  TEXT NOT NULL
);
CREATE INDEX report_status_history_report ON report_status_history (report_id, id);

CREATE TABLE report_note (
    id          INTEGER PRIMARY KEY,
    report_id   TEXT NOT NULL REFERENCES report (id) ON DELETE CASCADE,
    at          TEXT NOT NULL,
    author_id   INTEGER REFERENCES user (id),
    kid         TEXT NOT NULL,
    sealed      TEXT NOT NULL
);
CREATE INDEX report_note_report ON report_note (report_id, id);

-- When each officer last looked at the queue: what arrived since is "new".
CREATE TABLE officer_seen (
    user_id        INTEGER PRIMARY KEY REFERENCES user (id),
    queue_seen_at  TEXT NOT NULL
);

-- The queue sorts by (sta, urgency_rank, received_at) after filtering on
-- one column: each filter index carries the whole sort key, so a filtered
-- page is read in order from the index with no sort step.
DROP INDEX report_arr;
CREATE INDEX report_arr ON report (arr, sta, urgency_rank, received_at);
DROP INDEX report_status;
CREATE INDEX report_status ON report (status, sta, urgency_rank, received_at);
DROP INDEX report_assignee;
CREATE INDEX report_assignee ON report (assignee_id, sta, urgency_rank, received_at);
CREATE INDEX report_urgency ON report (urgency_rank, sta, received_at);
CREATE INDEX report_lock_user ON report (lock_user_id) WHERE lock_user_id IS NOT NULL;
