ALTER TABLE orders DROP COLUMN paysera_order_id;
ALTER TABLE orders DROP COLUMN snapshot_at;
ALTER TABLE orders DROP COLUMN amount_paid;
ALTER TABLE orders DROP COLUMN test;
ALTER TABLE callbacks DROP COLUMN api;
