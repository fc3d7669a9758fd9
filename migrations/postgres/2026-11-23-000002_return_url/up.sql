-- The shop's own accept URL when buyers return through payhook, and when a
-- missing paid callback was alerted (claimed by one instance only).
ALTER TABLE orders ADD COLUMN accept_url TEXT;
ALTER TABLE orders ADD COLUMN missed_alerted_at BIGINT;
