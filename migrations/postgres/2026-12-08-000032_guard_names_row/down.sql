-- The guard keyed by its identity alone, naming no row, and the functions of
-- migrations 000027 and 000028.
CREATE TABLE answered_prev (
    identity    TEXT PRIMARY KEY,
    answered_at BIGINT NOT NULL,
    attempt     TEXT,
    flag        TEXT
);
INSERT INTO answered_prev (identity, answered_at, attempt, flag)
SELECT identity, answered_at, attempt, flag FROM answered;
DROP TABLE answered;
ALTER TABLE answered_prev RENAME TO answered;
ALTER INDEX answered_prev_pkey RENAME TO answered_pkey;
CREATE INDEX callbacks_first_of_delivery ON callbacks (identity, id)
    WHERE identity IS NOT NULL AND duplicate_of IS NULL;

DROP FUNCTION payhook_claim(TEXT, BIGINT, TEXT, TEXT, TEXT, BOOLEAN, TEXT);
DROP FUNCTION payhook_pay(TEXT, BIGINT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, INTEGER, TEXT,
                          TEXT, TEXT, TEXT, BIGINT, TEXT, BOOLEAN, TEXT, BIGINT, TEXT);
DROP FUNCTION payhook_paid_rows(BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, INTEGER, TEXT, TEXT,
                                TEXT, TEXT, BIGINT, TEXT, BOOLEAN, TEXT, BIGINT, TEXT);
DROP FUNCTION payhook_take_guard(TEXT, TEXT, TEXT, BIGINT, TEXT);
CREATE FUNCTION payhook_claim(
    p_identity TEXT, p_now BIGINT, p_attempt TEXT, p_project TEXT, p_orderid TEXT,
    p_create BOOLEAN
) RETURNS TABLE (
    fresh BOOLEAN, o_project_id TEXT, o_orderid TEXT, o_amount BIGINT, o_currency TEXT,
    o_state TEXT, o_refunded_amount BIGINT, o_fulfilled_at BIGINT, o_returned_at BIGINT,
    o_return_token TEXT, o_closed_at BIGINT, o_test BOOLEAN, o_amount_paid BIGINT,
    o_snapshot_at BIGINT, o_paysera_order_id TEXT, o_amount_mode TEXT
) LANGUAGE plpgsql AS $$
DECLARE
    claimed INTEGER;
BEGIN
    INSERT INTO answered (identity, answered_at, attempt) VALUES (p_identity, p_now, p_attempt)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS claimed = ROW_COUNT;
    IF claimed = 1 AND p_orderid IS NOT NULL THEN
        IF p_create THEN
            INSERT INTO orders (project_id, orderid, state, created_at, updated_at)
            VALUES (p_project, p_orderid, 'awaiting_payment', p_now, p_now)
            ON CONFLICT (project_id, orderid) DO NOTHING;
        END IF;
        RETURN QUERY
            SELECT true, o.project_id, o.orderid, o.amount, o.currency, o.state,
                   o.refunded_amount, o.fulfilled_at, o.returned_at, o.return_token, o.closed_at,
                   o.test, o.amount_paid, o.snapshot_at, o.paysera_order_id, o.amount_mode
            FROM orders o
            WHERE o.project_id = p_project AND o.orderid = p_orderid
            FOR UPDATE;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT claimed = 1, NULL::TEXT, NULL::TEXT, NULL::BIGINT, NULL::TEXT,
        NULL::TEXT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::TEXT, NULL::BIGINT,
        NULL::BOOLEAN, NULL::BIGINT, NULL::BIGINT, NULL::TEXT, NULL::TEXT;
END
$$;

CREATE FUNCTION payhook_paid_rows(
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

CREATE FUNCTION payhook_pay(
    p_attempt TEXT, p_commit_by BIGINT,
    p_received_at BIGINT, p_project TEXT, p_orderid TEXT, p_identity TEXT, p_outcome TEXT,
    p_reason TEXT, p_http_status INTEGER, p_method TEXT, p_raw_query TEXT, p_remote_addr TEXT,
    p_api TEXT, p_amount BIGINT, p_currency TEXT, p_checked BOOLEAN, p_payload TEXT,
    p_raw_length BIGINT, p_raw_sha256 TEXT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    claimed INTEGER;
BEGIN
    IF p_attempt IS NOT NULL THEN
        INSERT INTO answered (identity, answered_at, attempt)
        VALUES (p_identity, p_received_at, p_attempt)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS claimed = ROW_COUNT;
        IF claimed = 0 THEN
            RETURN NULL;
        END IF;
        UPDATE orders SET state = 'paid', fulfilled_at = p_received_at, updated_at = p_received_at
         WHERE project_id = p_project AND orderid = p_orderid
           AND payhook_as_assumed(orders, p_amount, p_currency);
        IF NOT FOUND THEN
            PERFORM payhook_not_as_assumed();
        END IF;
        PERFORM payhook_check_commit_by(p_commit_by);
    ELSE
        UPDATE orders SET state = 'paid', fulfilled_at = p_received_at, updated_at = p_received_at
         WHERE project_id = p_project AND orderid = p_orderid;
    END IF;
    RETURN payhook_paid_rows(p_received_at, p_project, p_orderid, p_identity, p_outcome, p_reason,
                             p_http_status, p_method, p_raw_query, p_remote_addr, p_api, p_amount,
                             p_currency, p_checked, p_payload, p_raw_length, p_raw_sha256);
END
$$;

CREATE OR REPLACE FUNCTION payhook_pay_batch(
    p_commit_by BIGINT, p_attempt TEXT[],
    p_received_at BIGINT[], p_project TEXT[], p_orderid TEXT[], p_identity TEXT[], p_outcome TEXT[],
    p_reason TEXT[], p_http_status INTEGER[], p_method TEXT[], p_raw_query TEXT[], p_remote_addr TEXT[],
    p_api TEXT[], p_amount BIGINT[], p_currency TEXT[], p_checked BOOLEAN[], p_payload TEXT[],
    p_raw_length BIGINT[], p_raw_sha256 TEXT[]
) RETURNS BIGINT[] LANGUAGE plpgsql SET lock_timeout = '100ms' AS $$
DECLARE
    claimed INTEGER;
    ids BIGINT[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_identity, 1), 0) LOOP
        INSERT INTO answered (identity, answered_at, attempt)
        VALUES (p_identity[i], p_received_at[i], p_attempt[i])
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS claimed = ROW_COUNT;
        IF claimed = 0 THEN
            ids := ids || NULL::BIGINT;
            CONTINUE;
        END IF;
        UPDATE orders SET state = 'paid', fulfilled_at = p_received_at[i], updated_at = p_received_at[i]
         WHERE project_id = p_project[i] AND orderid = p_orderid[i]
           AND payhook_as_assumed(orders, p_amount[i], p_currency[i]);
        IF NOT FOUND THEN
            DELETE FROM answered WHERE identity = p_identity[i];
            ids := ids || (-1)::BIGINT;
            CONTINUE;
        END IF;
        ids := ids || payhook_paid_rows(p_received_at[i], p_project[i], p_orderid[i],
                                        p_identity[i], p_outcome[i], p_reason[i],
                                        p_http_status[i], p_method[i], p_raw_query[i],
                                        p_remote_addr[i], p_api[i], p_amount[i], p_currency[i],
                                        p_checked[i], p_payload[i], p_raw_length[i],
                                        p_raw_sha256[i]);
    END LOOP;
    PERFORM payhook_check_commit_by(p_commit_by);
    RETURN ids;
END
$$;
