-- The journal of an unauthenticated endpoint must stay bounded: anyone may
-- send it requests, of any size and as many as they like.
-- raw_length and raw_sha256 describe the bytes received whatever is kept of them;
-- rows stored before this migration have NULL there: their raw_query was
-- converted lossily, so no digest of what was received exists.
ALTER TABLE callbacks ADD COLUMN raw_length BIGINT;
ALTER TABLE callbacks ADD COLUMN raw_sha256 TEXT;
-- raw_query holds only the beginning of the request (rejected requests are cut
-- to PAYHOOK_REJECTED_MAX_BYTES).
ALTER TABLE callbacks ADD COLUMN raw_truncated BOOLEAN NOT NULL DEFAULT FALSE;

-- raw_query is escaped from now on (a backslash always starts an escape: \\ or
-- \xHH), so that a NUL or invalid UTF-8 can be stored losslessly. Earlier rows
-- get their backslashes doubled so that every row reads the same way.
UPDATE callbacks SET raw_query = replace(raw_query, '\', '\\')
WHERE instr(raw_query, '\') > 0;

-- The retention task deletes old rejected rows in batches; this index finds
-- them without reading the rest of the journal.
CREATE INDEX callbacks_rejected_received ON callbacks (received_at)
WHERE outcome = 'rejected';
