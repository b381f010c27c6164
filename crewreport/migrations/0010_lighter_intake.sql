-- crewreport schema: fewer index pages for each report the intake stores.
--
-- A receipt waits for its report's commit, and the commit writes every page
-- the report changed to the write-ahead log and syncs it: one 4 KiB page for
-- each index a new report is in. These four indexes cost every report a page
-- and served nothing that other indexes do not serve as well:
--
-- * report_received: no query reads it.
-- * report_urgency: the export's urgency filter reads urgency_rank from
--   report_queue (its second column, in the export's own order), the board's
--   from report_flight.
-- * report_arr: the board's airport filter reads arr from report_flight; the
--   export's from the index it walks in its own order, which now ends with
--   arr (report_queue, report_status, report_assignee), so a report of another
--   airport is skipped in the index, as one of another urgency already is,
--   never by reading its row; the export orders by arr before rowid
--   (triage.queue.QUEUE_ORDER), which only orders reports of one sta, urgency
--   and second of receipt. The airports offered as a filter are those of the
--   flights (flight_arr, which a report only changes when it is the first of
--   its flight).
-- * report_assignee: a new report has no assignee, so the index now holds only
--   the reports that have one ("Mine" asks for those alone).
DROP INDEX report_received;
DROP INDEX report_urgency;
DROP INDEX report_arr;
CREATE INDEX flight_arr ON flight (arr);
DROP INDEX report_queue;
CREATE INDEX report_queue ON report (sta, urgency_rank, received_at, arr);
DROP INDEX report_status;
CREATE INDEX report_status ON report (status, sta, urgency_rank, received_at, arr);
DROP INDEX report_assignee;
CREATE INDEX report_assignee ON report (assignee_id, sta, urgency_rank, received_at, arr) WHERE assignee_id IS NOT NULL;
