-- The operator console's sessions: server-side, so that every
-- instance on this database knows them and signing out ends a session on all
-- of them. Only the SHA-256 of the session id is stored: a copy of this table
-- does not sign anyone in.
CREATE TABLE ui_sessions (
    id_hash     TEXT   PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    remote_addr TEXT
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);

-- One row per console form submitted: a form carries a fresh nonce, and a
-- second POST of the same form (a double click, a reload) finds its row and
-- does not act again. Deleted with the session.
CREATE TABLE ui_actions (
    session_hash TEXT   NOT NULL REFERENCES ui_sessions (id_hash) ON DELETE CASCADE,
    nonce        TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    -- Where the first POST sent the operator; a repeat is sent there too.
    location     TEXT,
    PRIMARY KEY (session_hash, nonce)
);
