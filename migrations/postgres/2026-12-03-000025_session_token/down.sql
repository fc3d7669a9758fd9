ALTER TABLE ui_sessions DROP COLUMN token_fingerprint;
