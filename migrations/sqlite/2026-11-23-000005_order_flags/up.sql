-- An order carries several flags at once. One row per flag: adding one is an
-- insert that cannot overwrite another, whatever runs concurrently.
CREATE TABLE order_flags (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  TEXT    NOT NULL,
    orderid     TEXT    NOT NULL,
    flag        TEXT    NOT NULL,
    -- The callback that raised it first (NULL for flags migrated from orders.flag).
    callback_id BIGINT,
    created_at  BIGINT  NOT NULL,
    UNIQUE (project_id, orderid, flag)
);
INSERT INTO order_flags (project_id, orderid, flag, created_at)
    SELECT project_id, orderid, flag, updated_at FROM orders WHERE flag IS NOT NULL;
ALTER TABLE orders DROP COLUMN flag;

-- An operator closed the order: no callback is expected any more, so the
-- missed-callback detector leaves it alone.
ALTER TABLE orders ADD COLUMN closed_at BIGINT;

-- The missed-callback scan reads only buyers who came back within the window.
CREATE INDEX orders_returned ON orders (returned_at)
    WHERE returned_at IS NOT NULL AND fulfilled_at IS NULL AND closed_at IS NULL;
