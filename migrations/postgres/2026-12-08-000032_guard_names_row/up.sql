-- The duplicate guard, keyed like the order it belongs to and naming the row
-- it guards.
--
-- Key: (project_id, orderid, identity), orderid '' for a callback that names
-- no order. The identity (a SHA-256 of what the signature covers) still
-- decides what is a duplicate: it covers the project and the order id on
-- every API (classic data, a Checkout body, a recipe's order_field, which
-- must be signed), so it has one key. The order first puts a new order's
-- guard beside the guards of the orders before it, as orders_pkey puts its
-- row: under shop order ids that grow, each insert lands on a page already
-- cached. Keyed by the identity alone, each landed on a random page of an
-- index that grows with the history (600 MB at 5 M orders), and a deep
-- history made every paid callback slower (docs/performance.md, "Years of
-- history").
--
-- callback_id: the row the guard names, the delivery answered OK, stored
-- whole. A duplicate points there (callbacks.duplicate_of) and a retry whose
-- reply was lost reports it, both read through this table's key. That
-- retires callbacks_first_of_delivery, another random-key index every
-- callback wrote.
--
-- The table is rebuilt, each old guard keyed and named from the first row its
-- transaction stored: at the guard's own time, answered 200, not a
-- duplicate. A guard whose row has been pruned since is dropped: the journal
-- prune keeps every row of a paid, refunded or reviewed order, so such a
-- guard belonged to a rejected-for-good or unconfirmed request, and without
-- its row it has no order to be keyed by.
CREATE TABLE answered_next (
    project_id  TEXT NOT NULL,
    orderid     TEXT NOT NULL,
    identity    TEXT NOT NULL,
    answered_at BIGINT NOT NULL,
    attempt     TEXT,
    flag        TEXT,
    callback_id BIGINT
);
INSERT INTO answered_next (project_id, orderid, identity, answered_at, attempt, flag, callback_id)
SELECT c.project_id, coalesce(c.orderid, ''), a.identity, a.answered_at, a.attempt, a.flag, c.id
  FROM answered a
  JOIN LATERAL (SELECT c.id, c.project_id, c.orderid FROM callbacks c
                 WHERE c.identity = a.identity AND c.duplicate_of IS NULL
                   AND c.received_at = a.answered_at AND c.http_status = 200
                   AND c.project_id IS NOT NULL
                 ORDER BY c.id LIMIT 1) c ON true;
DROP TABLE answered;
ALTER TABLE answered_next RENAME TO answered;
ALTER TABLE answered ADD CONSTRAINT answered_pkey PRIMARY KEY (project_id, orderid, identity);
DROP INDEX callbacks_first_of_delivery;

-- The functions that write the guard, as in migrations 000027 (payhook_claim)
-- and 000028 (the paid writes), with its key: taken in one function, which
-- draws the callback's id with it. The paid path never looks the guard up
-- again. Statements that find a row by its key run with enable_seqscan off:
-- PL/pgSQL caches a statement's plan, and a plan made while a table was a
-- page or two is a sequential scan that stays cached until autovacuum next
-- analyzes the table, up to a minute later, while a fresh database's table
-- grows by a hundred thousand rows under it. (Tried: naming the guard with an
-- UPDATE after taking it, a fresh database's paid callbacks read 200 M rows
-- of `answered` in 15 s, and slowed to a third.)
DROP FUNCTION payhook_claim(TEXT, BIGINT, TEXT, TEXT, TEXT, BOOLEAN);
DROP FUNCTION payhook_pay(TEXT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, INTEGER, TEXT, TEXT,
                          TEXT, TEXT, BIGINT, TEXT, BOOLEAN, TEXT, BIGINT, TEXT);
DROP FUNCTION payhook_paid_rows(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, INTEGER, TEXT, TEXT, TEXT,
                                TEXT, BIGINT, TEXT, BOOLEAN, TEXT, BIGINT, TEXT);

-- payhook_take_guard: the one place the guard is taken on PostgreSQL (on
-- SQLite, `claim_in_statements`). Returns the id of the callback row the
-- guard names, which the caller writes that row with, when this transaction
-- took it; NULL when it was held already (a second transaction waits here
-- until the first commits, then sees the conflict). The id is drawn in the
-- same statement, unless the guard is seen held already: a duplicate draws
-- none. A delivery whose transaction ends without writing its row (an order
-- not as assumed on the fast path, which the general path then takes again)
-- leaves a gap in the ids: they order the journal, they do not count it.
CREATE FUNCTION payhook_take_guard(
    p_project TEXT, p_orderid TEXT, p_identity TEXT, p_at BIGINT, p_attempt TEXT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    cb_id BIGINT;
BEGIN
    INSERT INTO answered (project_id, orderid, identity, answered_at, attempt, callback_id)
    SELECT p_project, p_orderid, p_identity, p_at, p_attempt, nextval('callbacks_id_seq')
     WHERE NOT EXISTS (SELECT 1 FROM answered
                        WHERE project_id = p_project AND orderid = p_orderid
                          AND identity = p_identity)
    ON CONFLICT DO NOTHING
    RETURNING callback_id INTO cb_id;
    RETURN cb_id;
END
$$;

-- payhook_claim: also returns the id the guard names (callback_id, NULL when
-- the guard was held), which the general path writes its callback row with.
CREATE FUNCTION payhook_claim(
    p_identity TEXT, p_now BIGINT, p_attempt TEXT, p_project TEXT, p_orderid TEXT,
    p_create BOOLEAN, p_guard_orderid TEXT
) RETURNS TABLE (
    callback_id BIGINT, o_project_id TEXT, o_orderid TEXT, o_amount BIGINT, o_currency TEXT,
    o_state TEXT, o_refunded_amount BIGINT, o_fulfilled_at BIGINT, o_returned_at BIGINT,
    o_return_token TEXT, o_closed_at BIGINT, o_test BOOLEAN, o_amount_paid BIGINT,
    o_snapshot_at BIGINT, o_paysera_order_id TEXT, o_amount_mode TEXT
) LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    -- The general path writes its callback row whatever it decides.
    cb_id BIGINT := payhook_take_guard(p_project, p_guard_orderid, p_identity, p_now, p_attempt);
BEGIN
    IF cb_id IS NOT NULL AND p_orderid IS NOT NULL THEN
        IF p_create THEN
            INSERT INTO orders (project_id, orderid, state, created_at, updated_at)
            VALUES (p_project, p_orderid, 'awaiting_payment', p_now, p_now)
            ON CONFLICT (project_id, orderid) DO NOTHING;
        END IF;
        RETURN QUERY
            SELECT cb_id, o.project_id, o.orderid, o.amount, o.currency, o.state,
                   o.refunded_amount, o.fulfilled_at, o.returned_at, o.return_token, o.closed_at,
                   o.test, o.amount_paid, o.snapshot_at, o.paysera_order_id, o.amount_mode
            FROM orders o
            WHERE o.project_id = p_project AND o.orderid = p_orderid
            FOR UPDATE;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT cb_id, NULL::TEXT, NULL::TEXT, NULL::BIGINT, NULL::TEXT,
        NULL::TEXT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::TEXT, NULL::BIGINT,
        NULL::BOOLEAN, NULL::BIGINT, NULL::BIGINT, NULL::TEXT, NULL::TEXT;
END
$$;

-- payhook_paid_rows: the same writes, the callback row with the id its guard
-- names (p_id).
CREATE FUNCTION payhook_paid_rows(
    p_id BIGINT, p_received_at BIGINT, p_project TEXT, p_orderid TEXT, p_identity TEXT,
    p_outcome TEXT, p_reason TEXT, p_http_status INTEGER, p_method TEXT, p_raw_query TEXT,
    p_remote_addr TEXT, p_api TEXT, p_amount BIGINT, p_currency TEXT, p_checked BOOLEAN,
    p_payload TEXT, p_raw_length BIGINT, p_raw_sha256 TEXT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO callbacks (id, received_at, project_id, orderid, identity, outcome, reason,
                           http_status, method, raw_query, remote_addr, raw_length, raw_sha256,
                           api)
    VALUES (p_id, p_received_at, p_project, p_orderid, p_identity, p_outcome, p_reason,
            p_http_status, p_method, p_raw_query, p_remote_addr, p_raw_length, p_raw_sha256,
            p_api);
    INSERT INTO fulfilments (project_id, orderid, callback_id, amount, currency, amount_checked,
                             created_at)
    VALUES (p_project, p_orderid, p_id, p_amount, p_currency, p_checked, p_received_at);
    INSERT INTO outbox (kind, project_id, orderid, callback_id, payload, next_attempt_at, created_at)
    VALUES (p_outcome, p_project, p_orderid, p_id, p_payload, p_received_at, p_received_at);
    RETURN p_id;
END
$$;

-- payhook_pay (migration 000028) with the guard's key and id. p_callback_id:
-- on the general path (p_attempt NULL), the id payhook_claim's guard names.
CREATE FUNCTION payhook_pay(
    p_attempt TEXT, p_commit_by BIGINT, p_callback_id BIGINT,
    p_received_at BIGINT, p_project TEXT, p_orderid TEXT, p_identity TEXT, p_outcome TEXT,
    p_reason TEXT, p_http_status INTEGER, p_method TEXT, p_raw_query TEXT, p_remote_addr TEXT,
    p_api TEXT, p_amount BIGINT, p_currency TEXT, p_checked BOOLEAN, p_payload TEXT,
    p_raw_length BIGINT, p_raw_sha256 TEXT
) RETURNS BIGINT LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    cb_id BIGINT := p_callback_id;
BEGIN
    IF p_attempt IS NOT NULL THEN
        cb_id := payhook_take_guard(p_project, p_orderid, p_identity, p_received_at, p_attempt);
        IF cb_id IS NULL THEN
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
    RETURN payhook_paid_rows(cb_id, p_received_at, p_project, p_orderid, p_identity, p_outcome, p_reason,
                             p_http_status, p_method, p_raw_query, p_remote_addr, p_api, p_amount,
                             p_currency, p_checked, p_payload, p_raw_length, p_raw_sha256);
END
$$;

-- payhook_pay_batch (migration 000028) with the guard's key and id.
CREATE OR REPLACE FUNCTION payhook_pay_batch(
    p_commit_by BIGINT, p_attempt TEXT[],
    p_received_at BIGINT[], p_project TEXT[], p_orderid TEXT[], p_identity TEXT[], p_outcome TEXT[],
    p_reason TEXT[], p_http_status INTEGER[], p_method TEXT[], p_raw_query TEXT[], p_remote_addr TEXT[],
    p_api TEXT[], p_amount BIGINT[], p_currency TEXT[], p_checked BOOLEAN[], p_payload TEXT[],
    p_raw_length BIGINT[], p_raw_sha256 TEXT[]
) RETURNS BIGINT[] LANGUAGE plpgsql SET lock_timeout = '100ms' SET enable_seqscan = off AS $$
DECLARE
    cb_id BIGINT;
    ids BIGINT[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_identity, 1), 0) LOOP
        cb_id := payhook_take_guard(p_project[i], p_orderid[i], p_identity[i], p_received_at[i],
                                    p_attempt[i]);
        IF cb_id IS NULL THEN
            ids := ids || NULL::BIGINT;
            CONTINUE;
        END IF;
        UPDATE orders SET state = 'paid', fulfilled_at = p_received_at[i], updated_at = p_received_at[i]
         WHERE project_id = p_project[i] AND orderid = p_orderid[i]
           AND payhook_as_assumed(orders, p_amount[i], p_currency[i]);
        IF NOT FOUND THEN
            DELETE FROM answered
             WHERE project_id = p_project[i] AND orderid = p_orderid[i] AND identity = p_identity[i];
            ids := ids || (-1)::BIGINT;
            CONTINUE;
        END IF;
        ids := ids || payhook_paid_rows(cb_id, p_received_at[i], p_project[i], p_orderid[i],
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
