-- The duplicate guard names the row it guards (see the PostgreSQL migration
-- of the same name): the delivery answered OK, stored whole, which a
-- duplicate points at and a retry whose reply was lost reports. The row is
-- the first its transaction stored: the guard's own time, answered 200, not
-- a duplicate; a guard whose row was pruned names none.
ALTER TABLE answered ADD COLUMN callback_id BIGINT;
UPDATE answered SET callback_id = (
    SELECT c.id FROM callbacks c
     WHERE c.identity = answered.identity AND c.duplicate_of IS NULL
       AND c.received_at = answered.answered_at AND c.http_status = 200
     ORDER BY c.id LIMIT 1);
DROP INDEX callbacks_first_of_delivery;
