-- First deliveries of paid callbacks, several in one call: what payhook_pay
-- (migration 21) does with p_attempt set, for each element in turn, with one
-- round trip and one commit for them all. The elements arrive sorted by order
-- and at most one per order, so two calls lock orders in the same sequence
-- (no deadlock between them) and no element sees another's write.
--
-- Each element is independent: a guard already held leaves it out (NULL),
-- and an order that is not as payhook assumed gives back the guard it just
-- took and leaves it out (-1); payhook then takes the general path for it.
-- Only what cannot be decided per element fails the call: an error, a lock
-- waited for longer than 100 ms, or p_commit_by (the earliest of the
-- elements' deadlines) already past. Nothing is then written, and each
-- request writes its own callback alone, waiting as long as its own bound
-- allows: one order held locked (by a stalled client, say) delays the others
-- batched with it by 100 ms at most.
--
-- Returns, per element in the order given: the callback's id, NULL or -1.
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
