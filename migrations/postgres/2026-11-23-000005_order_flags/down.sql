DROP INDEX orders_returned;
ALTER TABLE orders DROP COLUMN closed_at;
ALTER TABLE orders ADD COLUMN flag TEXT;
-- One column holds one flag: the latest one set.
UPDATE orders SET flag = (
    SELECT f.flag FROM order_flags f
    WHERE f.project_id = orders.project_id AND f.orderid = orders.orderid
    ORDER BY f.id DESC LIMIT 1
);
DROP TABLE order_flags;
