CREATE INDEX callbacks_first_of_delivery ON callbacks (identity, id)
    WHERE identity IS NOT NULL AND duplicate_of IS NULL;
ALTER TABLE answered DROP COLUMN callback_id;
