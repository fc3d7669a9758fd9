-- One contract for the paid fast path's writes, used by both payhook_pay and
-- payhook_pay_batch (they had a copy each of the order check and the writes,
-- and payhook_pay did not write `api`).
--
-- payhook_as_assumed: the order a first paid delivery is decided against
-- before its row is read (domain::AssumedOrder, in src/domain/assumed.rs):
-- registered for the callback's own amount and currency, fixed amount,
-- awaiting payment, live, and nothing else recorded. One definition here,
-- one in Rust; tests/api/pay_contract.rs holds the two together for every
-- field of the order view the decision reads.
CREATE FUNCTION payhook_as_assumed(o orders, p_amount BIGINT, p_currency TEXT)
RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT o.state = 'awaiting_payment' AND o.amount_mode = 'fixed'
       AND o.amount = p_amount AND o.currency = p_currency
       AND NOT o.test
       AND o.fulfilled_at IS NULL AND o.refunded_amount IS NULL
       AND o.amount_paid IS NULL AND o.snapshot_at IS NULL
$$;

-- payhook_paid_rows: what a paid callback writes beside its order's state:
-- the callback row, the fulfilment and the shop's event. Returns the
-- callback's id.
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

-- The signals Rust matches (src/store/pay/), by SQLSTATE (check_violation)
-- and constraint name, never by message text: the order was not as assumed
-- (payhook_as_assumed), or the caller's commit bound passed
-- (payhook_commit_by). Either rolls the statement back.
CREATE FUNCTION payhook_not_as_assumed() RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order not as assumed'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'payhook_as_assumed';
END
$$;

CREATE FUNCTION payhook_check_commit_by(p_commit_by BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    IF p_commit_by < (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT THEN
        RAISE EXCEPTION 'too late to commit'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'payhook_commit_by';
    END IF;
END
$$;

DROP FUNCTION payhook_pay(TEXT, BIGINT, TEXT, BIGINT, TEXT, BOOLEAN, BIGINT, TEXT, TEXT, TEXT, TEXT,
                          TEXT, INTEGER, TEXT, TEXT, TEXT, BIGINT, TEXT, BOOLEAN, TEXT, BIGINT, TEXT);
DROP FUNCTION payhook_pay_batch(BIGINT, TEXT[], TEXT[], BIGINT[], TEXT[], BOOLEAN[], BIGINT[],
                                TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], INTEGER[], TEXT[], TEXT[],
                                TEXT[], TEXT[], BIGINT[], TEXT[], BOOLEAN[], TEXT[], BIGINT[],
                                TEXT[]);

-- One paid callback in one call.
--
-- With p_attempt set (a first delivery, decided against the assumed order
-- before any row was read): takes the duplicate guard, then pays the order
-- only if it is as assumed, checked on the newest version of the row after
-- any lock wait (the UPDATE locks and re-checks as SELECT ... FOR UPDATE
-- would, without a separate row lock), then writes, all in the statement's
-- own implicit transaction: one round trip. The decision is a pure function
-- of the order, so the same order means the same decision. Returns the
-- callback's id, or NULL when the guard was already held (nothing written);
-- raises payhook_as_assumed when the order is anything else (nothing stays
-- written), and payhook_commit_by past p_commit_by (unix ms: the last moment
-- payhook still waits for the answer, so a statement a stalled network
-- delivers late does not commit what was answered 503).
--
-- With p_attempt NULL (the general path): its transaction already holds the
-- guard and the order (payhook_claim) and has decided; this only writes.
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

-- First deliveries of paid callbacks, several in one call: what payhook_pay
-- does with p_attempt set, for each element in turn, with one round trip and
-- one commit for them all. The elements arrive sorted by order and at most
-- one per order, so two calls lock orders in the same sequence (no deadlock
-- between them) and no element sees another's write.
--
-- Each element is independent: a guard already held leaves it out (NULL),
-- and an order that is not as assumed gives back the guard it just took and
-- leaves it out (-1); payhook then takes the general path for it. Only what
-- cannot be decided per element fails the call: an error, a lock waited for
-- longer than 100 ms, or p_commit_by (the earliest of the elements'
-- deadlines) already past. Nothing is then written, and each request writes
-- its own callback alone, waiting as long as its own bound allows: one order
-- held locked (by a stalled client, say) delays the others batched with it by
-- 100 ms at most.
--
-- Returns, per element in the order given: the callback's id, NULL or -1.
CREATE FUNCTION payhook_pay_batch(
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
