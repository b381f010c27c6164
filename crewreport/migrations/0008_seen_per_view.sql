-- crewreport schema: "new since your last look" is kept per view of the board.
--
-- A look at one airport's flights (or one status, one urgency...) says
-- nothing about the reports it did not show: each filtered view has its own
-- mark, and the whole board (view '') keeps the mark it had.
CREATE TABLE officer_seen_per_view (
    user_id        INTEGER NOT NULL REFERENCES user (id),
    view           TEXT NOT NULL,
    queue_seen_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, view)
);
INSERT INTO officer_seen_per_view (user_id, view, queue_seen_at)
    SELECT user_id, '', queue_seen_at FROM officer_seen;
DROP TABLE officer_seen;
ALTER TABLE officer_seen_per_view RENAME TO officer_seen;
