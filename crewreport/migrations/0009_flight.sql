-- crewreport schema: one arriving flight is one row.
--
-- Crew on different tablets give one flight's arrival minutes apart (from the
-- moving map, an announcement, their own clock), so a report's own `sta`
-- cannot name its flight. The intake puts each report on a flight: the one of
-- the same airline and number landing at the same airport within
-- flights.SAME_FLIGHT of the report's arrival, or a new one. Each report keeps the `sta` its tablet signed.
--
-- A flight's `sta` is its freshest estimate: that of the report made last,
-- not of the one received last, which may have waited in an offline tablet's
-- outbox since take-off or come from a tablet whose clock is slow.
-- `estimated`: when that report was made, as far as the server can bound it
-- (its `created`, never after its receipt; '' for a tablet whose clock is
-- proven fast, flights.estimated); a report made no earlier gives the flight
-- its `sta` (flights.place).
--
-- Reports stored before this migration are put on flights the way the
-- intake puts new ones: those of one airline, number and airport whose
-- arrivals follow each other within three hours (flights.SAME_FLIGHT) are one
-- flight, at the arrival of the report made last, so a flight in the air
-- during the upgrade, whose crews gave its arrival minutes apart, is one
-- element on the board. A flight's id is never given again (AUTOINCREMENT),
-- even once retention has deleted it: a bookmark or an audit event names one flight.
CREATE TABLE flight (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    airline    TEXT NOT NULL,
    flight     TEXT NOT NULL,
    arr        TEXT NOT NULL,
    sta        TEXT NOT NULL,
    estimated  TEXT NOT NULL
);
-- The intake finds a report's flight by this index.
CREATE INDEX flight_arrival ON flight (airline, flight, arr, sta);
-- Each stored report's flight, numbered 1, 2, ...: a new one wherever the
-- arrival is more than three hours after the previous report's of that
-- airline, number and airport.
CREATE TEMP TABLE report_flight_found (id TEXT PRIMARY KEY, flight_no INTEGER NOT NULL, made TEXT NOT NULL);
INSERT INTO report_flight_found (id, flight_no, made)
    SELECT id, sum(first) OVER (ORDER BY airline, flight, arr, sta, id), made FROM (
        SELECT id, airline, flight, arr, sta,
            CASE WHEN CAST(strftime('%s', created) AS INTEGER) - CAST(strftime('%s', received_at) AS INTEGER) > 60
                 THEN '' ELSE min(created, received_at) END AS made,
            coalesce(CAST(strftime('%s', sta) AS INTEGER)
                     - CAST(strftime('%s', lag(sta) OVER (PARTITION BY airline, flight, arr ORDER BY sta, id))
                            AS INTEGER) > 10800, 1) AS first
        FROM report);
INSERT INTO flight (id, airline, flight, arr, sta, estimated)
    SELECT flight_no, airline, flight, arr, sta, made FROM (
        SELECT x.flight_no, r.airline, r.flight, r.arr, r.sta, x.made, row_number() OVER (
            PARTITION BY x.flight_no ORDER BY x.made DESC, r.received_at DESC, r.rowid DESC) AS nth
        FROM report_flight_found x JOIN report r ON r.id = x.id)
    WHERE nth = 1 ORDER BY flight_no;

ALTER TABLE report ADD COLUMN flight_id INTEGER REFERENCES flight (id);
UPDATE report SET flight_id = (SELECT flight_no FROM report_flight_found x WHERE x.id = report.id);
DROP TABLE report_flight_found;

-- The board groups reports by flight and ranks each flight by what this
-- index also carries, so the grouping never reads the wide rows (it replaces
-- 0006's index keyed by airline, flight number and sta).
DROP INDEX report_flight;
CREATE INDEX report_flight ON report (flight_id, received_at, status, urgency_rank, child, arr);
