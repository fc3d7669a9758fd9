ALTER TABLE orders DROP COLUMN missed_alerted_at;
ALTER TABLE orders DROP COLUMN accept_url;
