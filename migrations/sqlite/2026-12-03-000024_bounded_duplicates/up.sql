-- A valid signature proves what it covers and nothing more. A verified
-- callback's raw_query holds what its signature covers, whole; when the
-- request carried anything else (other parameters, a body beside the query,
-- other headers), raw_unsigned holds the first PAYHOOK_REJECTED_MAX_BYTES of
-- the request as received, beside its full length and SHA-256.
ALTER TABLE callbacks ADD COLUMN raw_unsigned TEXT;
-- A duplicate (the same delivery again) is stored bounded, like a rejected
-- request, and points at the first row of its delivery, which holds it whole.
ALTER TABLE callbacks ADD COLUMN duplicate_of BIGINT;
-- The first row of a delivery, found without reading its duplicates.
CREATE INDEX callbacks_first_of_delivery ON callbacks (identity, id)
    WHERE identity IS NOT NULL AND duplicate_of IS NULL;
-- How many duplicates a delivery has had (the duplicate_flood alert).
CREATE INDEX callbacks_duplicate_of ON callbacks (duplicate_of)
    WHERE duplicate_of IS NOT NULL;
-- Duplicates past PAYHOOK_DUPLICATE_RETENTION, for the pruner.
CREATE INDEX callbacks_duplicate_received ON callbacks (received_at)
    WHERE outcome = 'duplicate';
