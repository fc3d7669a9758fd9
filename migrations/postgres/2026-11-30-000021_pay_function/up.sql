-- The paid path's writes (callback row, fulfilment, order state, outbox row),
-- and for a first delivery also its duplicate guard and order check, in one
-- call. It replaces payhook_fulfil (migration 3), which only wrote.
--
-- A first delivery is one statement: one round trip and one implicit
-- transaction (no BEGIN or COMMIT of its own). payhook decides before it has
-- read the order, from the order it assumes (the p_expect_* values:
-- registered, awaiting payment, for the callback's own amount and currency).
-- With p_attempt set, this takes the duplicate guard, then locks the order
-- only if it is exactly as assumed, then writes. The decision is a pure
-- function of the order, so the same order means the same decision. When the
-- order is anything else, it raises and nothing stays written; payhook then
-- takes the general path (payhook_claim, decide, write). Returns the
-- callback's id, or NULL when the guard was already held (nothing written).
--
-- The general path calls it with p_attempt NULL: its transaction already
-- holds the guard and the order (payhook_claim), and this only writes.
--
-- p_commit_by (unix ms, or NULL) is the last moment payhook is still waiting
-- for the answer: a statement that a stalled network delivers later must not
-- commit what payhook has answered 503 (within the clocks' agreement; payhook
-- leaves a tenth of PAYHOOK_DB_STATEMENT_TIMEOUT for the reply).
CREATE FUNCTION payhook_pay(
    p_attempt TEXT, p_commit_by BIGINT, p_expect_state TEXT, p_expect_amount BIGINT,
    p_expect_currency TEXT, p_expect_test BOOLEAN,
    p_received_at BIGINT, p_project TEXT, p_orderid TEXT, p_identity TEXT, p_outcome TEXT,
    p_reason TEXT, p_http_status INTEGER, p_method TEXT, p_raw_query TEXT, p_remote_addr TEXT,
    p_amount BIGINT, p_currency TEXT, p_checked BOOLEAN, p_payload TEXT,
    p_raw_length BIGINT, p_raw_sha256 TEXT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    claimed INTEGER;
    cb_id BIGINT;
BEGIN
    IF p_attempt IS NOT NULL THEN
        INSERT INTO answered (identity, answered_at, attempt)
        VALUES (p_identity, p_received_at, p_attempt)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS claimed = ROW_COUNT;
        IF claimed = 0 THEN
            RETURN NULL;
        END IF;
        -- Every column the decision reads (store::callbacks::order_view),
        -- compared with what payhook assumed. The UPDATE locks the order and
        -- re-checks these on the newest version after any wait, as SELECT ...
        -- FOR UPDATE would, without writing a separate row lock.
        UPDATE orders SET state = 'paid', fulfilled_at = p_received_at, updated_at = p_received_at
         WHERE project_id = p_project AND orderid = p_orderid
           AND state = p_expect_state
           AND amount = p_expect_amount AND currency = p_expect_currency
           AND test = p_expect_test
           AND fulfilled_at IS NULL AND refunded_amount IS NULL
           AND amount_paid IS NULL AND snapshot_at IS NULL;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'payhook_pay: order not as assumed' USING ERRCODE = 'PH001';
        END IF;
        IF p_commit_by < (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT THEN
            RAISE EXCEPTION 'payhook_pay: too late to commit' USING ERRCODE = 'PH002';
        END IF;
    ELSE
        UPDATE orders SET state = 'paid', fulfilled_at = p_received_at, updated_at = p_received_at
         WHERE project_id = p_project AND orderid = p_orderid;
    END IF;
    INSERT INTO callbacks (received_at, project_id, orderid, identity, outcome, reason,
                           http_status, method, raw_query, remote_addr, raw_length, raw_sha256)
    VALUES (p_received_at, p_project, p_orderid, p_identity, p_outcome, p_reason,
            p_http_status, p_method, p_raw_query, p_remote_addr, p_raw_length, p_raw_sha256)
    RETURNING id INTO cb_id;
    INSERT INTO fulfilments (project_id, orderid, callback_id, amount, currency, amount_checked,
                             created_at)
    VALUES (p_project, p_orderid, cb_id, p_amount, p_currency, p_checked, p_received_at);
    INSERT INTO outbox (kind, project_id, orderid, callback_id, payload, next_attempt_at, created_at)
    VALUES (p_outcome, p_project, p_orderid, cb_id, p_payload, p_received_at, p_received_at);
    RETURN cb_id;
END
$$;

DROP FUNCTION payhook_fulfil(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, INTEGER, TEXT, TEXT, TEXT,
                             BIGINT, TEXT, BOOLEAN, TEXT, BIGINT, TEXT);
