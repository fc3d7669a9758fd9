-- The SQL of one paid callback as plain statements, as payhook issued them
-- before its paid path became one function call (migration 000028; today's
-- paid writes are payhook_pay and payhook_pay_batch, migration 000032): the
-- ceiling `scripts/load.sh` reports beside payhook, a registered, unpaid
-- order whose amount matches and a fresh identity, for pgbench:
--
--   pgbench -n -M prepared -c 16 -j 2 -t 2500 -D rep=1 -D n=0 -f scripts/pgbench-paid.sql DB
--
-- on a database migrated by `payhook migrate`, with orders
-- (project '123', orderid rep*100000000 + client*1000000 + n, n = 1..t) in place
-- (scripts/load.sh creates them). :n counts each client's transactions: pgbench
-- keeps a client's variables from one transaction to the next, so every
-- transaction gets its own order and identity and none conflicts.
-- Bind parameters in payhook are literals or pgbench variables here. No
-- `:word` may appear inside a string literal: pgbench would take it for a variable.

\set n :n + 1
\set oid :rep * 100000000 + :client_id * 1000000 + :n
\set now random(1700000000000, 1800000000000)
\set amount random(1000, 9999)
BEGIN;
-- The duplicate guard (identity: 64 hex characters, as hex(sha256)).
INSERT INTO answered (project_id, orderid, identity, answered_at) VALUES ('123', :oid::text, md5('a' || :oid::text) || md5('b' || :oid::text), :now) ON CONFLICT DO NOTHING;
-- The order, under lock.
SELECT project_id, orderid, amount, currency, state, flag, refunded_amount, fulfilled_at, returned_at, return_token FROM orders WHERE project_id = '123' AND orderid = :oid::text LIMIT 1 FOR UPDATE;
-- The stored callback (raw_query about as long as a real data+ss2 query).
INSERT INTO callbacks (received_at, project_id, orderid, identity, outcome, reason, http_status, method, raw_query, remote_addr) VALUES (:now, '123', :oid::text, md5('a' || :oid::text) || md5('b' || :oid::text), 'fulfilled', NULL, 200, 'GET', 'data=' || repeat(md5(:oid::text), 9) || '&ss2=' || repeat(md5(:oid::text), 11), '127.0.0.1') RETURNING id \gset cb_
INSERT INTO fulfilments (project_id, orderid, callback_id, amount, currency, amount_checked, created_at) VALUES ('123', :oid::text, :cb_id, :amount, 'EUR', true, :now);
UPDATE orders SET state = 'paid', fulfilled_at = :now, updated_at = :now WHERE project_id = '123' AND orderid = :oid::text;
-- The shop's notification.
INSERT INTO outbox (kind, project_id, orderid, callback_id, payload, next_attempt_at, created_at) VALUES ('fulfilled', '123', :oid::text, :cb_id, json_build_object('event', 'fulfilled', 'project_id', '123', 'orderid', :oid::text, 'status', 1, 'test', false, 'amount', :amount::bigint, 'currency', 'EUR', 'payamount', :amount::bigint, 'paycurrency', 'EUR', 'refund_amount', NULL, 'requestid', '987654321', 'callback_id', :cb_id::bigint)::text, :now, :now);
COMMIT;
