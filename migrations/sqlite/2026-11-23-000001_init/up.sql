-- Orders the shop expects payment for (amount NULL: no expectation registered).
CREATE TABLE orders (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      TEXT    NOT NULL,
    orderid         TEXT    NOT NULL,
    amount          BIGINT,
    currency        TEXT,
    state           TEXT    NOT NULL DEFAULT 'awaiting_payment',
    flag            TEXT,
    refunded_amount BIGINT,
    fulfilled_at    BIGINT,
    return_token    TEXT,
    returned_at     BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (project_id, orderid)
);
CREATE UNIQUE INDEX orders_return_token ON orders (return_token) WHERE return_token IS NOT NULL;

-- Every request received on the callback endpoint, whatever became of it.
CREATE TABLE callbacks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at BIGINT  NOT NULL,
    project_id  TEXT,
    orderid     TEXT,
    identity    TEXT,
    outcome     TEXT    NOT NULL,
    reason      TEXT,
    http_status INTEGER NOT NULL,
    method      TEXT    NOT NULL,
    raw_query   TEXT    NOT NULL,
    remote_addr TEXT
);
CREATE INDEX callbacks_order ON callbacks (project_id, orderid);
CREATE INDEX callbacks_outcome ON callbacks (outcome, id);

-- Identities of callbacks answered OK: the duplicate guard.
CREATE TABLE answered (
    identity    TEXT PRIMARY KEY,
    answered_at BIGINT NOT NULL
);

-- At most one fulfilment per order, whatever arrives twice or at once.
CREATE TABLE fulfilments (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id     TEXT    NOT NULL,
    orderid        TEXT    NOT NULL,
    callback_id    BIGINT  NOT NULL,
    amount         BIGINT,
    currency       TEXT,
    amount_checked BOOLEAN NOT NULL,
    created_at     BIGINT  NOT NULL,
    UNIQUE (project_id, orderid)
);

-- Notifications for the shop, written in the callback's transaction.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    project_id      TEXT    NOT NULL,
    orderid         TEXT,
    callback_id     BIGINT  NOT NULL,
    payload         TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    delivered_at    BIGINT,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
