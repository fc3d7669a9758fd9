CREATE TABLE answered_prev (
    identity    TEXT PRIMARY KEY,
    answered_at BIGINT NOT NULL,
    attempt     TEXT,
    flag        TEXT
);
INSERT INTO answered_prev (identity, answered_at, attempt, flag)
SELECT identity, answered_at, attempt, flag FROM answered;
DROP TABLE answered;
ALTER TABLE answered_prev RENAME TO answered;
CREATE INDEX callbacks_first_of_delivery ON callbacks (identity, id)
    WHERE identity IS NOT NULL AND duplicate_of IS NULL;
