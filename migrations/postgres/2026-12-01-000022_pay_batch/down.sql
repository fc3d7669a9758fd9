DROP FUNCTION payhook_pay_batch(BIGINT, TEXT[], TEXT[], BIGINT[], TEXT[], BOOLEAN[], BIGINT[],
                                TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], INTEGER[], TEXT[], TEXT[],
                                TEXT[], TEXT[], BIGINT[], TEXT[], BOOLEAN[], TEXT[], BIGINT[],
                                TEXT[]);
