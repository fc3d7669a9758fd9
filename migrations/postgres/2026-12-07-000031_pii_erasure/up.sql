-- A stored request's personal data (the buyer's e-mail, names, phone, the
-- sender's address) is erased in place after PAYHOOK_PII_RETENTION, or at
-- once on request (`payhook erase`). What stays: the row's order, outcome,
-- time and answer, raw_length and raw_sha256 of the original request, and
-- in `facts` the decoded fields with the personal ones masked (amounts,
-- currency, status, test, request id).
ALTER TABLE callbacks ADD COLUMN erased_at BIGINT;
ALTER TABLE callbacks ADD COLUMN facts TEXT;
-- One row: every callback received before `until` is erased (the pass
-- reads from here on, through callbacks_received, never the erased past).
CREATE TABLE erased_until (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    until BIGINT NOT NULL
);
-- What was erased on request: who asked, when, for which order, how many rows.
CREATE TABLE erasures (
    id         BIGSERIAL PRIMARY KEY,
    project_id TEXT   NOT NULL,
    orderid    TEXT   NOT NULL,
    rows_erased BIGINT NOT NULL,
    actor      TEXT   NOT NULL,
    erased_at  BIGINT NOT NULL
);
CREATE INDEX erasures_order ON erasures (project_id, orderid);
