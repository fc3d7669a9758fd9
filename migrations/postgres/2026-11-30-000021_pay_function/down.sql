DROP FUNCTION payhook_pay(TEXT, BIGINT, TEXT, BIGINT, TEXT, BOOLEAN, BIGINT, TEXT, TEXT, TEXT, TEXT,
                          TEXT, INTEGER, TEXT, TEXT, TEXT, BIGINT, TEXT, BOOLEAN, TEXT, BIGINT, TEXT);
-- payhook_fulfil as migration 4 left it.
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
