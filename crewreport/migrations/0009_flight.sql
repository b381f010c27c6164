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
-- (its `created`, never after its receipt); a report made no earlier gives
-- the flight its `sta` (flights.place).
--
-- Reports stored before this migration keep the grouping they had, the
-- arrival airport apart: one flight per airline, flight number, airport and
-- sta. A flight's id is never given again (AUTOINCREMENT), even once
-- retention has deleted it: a bookmark or an audit event names one flight.
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
INSERT INTO flight (airline, flight, arr, sta, estimated)
    SELECT airline, flight, arr, sta, max(min(created, received_at)) FROM report
    GROUP BY airline, flight, arr, sta ORDER BY sta, airline, flight, arr;

ALTER TABLE report ADD COLUMN flight_id INTEGER REFERENCES flight (id);
UPDATE report SET flight_id = (
    SELECT f.id FROM flight f
    WHERE f.airline = report.airline AND f.flight = report.flight AND f.arr = report.arr AND f.sta = report.sta);

-- The board groups reports by flight and ranks each flight by what this
-- index also carries, so the grouping never reads the wide rows (it replaces
-- 0006's index keyed by airline, flight number and sta).
DROP INDEX report_flight;
CREATE INDEX report_flight ON report (flight_id, received_at, status, urgency_rank, child, arr);
