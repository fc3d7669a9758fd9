-- The duplicate guard, keyed like the order it belongs to and naming the row
-- it guards: see the PostgreSQL migration of the same name. Each old guard is
-- keyed and named from the first row its transaction stored (at the guard's
-- own time, answered 200, not a duplicate); one whose row has been pruned
-- since is dropped.
CREATE TABLE answered_next (
    project_id  TEXT NOT NULL,
    orderid     TEXT NOT NULL,
    identity    TEXT NOT NULL,
    answered_at BIGINT NOT NULL,
    attempt     TEXT,
    flag        TEXT,
    callback_id BIGINT,
    PRIMARY KEY (project_id, orderid, identity)
);
INSERT INTO answered_next (project_id, orderid, identity, answered_at, attempt, flag, callback_id)
SELECT c.project_id, coalesce(c.orderid, ''), a.identity, a.answered_at, a.attempt, a.flag, c.id
  FROM answered a
  JOIN callbacks c ON c.id = (
      SELECT min(f.id) FROM callbacks f
       WHERE f.identity = a.identity AND f.duplicate_of IS NULL
         AND f.received_at = a.answered_at AND f.http_status = 200
         AND f.project_id IS NOT NULL);
DROP TABLE answered;
ALTER TABLE answered_next RENAME TO answered;
DROP INDEX callbacks_first_of_delivery;
