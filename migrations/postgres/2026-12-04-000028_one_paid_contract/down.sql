DROP FUNCTION payhook_pay(TEXT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, INTEGER, TEXT, TEXT,
                          TEXT, TEXT, BIGINT, TEXT, BOOLEAN, TEXT, BIGINT, TEXT);
DROP FUNCTION payhook_pay_batch(BIGINT, TEXT[], BIGINT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[],
                                INTEGER[], TEXT[], TEXT[], TEXT[], TEXT[], BIGINT[], TEXT[],
                                BOOLEAN[], TEXT[], BIGINT[], TEXT[]);
DROP FUNCTION payhook_check_commit_by(BIGINT);
DROP FUNCTION payhook_not_as_assumed();
DROP FUNCTION payhook_paid_rows(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, INTEGER, TEXT, TEXT, TEXT,
                                TEXT, BIGINT, TEXT, BOOLEAN, TEXT, BIGINT, TEXT);
DROP FUNCTION payhook_as_assumed(orders, BIGINT, TEXT);

-- payhook_pay and payhook_pay_batch as migrations 000021 and 000022 made them.
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

CREATE FUNCTION payhook_pay_batch(
    p_commit_by BIGINT, p_attempt TEXT[], p_expect_state TEXT[], p_expect_amount BIGINT[],
    p_expect_currency TEXT[], p_expect_test BOOLEAN[],
    p_received_at BIGINT[], p_project TEXT[], p_orderid TEXT[], p_identity TEXT[], p_outcome TEXT[],
    p_reason TEXT[], p_http_status INTEGER[], p_method TEXT[], p_raw_query TEXT[], p_remote_addr TEXT[],
    p_api TEXT[], p_amount BIGINT[], p_currency TEXT[], p_checked BOOLEAN[], p_payload TEXT[],
    p_raw_length BIGINT[], p_raw_sha256 TEXT[]
) RETURNS BIGINT[] LANGUAGE plpgsql SET lock_timeout = '100ms' AS $$
DECLARE
    claimed INTEGER;
    cb_id BIGINT;
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
        -- As in payhook_pay: every column the decision reads, compared with
        -- what payhook assumed, re-checked on the newest version after a wait.
        UPDATE orders SET state = 'paid', fulfilled_at = p_received_at[i], updated_at = p_received_at[i]
         WHERE project_id = p_project[i] AND orderid = p_orderid[i]
           AND state = p_expect_state[i]
           AND amount = p_expect_amount[i] AND currency = p_expect_currency[i]
           AND test = p_expect_test[i]
           AND fulfilled_at IS NULL AND refunded_amount IS NULL
           AND amount_paid IS NULL AND snapshot_at IS NULL;
        IF NOT FOUND THEN
            DELETE FROM answered WHERE identity = p_identity[i];
            ids := ids || (-1)::BIGINT;
            CONTINUE;
        END IF;
        INSERT INTO callbacks (received_at, project_id, orderid, identity, outcome, reason,
                               http_status, method, raw_query, remote_addr, raw_length,
                               raw_sha256, api)
        VALUES (p_received_at[i], p_project[i], p_orderid[i], p_identity[i], p_outcome[i],
                p_reason[i], p_http_status[i], p_method[i], p_raw_query[i], p_remote_addr[i],
                p_raw_length[i], p_raw_sha256[i], p_api[i])
        RETURNING id INTO cb_id;
        INSERT INTO fulfilments (project_id, orderid, callback_id, amount, currency,
                                 amount_checked, created_at)
        VALUES (p_project[i], p_orderid[i], cb_id, p_amount[i], p_currency[i], p_checked[i],
                p_received_at[i]);
        INSERT INTO outbox (kind, project_id, orderid, callback_id, payload, next_attempt_at,
                            created_at)
        VALUES (p_outcome[i], p_project[i], p_orderid[i], cb_id, p_payload[i], p_received_at[i],
                p_received_at[i]);
        ids := ids || cb_id;
    END LOOP;
    IF p_commit_by < (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT THEN
        RAISE EXCEPTION 'payhook_pay_batch: too late to commit' USING ERRCODE = 'PH002';
    END IF;
    RETURN ids;
END
$$;
