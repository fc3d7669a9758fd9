-- Whether the amount registered for an order is what must be paid ('fixed',
-- every order so far) or the least a payer who chooses the amount may pay
-- ('payer_sets', Checkout only). A Checkout snapshot that says
-- payer_sets_amount is held to a fixed registration all the same.
ALTER TABLE orders ADD COLUMN amount_mode TEXT NOT NULL DEFAULT 'fixed'
    CHECK (amount_mode IN ('fixed', 'payer_sets'));
