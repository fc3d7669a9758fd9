-- Delivery of the outbox to the shop (SHOP_NOTIFY_URL). An event is pending
-- until it is delivered (a 2xx) or dead (SHOP_NOTIFY_MAX_AGE passed); a manual
-- retry makes it pending again, with the same id.
ALTER TABLE outbox ADD COLUMN state TEXT NOT NULL DEFAULT 'pending';
-- Failed attempts since the event last became pending: the backoff step.
ALTER TABLE outbox ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
-- When an operator asked for it again: its age (SHOP_NOTIFY_MAX_AGE) counts from here.
ALTER TABLE outbox ADD COLUMN requeued_at BIGINT;
-- The worker sending it, until claimed_until: a worker that dies mid-attempt
-- loses its claim when it expires, and another worker takes the event.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until BIGINT;
ALTER TABLE outbox ADD COLUMN dead_at BIGINT;
UPDATE outbox SET state = 'delivered' WHERE delivered_at IS NOT NULL;

DROP INDEX outbox_pending;
-- What is due, and whether an order has an older event still pending (events
-- of one order are delivered in creation order).
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_order_pending ON outbox (project_id, orderid, id) WHERE state = 'pending';
CREATE INDEX outbox_state ON outbox (state, id);

-- Every delivery attempt, for GET /api/v1/events/{id}.
CREATE TABLE outbox_attempts (
    id           BIGSERIAL PRIMARY KEY,
    event_id     BIGINT  NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    attempted_at BIGINT  NOT NULL,
    duration_ms  BIGINT  NOT NULL,
    -- The shop's HTTP status, or NULL with the error (time-out, connection refused).
    status_code  INTEGER,
    error        TEXT
);
CREATE INDEX outbox_attempts_event ON outbox_attempts (event_id, id);
