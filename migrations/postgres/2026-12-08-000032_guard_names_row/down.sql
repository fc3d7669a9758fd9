CREATE INDEX callbacks_first_of_delivery ON callbacks (identity, id)
    WHERE identity IS NOT NULL AND duplicate_of IS NULL;
ALTER TABLE answered DROP COLUMN callback_id;
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
    INSERT INTO fulfilments (project_id, orderid, callback_id, amount, currency, amount_checked,
                             created_at)
    VALUES (p_project, p_orderid, cb_id, p_amount, p_currency, p_checked, p_received_at);
    INSERT INTO outbox (kind, project_id, orderid, callback_id, payload, next_attempt_at, created_at)
    VALUES (p_outcome, p_project, p_orderid, cb_id, p_payload, p_received_at, p_received_at);
    RETURN cb_id;
END
$$;
