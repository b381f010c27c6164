-- crewreport schema: a flight's arrival is its freshest estimate.
--
-- 0009 gave a flight the `sta` of its report received last. A report made
-- hours earlier may be received last: queued offline since take-off, or made
-- on a tablet whose clock is slow. Its older estimate put a flight still to
-- land under Landed or Arrived after landing. `estimated`: when the report
-- whose `sta` the flight carries was made, as far as the server can bound it
-- (its `created`, never after its receipt); a report made no earlier gives
-- the flight its `sta` (flights.place).
ALTER TABLE flight ADD COLUMN estimated TEXT NOT NULL DEFAULT '';
UPDATE flight SET (sta, estimated) = (
    SELECT r.sta, min(r.created, r.received_at) FROM report r WHERE r.flight_id = flight.id
    ORDER BY min(r.created, r.received_at) DESC, r.received_at DESC, r.rowid DESC LIMIT 1)
WHERE EXISTS (SELECT 1 FROM report r WHERE r.flight_id = flight.id);
