-- crewreport schema: the flight board and what a tablet may learn.
--
-- `child`: the report involves a child (a `children` indicator, a person in a
-- child's age range, or the body's `child_involved`), derived at intake from
-- the opened body and kept with the cleartext header columns. Reports stored
-- before this column existed cannot be told apart without decrypting them, so
-- they keep 0 here; the NRM sheet, which opens the body, still says "child".
ALTER TABLE report ADD COLUMN child INTEGER NOT NULL DEFAULT 0 CHECK (child IN (0, 1));

-- `first_opened_at`: when a Border Force officer first opened the report (its
-- page or its NRM sheet), for the tablet's coarse "seen" state. Backfilled
-- from the audit trail, which records every opening; the review surface's
-- openings (airline security) do not count.
ALTER TABLE report ADD COLUMN first_opened_at TEXT;
UPDATE report SET first_opened_at = (
    SELECT min(e.at) FROM audit_event e
    WHERE e.subject = 'report:' || report.id
      AND ((e.action = 'report_opened' AND json_extract(e.detail, '$.surface') IS NULL)
           OR (e.action = 'report_exported' AND json_extract(e.detail, '$.format') = 'nrm_sheet')));

-- The board groups reports by arriving flight (airline, flight, sta) and
-- ranks each flight by what this index also carries, so the grouping reads
-- the index alone, never the wide rows; the reports of the flights on a page
-- are then found by its first three columns.
CREATE INDEX report_flight ON report (airline, flight, sta, received_at, status, urgency_rank, child, arr);
-- A tablet asks about its own reports only.
CREATE INDEX report_device ON report (device_id);
