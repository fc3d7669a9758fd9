-- Every console page and admin API list reads through an index, whatever
-- the depth of the history (tests/api/read_paths.rs checks the plans).

-- An order's callbacks newest first, and the journal filtered by order id
-- alone (the console's and the API's `orderid` filter names no project).
DROP INDEX callbacks_order;
CREATE INDEX callbacks_order ON callbacks (orderid, project_id, id);
-- The journal since a time; the overview's counts by outcome of the hours
-- not yet rolled up (an index-only scan: the outcome is in the index).
CREATE INDEX callbacks_received ON callbacks (received_at, outcome);
-- The journal filtered by API, newest first.
CREATE INDEX callbacks_api ON callbacks (api, id);
-- An order's events (its page, the feed by order).
CREATE INDEX outbox_order ON outbox (project_id, orderid, id);
-- The overview's open orders by state.
CREATE INDEX orders_open_state ON orders (state)
    WHERE closed_at IS NULL AND state IN ('awaiting_payment', 'needs_review');

-- The overview's callbacks by outcome, per hour (`received_at` divided by
-- 3 600 000), for the hours before `callback_hours_sealed.until`: counted
-- off the hot path (`store::rollup`) once an hour is over, so that the
-- overview reads at most two hours of the journal.
CREATE TABLE callback_hours (
    hour    BIGINT NOT NULL,
    outcome TEXT   NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (hour, outcome)
);
-- One row: every hour below `until` (milliseconds, a whole hour) is counted.
CREATE TABLE callback_hours_sealed (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    until BIGINT NOT NULL
);
