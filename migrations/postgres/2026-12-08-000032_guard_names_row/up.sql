-- The duplicate guard names the row it guards: the delivery answered OK,
-- stored whole. A duplicate points there (callbacks.duplicate_of) and a retry
-- whose reply was lost reports it, both read through answered's primary key.
-- That retires callbacks_first_of_delivery, an index on a random key
-- (SHA-256 hex) that every callback wrote and whose pages a deep history no
-- longer keeps cached: the paid path paid for it in misses and full-page
-- images (docs/performance.md, "Years of history").
--
-- The table is rebuilt rather than updated in place: an UPDATE of every row
-- would leave answered and its primary key twice their size for good (a
-- B-tree does not shrink). The row a guard names is the first one its
-- transaction stored: the guard's own time, answered 200, not a duplicate.
-- A guard whose row was pruned names none (callback_id NULL).
CREATE TABLE answered_next (
    identity    TEXT NOT NULL,
    answered_at BIGINT NOT NULL,
    attempt     TEXT,
    flag        TEXT,
    callback_id BIGINT
);
INSERT INTO answered_next (identity, answered_at, attempt, flag, callback_id)
SELECT a.identity, a.answered_at, a.attempt, a.flag,
       (SELECT c.id FROM callbacks c
         WHERE c.identity = a.identity AND c.duplicate_of IS NULL
           AND c.received_at = a.answered_at AND c.http_status = 200
         ORDER BY c.id LIMIT 1)
  FROM answered a;
DROP TABLE answered;
ALTER TABLE answered_next RENAME TO answered;
ALTER TABLE answered ADD CONSTRAINT answered_pkey PRIMARY KEY (identity);
DROP INDEX callbacks_first_of_delivery;

-- payhook_paid_rows (migration 000028): the same writes, and the guard its
-- transaction holds names the callback row. Both callers hold it:
-- payhook_pay's first delivery took it in the same call, the general path in
-- payhook_claim.
CREATE OR REPLACE FUNCTION payhook_paid_rows(
    p_received_at BIGINT, p_project TEXT, p_orderid TEXT, p_identity TEXT, p_outcome TEXT,
    p_reason TEXT, p_http_status INTEGER, p_method TEXT, p_raw_query TEXT, p_remote_addr TEXT,
    p_api TEXT, p_amount BIGINT, p_currency TEXT, p_checked BOOLEAN, p_payload TEXT,
    p_raw_length BIGINT, p_raw_sha256 TEXT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    cb_id BIGINT;
BEGIN
    INSERT INTO callbacks (received_at, project_id, orderid, identity, outcome, reason,
                           http_status, method, raw_query, remote_addr, raw_length, raw_sha256,
                           api)
    VALUES (p_received_at, p_project, p_orderid, p_identity, p_outcome, p_reason,
            p_http_status, p_method, p_raw_query, p_remote_addr, p_raw_length, p_raw_sha256,
            p_api)
    RETURNING id INTO cb_id;
    UPDATE answered SET callback_id = cb_id WHERE identity = p_identity;
    INSERT INTO fulfilments (project_id, orderid, callback_id, amount, currency, amount_checked,
                             created_at)
    VALUES (p_project, p_orderid, cb_id, p_amount, p_currency, p_checked, p_received_at);
    INSERT INTO outbox (kind, project_id, orderid, callback_id, payload, next_attempt_at, created_at)
    VALUES (p_outcome, p_project, p_orderid, cb_id, p_payload, p_received_at, p_received_at);
    RETURN cb_id;
END
$$;
