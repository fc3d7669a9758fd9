DROP FUNCTION payhook_claim(TEXT, BIGINT, TEXT, TEXT, TEXT, BOOLEAN);
CREATE FUNCTION payhook_claim(
    p_identity TEXT, p_now BIGINT, p_attempt TEXT, p_project TEXT, p_orderid TEXT,
    p_create BOOLEAN
) RETURNS TABLE (
    fresh BOOLEAN, o_project_id TEXT, o_orderid TEXT, o_amount BIGINT, o_currency TEXT,
    o_state TEXT, o_refunded_amount BIGINT, o_fulfilled_at BIGINT, o_returned_at BIGINT,
    o_return_token TEXT, o_closed_at BIGINT, o_test BOOLEAN, o_amount_paid BIGINT,
    o_snapshot_at BIGINT, o_paysera_order_id TEXT
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
                   o.test, o.amount_paid, o.snapshot_at, o.paysera_order_id
            FROM orders o
            WHERE o.project_id = p_project AND o.orderid = p_orderid
            FOR UPDATE;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT claimed = 1, NULL::TEXT, NULL::TEXT, NULL::BIGINT, NULL::TEXT,
        NULL::TEXT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::TEXT, NULL::BIGINT,
        NULL::BOOLEAN, NULL::BIGINT, NULL::BIGINT, NULL::TEXT;
END
$$;
ALTER TABLE orders DROP COLUMN amount_mode;
