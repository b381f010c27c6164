-- crewreport schema: when an account was switched off, and by whom.
--
-- user.active was read at sign-in and for every session, but nothing set it.
-- Airline security (their crew), administrators (staff) and the
-- deactivate-user command now do (crewreport.lifecycle); the pages show when
-- and by whom, as they do for a revoked tablet. Reactivating clears both.
ALTER TABLE user ADD COLUMN deactivated_at TEXT;
ALTER TABLE user ADD COLUMN deactivated_by INTEGER REFERENCES user (id);
