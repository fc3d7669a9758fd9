DROP INDEX callbacks_rejected_received;
-- Escaped rows stay escaped: the text cannot go back to what a NUL was.
UPDATE callbacks SET raw_query = replace(raw_query, '\\', '\')
WHERE instr(raw_query, '\\') > 0;
ALTER TABLE callbacks DROP COLUMN raw_truncated;
ALTER TABLE callbacks DROP COLUMN raw_sha256;
ALTER TABLE callbacks DROP COLUMN raw_length;
