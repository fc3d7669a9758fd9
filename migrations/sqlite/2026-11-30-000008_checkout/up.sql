-- Checkout (Modern) webhooks beside classic callbacks.

-- Which API a journal row came through: 'classic' or 'checkout'.
ALTER TABLE callbacks ADD COLUMN api TEXT NOT NULL DEFAULT 'classic';

-- The shop says whether it created the order in test mode: a Checkout
-- webhook carries no test flag of its own (docs/checkout-modern.md §8.8).
ALTER TABLE orders ADD COLUMN test BOOLEAN NOT NULL DEFAULT FALSE;

-- The last Checkout snapshot applied to the order (docs/checkout-modern.md
-- §9): what was paid by then and its updated_at (unix seconds), so an older
-- or equal one never moves the order back; and Paysera's own id of the order.
ALTER TABLE orders ADD COLUMN amount_paid BIGINT;
ALTER TABLE orders ADD COLUMN snapshot_at BIGINT;
ALTER TABLE orders ADD COLUMN paysera_order_id TEXT;
