-- crewreport schema: a tablet's last use no longer says whether it sent a note.
--
-- device.last_seen_at was written when a tablet delivered a note, and airline
-- security sees it (in months) beside the crew member's name: notes are rare,
-- so the few tablets shown as used were the reporters, whatever they chose to
-- share. It is now written when the crew app starts and asks whether the
-- tablet is still enrolled (api.device_state), which every tablet does. The
-- times written by deliveries are forgotten; each tablet's next start sets it.
UPDATE device SET last_seen_at = NULL;
