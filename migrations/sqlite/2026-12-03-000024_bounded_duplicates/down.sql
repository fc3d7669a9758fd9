DROP INDEX callbacks_duplicate_received;
DROP INDEX callbacks_duplicate_of;
DROP INDEX callbacks_first_of_delivery;
ALTER TABLE callbacks DROP COLUMN duplicate_of;
ALTER TABLE callbacks DROP COLUMN raw_unsigned;
