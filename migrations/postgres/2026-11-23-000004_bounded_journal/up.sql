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
WHERE strpos(raw_query, '\') > 0;

-- The retention task deletes old rejected rows in batches; this index finds
-- them without reading the rest of the journal. The predicate is written as a
-- literal in the task's query too, or the planner could not use the index.
CREATE INDEX callbacks_rejected_received ON callbacks (received_at)
WHERE outcome = 'rejected';

-- The paid path writes the new columns too.
DROP FUNCTION payhook_fulfil(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, INTEGER, TEXT, TEXT, TEXT,
                             BIGINT, TEXT, BOOLEAN, TEXT);
CREATE FUNCTION payhook_fulfil(
    p_received_at BIGINT, p_project TEXT, p_orderid TEXT, p_identity TEXT, p_outcome TEXT,
    p_reason TEXT, p_http_status INTEGER, p_method TEXT, p_raw_query TEXT, p_remote_addr TEXT,
    p_amount BIGINT, p_currency TEXT, p_checked BOOLEAN, p_payload TEXT,
    p_raw_length BIGINT, p_raw_sha256 TEXT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    cb_id BIGINT;
BEGIN
    INSERT INTO callbacks (received_at, project_id, orderid, identity, outcome, reason,
                           http_status, method, raw_query, remote_addr, raw_length, raw_sha256)
    VALUES (p_received_at, p_project, p_orderid, p_identity, p_outcome, p_reason,
            p_http_status, p_method, p_raw_query, p_remote_addr, p_raw_length, p_raw_sha256)
    RETURNING id INTO cb_id;
    INSERT INTO fulfilments (project_id, orderid, callback_id, amount, currency, amount_checked,
                             created_at)
    VALUES (p_project, p_orderid, cb_id, p_amount, p_currency, p_checked, p_received_at);
    UPDATE orders SET state = 'paid', fulfilled_at = p_received_at, updated_at = p_received_at
    WHERE project_id = p_project AND orderid = p_orderid;
    INSERT INTO outbox (kind, project_id, orderid, callback_id, payload, next_attempt_at, created_at)
    VALUES (p_outcome, p_project, p_orderid, cb_id, p_payload, p_received_at, p_received_at);
    RETURN cb_id;
END
$$;
