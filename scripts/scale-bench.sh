#!/usr/bin/env bash
# How do payhook's read paths and its paid callback hold up under a deep
# history? One command, from the project's root or anywhere:
#
#   ORDERS=500000 bash scripts/scale-bench.sh
#
# Two phases, each on a fresh database (SCALE_DB, dropped first) migrated by
# `payhook migrate` and served by a freshly started `payhook serve`:
#   1. empty: NEW orders registered (PUT /api/v1/orders/{id}) and their paid
#      callbacks sent one at a time; then the read paths timed on those rows.
#   2. ORDERS rows of history (skipped when ORDERS=0): filled in pure SQL
#      (per order: an order, a fulfilled callback and its duplicate, the
#      duplicate guard, a fulfilment, a delivered event and its attempt), then
#      VACUUM ANALYZE; the read paths timed (console and admin API, REPEAT
#      times each after 2 warm-ups), then NEW paid callbacks on top.
#   3. the retention pass (RETENTION_PASS=1, with ORDERS > 0): payhook
#      restarted on that history with PAYHOOK_PII_RETENTION and
#      PAYHOOK_DUPLICATE_RETENTION at 89d, so the oldest day falls due: the
#      eraser erases its rows in place and the pruner deletes its duplicates,
#      in their batches, while paid callbacks are sent one at a time until
#      both are done; their times and the callbacks' latency are reported.
#   4. partition against batched delete (same condition): a day of the
#      journal copied into a table partitioned by day and the partition
#      dropped, against the next day's rows deleted from the whole journal in
#      the pruner's batches of 1000 (each batch committed), in SQL.
# Prints one markdown table (median and p95 per path, per phase) with the row
# counts, database size and fill time. Every answer must be a 200 (a
# callback: body OK) or the run stops.
#
# Knobs (environment):
#   PGURL        postgres://postgres@127.0.0.1:5432 (a server, no database)
#   SCALE_DB     payhook_scale (dropped and created; left for inspection)
#   ORDERS       500000 orders of history (2 callback rows each)
#   REPEAT       20 timed requests per read path
#   NEW          500 new paid callbacks per phase
#   DURING       30000 paid callbacks ready for phase 3 (sent until the pass ends)
#   RETENTION_PASS  1 (0: skip phases 3 and 4)
#   PARTITION_ONLY  0 (1: phase 4 alone, on the SCALE_DB an earlier run
#                left; it takes the day after the oldest left)
#   PAID_AB      0 (N: instead of the phases, N turns of the paired
#                comparison of the paid path: two payhooks at once, one on a
#                fresh empty database (SCALE_DB_empty), one on the history an
#                earlier run left in SCALE_DB (on PORT+2 and PORT+3), and
#                NEW new paid callbacks for each, sent alternately one to
#                each, so that the machine's noise falls on both alike; one
#                column pair per turn)
#   COLD         0 (1, with PAID_AB, as root: the kernel's page cache dropped
#                before each turn, so the history's pages come from disk, as
#                on a server whose history outgrew its memory)
#   PAYHOOK_BIN  target/release/payhook (build it: cargo build --release)
#   KEY_DIR      ../shared/bench/keys1024 (private.pem signs, public.pem verifies)
#   GEN          ../shared/bench/gen_callbacks.py
#   CB_FILE      /tmp/scale-cb.txt (the generated callbacks; .orders.csv beside)
#   PORT         18080 (public listener; the admin listener is PORT+1)
#   DUPLICATE_RETENTION  365d (see start_payhook)
#   KEEP         0 (1: keep the temp dir with payhook's logs)
# Needs: psql, python3, curl. Nothing else (scripts/scale_bench.py is stdlib only).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
PGURL=${PGURL%/}
DB=${SCALE_DB:-payhook_scale}
ORDERS=${ORDERS:-500000}
REPEAT=${REPEAT:-20}
NEW=${NEW:-500}
DURING=${DURING:-30000}
RETENTION_PASS=${RETENTION_PASS:-1}
PARTITION_ONLY=${PARTITION_ONLY:-0}
PAID_AB=${PAID_AB:-0}
COLD=${COLD:-0}
PAYHOOK_BIN=${PAYHOOK_BIN:-target/release/payhook}
KEY_DIR=${KEY_DIR:-$ROOT/../shared/bench/keys1024}
GEN=${GEN:-$ROOT/../shared/bench/gen_callbacks.py}
CB_FILE=${CB_FILE:-/tmp/scale-cb.txt}
PORT=${PORT:-18080}
ADMIN_PORT=$((PORT + 1))
DUPLICATE_RETENTION=${DUPLICATE_RETENTION:-365d}
KEEP=${KEEP:-0}
HELPER=$ROOT/scripts/scale_bench.py
PUBLIC_URL=http://127.0.0.1:$PORT
ADMIN_URL=http://127.0.0.1:$ADMIN_PORT
# A fixed bench value, not a secret of any deployment; exported for the
# helper (read from the environment, never passed on a command line).
export PAYHOOK_ADMIN_TOKEN=bench-admin-token-0123456789abcdef

say() { printf '[scale-bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

[[ $DB =~ ^[a-z_][a-z0-9_]*$ ]] || die "SCALE_DB must be a plain lower-case identifier"
[[ $ORDERS =~ ^[0-9]+$ && $REPEAT =~ ^[1-9][0-9]*$ && $NEW =~ ^[1-9][0-9]*$ &&
   $DURING =~ ^[1-9][0-9]*$ && $RETENTION_PASS =~ ^[01]$ ]] ||
    die "ORDERS must be a number, REPEAT, NEW and DURING at least 1, RETENTION_PASS 0 or 1"
for tool in psql python3 curl; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
[[ -x $PAYHOOK_BIN ]] || die "no payhook binary at $PAYHOOK_BIN (cargo build --release)"
PAYHOOK_BIN=$(readlink -f "$PAYHOOK_BIN")
[[ -f $KEY_DIR/public.pem && -f $KEY_DIR/private.pem ]] ||
    die "$KEY_DIR must hold public.pem and private.pem (the callbacks are signed with the latter)"
[[ -f $GEN ]] || die "no callback generator at $GEN"
# A migration the binary does not have would make this a benchmark of an
# older schema: say so rather than measure it silently.
newest=$(basename "$(ls -d migrations/postgres/*/ | sort | tail -1)")
grep -qaF "$newest" "$PAYHOOK_BIN" ||
    say "warning: $PAYHOOK_BIN may not embed migration $newest (rebuild: cargo build --release)"

TMP=$(mktemp -d /tmp/scale-bench-XXXXXX)
RESULTS=$TMP/results.jsonl
PH_PID=
PH_PIDS=()
cleanup() {
    local rc=$?
    stop_payhook
    if [[ $KEEP == 1 || $rc != 0 ]]; then say "logs kept in $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# psql on the bench database (or another, as $1 with -d): errors stop it,
# notices stay out of the output.
pg() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 "$@"; }
pg_db() { pg -d "$PGURL/$DB" "$@"; }
pg_val() { pg_db -At -c "$1"; }

# The project the callbacks are signed for: whatever the generator uses.
{ read -r PROJECT_ID; read -r PROJECT_PASSWORD; } < <(python3 "$HELPER" constants "$GEN")
[[ $PROJECT_ID =~ ^[0-9]+$ ]] || die "unexpected project id in $GEN"

# payhook's environment, and nothing of the caller's: a SHOP_NOTIFY_URL or a
# PAYHOOK_* setting exported in the developer's shell would change what is
# measured. (An array, not a function: `env` then execs payhook, so $! is
# payhook's own pid and the trap stops payhook, not a subshell.)
#
# The history spans 90 days and payhook prunes duplicates older than
# PAYHOOK_DUPLICATE_RETENTION (30 days by default): left at that, the pruner
# would delete two thirds of the duplicates while the reads are timed,
# measuring the pruner instead. A retention longer than the history keeps
# the data set what the table reports.
PAYHOOK_ENV=(PATH="$PATH" HOME="$TMP"
    DATABASE_URL="$PGURL/$DB"
    PAYSERA_PROJECT_ID="$PROJECT_ID" PAYSERA_PROJECT_PASSWORD="$PROJECT_PASSWORD"
    PAYSERA_PUBLIC_KEY_FILE="$KEY_DIR/public.pem"
    PAYHOOK_ADMIN_TOKEN="$PAYHOOK_ADMIN_TOKEN"
    PAYHOOK_BIND="127.0.0.1:$PORT" PAYHOOK_ADMIN_BIND="127.0.0.1:$ADMIN_PORT"
    PAYHOOK_DATA_DIR="$TMP/data"
    PAYHOOK_DUPLICATE_RETENTION="$DUPLICATE_RETENTION")

fresh_database() {
    pg -d "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
    mkdir -p "$TMP/data"
    env -i "${PAYHOOK_ENV[@]}" "$PAYHOOK_BIN" migrate >>"$TMP/migrate.log" 2>&1 || { tail -20 "$TMP/migrate.log" >&2; die "payhook migrate failed"; }
}

start_payhook() {
    env -i "${PAYHOOK_ENV[@]}" "$PAYHOOK_BIN" serve >>"$TMP/payhook-${1// /-}.log" 2>&1 &
    PH_PID=$!
    PH_PIDS+=("$PH_PID")
    local i
    for i in $(seq 600); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$PUBLIC_URL/readyz" || true) == 200 ]] && break
        kill -0 "$PH_PID" 2>/dev/null || { tail -20 "$TMP/payhook-${1// /-}.log" >&2; die "payhook exited at start"; }
        ((i < 600)) || die "payhook not ready after 60s"
        sleep 0.1
    done
    # The overview reads the callbacks by outcome from callback_hours, which
    # payhook fills in the background after it starts (8 days of hours on a
    # fresh database). Timed before that is done, /ui/ would measure the
    # catch-up, not the steady state every later start is in.
    if [[ $(pg_val "SELECT to_regclass('callback_hours_sealed') IS NOT NULL") == t ]]; then
        for i in $(seq 300); do
            [[ $(pg_val "SELECT coalesce((SELECT until FROM callback_hours_sealed WHERE one = 1), 0)
                         >= ((extract(epoch FROM now()) * 1000)::bigint - 300000) / 3600000 * 3600000") == t ]] && break
            ((i < 300)) || die "payhook did not count the past hours into callback_hours within 300s"
            sleep 1
        done
    else
        say "warning: no callback_hours_sealed table: the binary predates migration 000030"
    fi
}

# Stops every payhook started (PAID_AB runs two at once).
stop_payhook() {
    local pid
    for pid in "${PH_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            wait "$pid" 2>/dev/null || true
        fi
    done
    PH_PIDS=()
    PH_PID=
}

# The history: ORDERS paid orders spread evenly over the last 90 days, each
# with the rows a real paid callback leaves behind plus one duplicate
# delivery. Ids are given explicitly (2i-1 for order i's callback, 2i for its
# duplicate, i elsewhere) so rows can point at each other without a join, and
# the sequences are moved past them afterwards so that payhook's own inserts
# continue from there. One INSERT ... SELECT per table, in id order, with the
# migrations' indexes in place: the indexes are the migrations' own, whatever
# they are when this runs.
fill() {
    local now_ms
    now_ms=$(date +%s%3N)
    pg_db -v n="$ORDERS" -v now_ms="$now_ms" -v project="'$PROJECT_ID'" <<'SQL'
\timing on
-- t(i): order i's paid callback, ms since the epoch; the step between orders
-- is 90 days / (n + 1), so the newest is a few seconds old at most and the
-- last hour holds its share (the console's since=1h reads it).
CREATE TEMP VIEW hist AS
    SELECT i,
           (:now_ms - 7776000000 + i * (7776000000 / (:n + 1)))::bigint AS t,
           'SCALE-' || lpad(i::text, 8, '0') AS oid
      FROM generate_series(1, :n) AS i;

INSERT INTO orders (id, project_id, orderid, amount, currency, state, fulfilled_at,
                    created_at, updated_at, test, amount_mode)
SELECT i, :project, oid, 1250, 'EUR', 'paid', t, t - 120000, t, false, 'fixed' FROM hist;

-- raw_query is shaped like a classic callback (data=…&ss1=…&ss2=…&ss3=…),
-- about 900 bytes of md5 hex: below PostgreSQL's TOAST threshold, so the
-- row is stored inline as a real callback's is. The identity is a SHA-256
-- as payhook's is; the duplicate carries its delivery's identity and points
-- at the first row. raw_sha256 is the digest of the stored text.
INSERT INTO callbacks (id, received_at, project_id, orderid, identity, outcome, reason,
                       http_status, method, raw_query, remote_addr, raw_length, raw_sha256,
                       raw_truncated, api, raw_unsigned, duplicate_of)
SELECT k, t + d * 2000, :project, oid, ident,
       CASE d WHEN 0 THEN 'fulfilled' ELSE 'duplicate' END, NULL, 200, 'GET', q,
       '82.135.152.' || (1 + i % 200), length(q), encode(sha256(convert_to(q, 'UTF8')), 'hex'),
       false, 'classic', NULL, CASE d WHEN 0 THEN NULL ELSE k - 1 END
  FROM (SELECT k, i, d, (:now_ms - 7776000000 + i * (7776000000 / (:n + 1)))::bigint AS t,
               'SCALE-' || lpad(i::text, 8, '0') AS oid,
               encode(sha256(convert_to('scale-' || i, 'UTF8')), 'hex') AS ident,
               'data=' || repeat(md5(i::text), 20) || '&ss1=' || md5('ss1' || i)
               || '&ss2=' || repeat(md5('ss2' || i), 5)
               || '&ss3=' || repeat(md5('ss3' || i), 2) AS q
          -- k = 2i-1 is order i's first delivery (d = 0), k = 2i its duplicate:
          -- one series, so the rows go in in id order.
          FROM (SELECT k, (k + 1) / 2 AS i, 1 - k % 2 AS d
                  FROM generate_series(1, 2 * :n) AS k) AS s) AS c;

-- The duplicate guard: one row per delivery answered OK, naming its row.
INSERT INTO answered (project_id, orderid, identity, answered_at, attempt, callback_id)
SELECT :project, oid, encode(sha256(convert_to('scale-' || i, 'UTF8')), 'hex'), t,
       md5('attempt' || i), 2 * i - 1
  FROM hist;

INSERT INTO fulfilments (id, project_id, orderid, callback_id, amount, currency,
                         amount_checked, created_at)
SELECT i, :project, oid, 2 * i - 1, 1250, 'EUR', true, t FROM hist;

-- The shop's event, as payhook writes it (kind = the outcome, 'fulfilled',
-- shown as order.paid; payload = domain::decision's notification), delivered
-- at the first attempt, in the feed at position i.
INSERT INTO outbox (id, kind, project_id, orderid, callback_id, payload, attempts,
                    next_attempt_at, delivered_at, created_at, state, failures, feed_seq)
SELECT i, 'fulfilled', :project, oid, 2 * i - 1,
       json_build_object('event', 'fulfilled', 'project_id', :project, 'orderid', oid,
                         'status', 1, 'test', false, 'amount', 1250, 'currency', 'EUR',
                         'payamount', 1250, 'paycurrency', 'EUR', 'refund_amount', NULL,
                         'requestid', (700000000 + i)::text, 'payment', 'hanza',
                         'api', 'classic')::text,
       1, t, t + 180, t, 'delivered', 0, i
  FROM hist;

INSERT INTO outbox_attempts (id, event_id, attempted_at, duration_ms, status_code, error)
SELECT i, i, t + 40, 140, 200, NULL FROM hist;

-- The feed's sequencer hands out positions after feed_head's: past the
-- history's, or the first new event would collide with position 1.
UPDATE feed_head SET feed_seq = (SELECT coalesce(max(feed_seq), 0) FROM outbox) WHERE id = 1;
SELECT setval(pg_get_serial_sequence(tbl, 'id'), :n * mul)
  FROM (VALUES ('orders', 1), ('callbacks', 2), ('fulfilments', 1), ('outbox', 1),
               ('outbox_attempts', 1)) AS s(tbl, mul);
SQL
}

TARGETS=()
# The ids the read paths ask for: the middle callback of the journal, its
# order, and a feed position 10 before the end.
read_targets() {
    pg_val "SELECT id, orderid FROM callbacks ORDER BY id
             OFFSET (SELECT count(*) / 2 FROM callbacks) LIMIT 1" | tr '|' ' '
    pg_val "SELECT greatest(coalesce(max(feed_seq), 0) - 10, 0) FROM outbox"
}

time_reads() {
    local cb_id oid after
    { read -r cb_id oid; read -r after; } < <(read_targets)
    [[ -n $cb_id && -n $oid ]] || die "no callback to read in $DB"
    say "[$1] timing read paths: callback $cb_id, order $oid, events after $after, $REPEAT each"
    TARGETS+=("read targets ($1)=callback $cb_id, order $oid, events after $after")
    python3 "$HELPER" reads --public "$PUBLIC_URL" --admin "$ADMIN_URL" --out "$RESULTS" \
        --phase "$1" --project "$PROJECT_ID" --repeat "$REPEAT" \
        --orderid "$oid" --callback-id "$cb_id" --after "$after" --dump "$TMP/answers-${1// /-}"
}

# Phase 3: the oldest day of the history falls out of retention.
retention_pass() {
    local phase="retention pass" day=86400000 now_ms cutoff due_pii due_dup t0 t_pii= t_dup= sender i
    now_ms=$(date +%s%3N)
    cutoff=$((now_ms - 89 * day))
    due_pii=$(pg_val "SELECT count(*) FROM callbacks WHERE received_at < $cutoff AND erased_at IS NULL")
    due_dup=$(pg_val "SELECT count(*) FROM callbacks WHERE outcome = 'duplicate' AND received_at < $cutoff")
    say "[$phase] $due_pii rows due for erasure, $due_dup duplicates due for deletion"
    PAYHOOK_ENV+=(PAYHOOK_PII_RETENTION=89d PAYHOOK_DUPLICATE_RETENTION=89d)
    rm -f "$TMP/pass-done"
    t0=$(date +%s.%N)
    start_payhook "$phase"
    helper_callbacks paid "$phase" --first "$NEW" --count "$DURING" --registered \
        --until "$TMP/pass-done" &
    sender=$!
    # Both passes start with payhook; each is done when nothing before the
    # cutoff (a little older than theirs) is left to do.
    for i in $(seq 7200); do
        [[ -z $t_pii && $(pg_val "SELECT count(*) FROM callbacks WHERE received_at < $cutoff AND erased_at IS NULL") == 0 ]] &&
            t_pii=$(date +%s.%N)
        [[ -z $t_dup && $(pg_val "SELECT count(*) FROM callbacks WHERE outcome = 'duplicate' AND received_at < $cutoff") == 0 ]] &&
            t_dup=$(date +%s.%N)
        [[ -n $t_pii && -n $t_dup ]] && break
        # The sender stops early only when its DURING callbacks run out (it
        # says so); the passes are still timed to their end.
        ((i < 7200)) || die "the retention passes did not end within 30 minutes"
        sleep 0.25
    done
    touch "$TMP/pass-done"
    wait "$sender" || die "the callback sender failed"
    stop_payhook
    local pii_s dup_s
    pii_s=$(awk -v a="$t0" -v b="$t_pii" 'BEGIN { printf "%.1f", b - a }')
    dup_s=$(awk -v a="$t0" -v b="$t_dup" 'BEGIN { printf "%.1f", b - a }')
    say "[$phase] erased $due_pii rows in ${pii_s}s, deleted $due_dup duplicates in ${dup_s}s"
    meta+=("PII erasure of the oldest day=$due_pii rows erased in $pii_s s from payhook's start"
           "duplicate pruning of the oldest day=$due_dup rows deleted in $dup_s s from payhook's start")
}

# Phase 4: the same day's rows dropped as a partition, against deleted in
# the pruner's batches from the whole journal. The partitioned copy holds
# one day (dropping a partition costs the same however many there are).
partition_or_delete() {
    local day=86400000 lo out
    lo=$(pg_val "SELECT min(received_at) + $day FROM callbacks")
    say "[partition] a day from $lo: DROP of its partition against batched DELETE"
    out=$(pg_db -At -v lo="$lo" -v hi="$((lo + day))" <<'SQL'
SET bench.lo = :'lo';
SET bench.hi = :'hi';
CREATE TABLE part_bench (LIKE callbacks INCLUDING DEFAULTS) PARTITION BY RANGE (received_at);
CREATE TABLE part_bench_day PARTITION OF part_bench FOR VALUES FROM (:lo) TO (:hi);
CREATE INDEX ON part_bench (received_at, outcome);
CREATE INDEX ON part_bench (orderid, project_id, id);
CREATE INDEX ON part_bench (id);
INSERT INTO part_bench SELECT * FROM callbacks WHERE received_at >= :lo AND received_at < :hi;
CREATE TEMP TABLE timed (what text, ms float8, n bigint);
DO $do$
DECLARE t timestamptz := clock_timestamp(); n bigint;
BEGIN
  SELECT count(*) INTO n FROM part_bench_day;
  DROP TABLE part_bench_day;
  INSERT INTO timed VALUES ('drop', extract(epoch FROM clock_timestamp() - t) * 1000, n);
END
$do$;
DROP TABLE part_bench;
DO $do$
DECLARE t timestamptz; n bigint;
BEGIN
  LOOP
    t := clock_timestamp();
    DELETE FROM callbacks WHERE id IN (SELECT id FROM callbacks
       WHERE received_at >= current_setting('bench.lo')::bigint
         AND received_at < current_setting('bench.hi')::bigint LIMIT 1000);
    GET DIAGNOSTICS n = ROW_COUNT;
    COMMIT;
    INSERT INTO timed VALUES ('batch', extract(epoch FROM clock_timestamp() - t) * 1000, n);
    COMMIT;
    EXIT WHEN n < 1000;
  END LOOP;
END
$do$;
SELECT round(ms::numeric, 1), n FROM timed WHERE what = 'drop';
SELECT count(*), sum(n), round(sum(ms)::numeric / 1000, 2),
       round((percentile_disc(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 1),
       round((percentile_disc(0.95) WITHIN GROUP (ORDER BY ms))::numeric, 1),
       round(max(ms)::numeric, 1)
  FROM timed WHERE what = 'batch';
SQL
)
    local drop_ms drop_n batches deleted total_s med p95 max
    { IFS='|' read -r drop_ms drop_n; IFS='|' read -r batches deleted total_s med p95 max; } <<<"$out"
    say "[partition] DROP of $drop_n rows: $drop_ms ms; DELETE of $deleted rows: $batches batches, ${total_s}s"
    meta+=("a day's partition dropped=$drop_n rows in $drop_ms ms"
           "the same day deleted in batches of 1000=$deleted rows, $batches batches, $total_s s; per batch median $med ms, p95 $p95 ms, max $max ms")
}

# The first NEW callbacks of CB_FILE are each phase's new paid ones; the
# DURING after them are phase 3's.
helper_callbacks() {
    local what=$1 phase=$2
    shift 2
    python3 "$HELPER" "$what" --public "$PUBLIC_URL" --admin "$ADMIN_URL" --out "$RESULTS" \
        --phase "$phase" --project "$PROJECT_ID" --callbacks "$CB_FILE" "$@"
}

time_paid() {
    say "[$1] registering $NEW orders and sending their paid callbacks one at a time"
    helper_callbacks paid "$1" --first 0 --count "$NEW"
}

total=$((NEW + DURING))
if ((PARTITION_ONLY)); then
    meta=()
    partition_or_delete
    printf '| %s |\n' "${meta[@]/=/ | }"
    exit 0
fi

# COLD=1: what the kernel caches of the database goes (PostgreSQL's own
# shared_buffers stay: 128 MB by default, a small part of a deep history).
drop_page_cache() {
    ((COLD)) || return 0
    sync
    echo 3 >/proc/sys/vm/drop_caches || die "COLD=1 needs root (/proc/sys/vm/drop_caches)"
}

if ((PAID_AB)); then
    # Each turn takes the next NEW callbacks on each side, after every one
    # whose order the history holds already (gen_callbacks.py numbers them).
    history_db=$DB
    base=$(pg_val "SELECT coalesce(max(substr(orderid, 5)::int), 0) FROM orders WHERE orderid ~ '^ORD-[0-9]+$'")
    total=$((base + 2 * PAID_AB * NEW))
    say "generating $total signed callbacks into $CB_FILE"
    KEY_DIR=$KEY_DIR python3 "$GEN" "$total" "$CB_FILE" >/dev/null
    [[ $(pg_val "SELECT count(*) > 1000 FROM callbacks") == t ]] ||
        die "$DB holds no history: run ORDERS=N bash scripts/scale-bench.sh first"
    saved_env=("${PAYHOOK_ENV[@]}")
    meta=("binary built=$(date -u -r "$PAYHOOK_BIN" +%FT%TZ)" "new paid callbacks per turn=$NEW"
          "page cache dropped before each turn=$COLD"
          "history=$(pg_val "SELECT count(*) FROM callbacks") callback rows")
    history_public=http://127.0.0.1:$((PORT + 2))
    history_admin=http://127.0.0.1:$((PORT + 3))
    for ((turn = 1; turn <= PAID_AB; turn++)); do
        first=$((base + (2 * turn - 2) * NEW))
        DB=${history_db}_empty
        PAYHOOK_ENV=("${saved_env[@]}" DATABASE_URL="$PGURL/$DB")
        fresh_database
        drop_page_cache
        start_payhook "empty $turn"
        DB=$history_db
        mkdir -p "$TMP/data-b"
        PAYHOOK_ENV=("${saved_env[@]}" PAYHOOK_BIND="127.0.0.1:$((PORT + 2))"
                     PAYHOOK_ADMIN_BIND="127.0.0.1:$((PORT + 3))" PAYHOOK_DATA_DIR="$TMP/data-b")
        PUBLIC_URL=$history_public start_payhook "history $turn"
        python3 "$HELPER" paid-pair --public "$PUBLIC_URL" --admin "$ADMIN_URL" \
            --public-b "$history_public" --admin-b "$history_admin" --out "$RESULTS" \
            --phase "empty $turn" --phase-b "history $turn" --project "$PROJECT_ID" \
            --callbacks "$CB_FILE" --first "$first" --first-b "$((first + NEW))" --count "$NEW"
        stop_payhook
    done
    PAYHOOK_ENV=("${saved_env[@]}")
    python3 "$HELPER" table "$RESULTS" "${meta[@]}"
    exit 0
fi

say "generating $total signed callbacks into $CB_FILE"
KEY_DIR=$KEY_DIR python3 "$GEN" "$total" "$CB_FILE" >/dev/null
[[ $(wc -l <"$CB_FILE") == "$total" ]] || die "$GEN wrote $(wc -l <"$CB_FILE") callbacks, not $total"

# Phase 1: nothing but what the phase itself sends.
EMPTY=empty
say "[$EMPTY] fresh database $DB"
fresh_database
start_payhook "$EMPTY"
time_paid "$EMPTY"
time_reads "$EMPTY"
stop_payhook

meta=(commit="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo '+dirty')"
      "binary built=$(date -u -r "$PAYHOOK_BIN" +%FT%TZ)" "new paid callbacks per phase=$NEW"
      "timed requests per read path=$REPEAT (after 2 warm-ups)")

# Phase 2: the history, then the same measurements on top of it.
if ((ORDERS > 0)); then
    FULL="$ORDERS orders"
    say "[$FULL] fresh database $DB, filling $ORDERS orders ($((2 * ORDERS)) callback rows)"
    fresh_database
    t0=$(date +%s.%N)
    fill >"$TMP/fill.log"
    t1=$(date +%s.%N)
    # VACUUM as well as ANALYZE: autovacuum would otherwise start on the
    # fresh tables in the middle of the timings, and until a table is
    # vacuumed its visibility map is empty, so index-only scans (the
    # overview's counts) read the heap as no long-running database does.
    # CHECKPOINT so the fill's dirty pages are not written during the timings.
    pg_db -c "VACUUM (ANALYZE)" -c "CHECKPOINT"
    t2=$(date +%s.%N)
    fill_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    vacuum_s=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }')
    say "[$FULL] filled in ${fill_s}s, VACUUM ANALYZE + CHECKPOINT in ${vacuum_s}s"
    IFS='|' read -r n_cb n_orders n_outbox n_answered db_size cb_size payload_avg < <(pg_val "
        SELECT (SELECT count(*) FROM callbacks), (SELECT count(*) FROM orders),
               (SELECT count(*) FROM outbox), (SELECT count(*) FROM answered),
               pg_size_pretty(pg_database_size(current_database())),
               pg_size_pretty(pg_total_relation_size('callbacks')),
               (SELECT round(avg(length(payload))) FROM outbox)")
    start_payhook "$FULL"
    time_reads "$FULL"
    time_paid "$FULL"
    if ((RETENTION_PASS)); then
        say "[$FULL] registering phase 3's $DURING orders"
        helper_callbacks register "$FULL" --first "$NEW" --count "$DURING"
    fi
    stop_payhook
    meta+=("callbacks rows (history)=$n_cb" "orders rows=$n_orders" "outbox rows=$n_outbox"
           "answered rows=$n_answered" "database size (after fill)=$db_size"
           "callbacks table + indexes=$cb_size" "outbox payload avg bytes=$payload_avg"
           "fill time (INSERTs)=$fill_s s" "VACUUM ANALYZE + CHECKPOINT=$vacuum_s s")
fi

if ((ORDERS > 0 && RETENTION_PASS)); then
    retention_pass
    partition_or_delete
fi

python3 "$HELPER" table "$RESULTS" "${meta[@]}" "${TARGETS[@]}"
