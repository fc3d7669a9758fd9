DROP TABLE erasures;
DROP TABLE erased_until;
ALTER TABLE callbacks DROP COLUMN facts;
ALTER TABLE callbacks DROP COLUMN erased_at;
