-- The feed's order (GET /api/v1/events?after=): a position handed out after
-- the event's transaction committed, by one sequencer at a time, so positions
-- become visible in increasing order. Ids are handed out when a transaction
-- writes, and transactions commit in any order: a reader paging by id could
-- pass an id whose event was still uncommitted and never see it.
ALTER TABLE outbox ADD COLUMN feed_seq BIGINT;
-- Existing events keep their place: their position is their id.
UPDATE outbox SET feed_seq = id;
CREATE UNIQUE INDEX outbox_feed_seq ON outbox (feed_seq);
CREATE INDEX outbox_unsequenced ON outbox (id) WHERE feed_seq IS NULL;

-- The last position handed out. Its row lock (PostgreSQL) or the write lock
-- (SQLite) makes sequencers take turns, and positions are never handed out
-- twice, even after events are deleted.
CREATE TABLE feed_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    feed_seq BIGINT  NOT NULL
);
INSERT INTO feed_head (id, feed_seq) VALUES (1, COALESCE((SELECT max(id) FROM outbox), 0));
