DROP TABLE feed_head;
DROP INDEX outbox_unsequenced;
DROP INDEX outbox_feed_seq;
ALTER TABLE outbox DROP COLUMN feed_seq;
