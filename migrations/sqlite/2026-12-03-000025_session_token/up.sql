-- A console session is bound to the admin token that made it, so that a
-- restart with a new PAYHOOK_ADMIN_TOKEN ends every session the old one made:
-- the row keeps a keyed fingerprint of that token (an HMAC of a fixed label
-- keyed with it, never the token), and a session whose fingerprint is not the
-- running token's is no session. Rows made before this migration carry none
-- and end at the upgrade: nothing says which token made them.
ALTER TABLE ui_sessions ADD COLUMN token_fingerprint TEXT NOT NULL DEFAULT '';
