#!/usr/bin/env bash
# Load test of the callback service, one command:
#
#   bash scripts/load.sh
#
# Builds release, starts a throw-away PostgreSQL 15 cluster on a free loopback
# port, and for each repetition measures, each time against a fresh database
# and a freshly started `payhook serve`:
#   PostgreSQL  distinct paid callbacks, then each callback 4x at once
#   SQLite      the same
#   pgbench     16 clients: the same SQL as one paid callback, prepared
#               (scripts/pgbench-paid.sql: the ceiling); the same as payhook
#               issues it today (pool check SELECT 1 first, statements parsed
#               each time); and the same writes as one statement (upper bound)
# then prints every run's JSON line and a table of medians. Peak RSS is
# payhook's VmHWM; CPU seconds are split between payhook, PostgreSQL (the
# postmaster and all its backends) and the load generator over the firing
# phase only. Everything runs on loopback and is removed on exit.
#
# Knobs (environment): LOAD_REPS (3), LOAD_COUNT (8000 distinct callbacks per
# PostgreSQL run), LOAD_SQLITE_COUNT (5000), LOAD_DUP_COUNT (2000 callbacks x4),
# LOAD_CONCURRENCY (16 requests in flight), LOAD_PGBENCH_TX (1500 per client),
# LOAD_DURABLE (on: fsync=on, synchronous_commit=on; off: synchronous_commit=off),
# PAYHOOK_VECTORS_DIR (tests/vectors), LOAD_KEEP (1: keep the temp dir),
# LOAD_PG_CONF (extra postgresql.conf lines, e.g. "log_statement = 'all'"),
# LOAD_PARTS (postgres sqlite pgbench: which measurements, in this order),
# LOAD_QUIET_WAIT (5: seconds to wait for an idle machine before each one),
# LOAD_KEY_BITS (2048: the shared test key; 1024: a throw-away key of Paysera's size),
# LOAD_RATE (unset: as fast as LOAD_CONCURRENCY allows; a number: paced at that
# many callbacks per second, LOAD_CONCURRENCY the most in flight, latency
# counted from when each callback was due), LOAD_WARMUP_S (0: seconds at the
# start of each run left out of the latency figures).
# Signed callbacks are cached in target/loadgen/ (signing costs ~2 ms each).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
REPS=${LOAD_REPS:-3}
COUNT=${LOAD_COUNT:-8000}
SQLITE_COUNT=${LOAD_SQLITE_COUNT:-5000}
DUP_COUNT=${LOAD_DUP_COUNT:-2000}
CONC=${LOAD_CONCURRENCY:-16}
# The load generator is one address: past PAYHOOK_MAX_CONNECTIONS_PER_ADDRESS
# (64) it is let through like a proxy; at the default 16 the cap applies.
TRUST_LOADGEN=$(( CONC > 64 )); ((TRUST_LOADGEN)) || TRUST_LOADGEN=
PGB_CLIENTS=16
PGB_TX=${LOAD_PGBENCH_TX:-1500}
DURABLE=${LOAD_DURABLE:-on}
PARTS=${LOAD_PARTS:-postgres sqlite pgbench}
QUIET_WAIT=${LOAD_QUIET_WAIT:-5}
RATE=${LOAD_RATE:-}
WARMUP_S=${LOAD_WARMUP_S:-0}
VECTORS=${PAYHOOK_VECTORS_DIR:-$ROOT/tests/vectors}
TOKEN=load-admin-token-$(date +%s)-$$
export LOADGEN_CLK_TCK=$(getconf CLK_TCK)

say() { printf '[load %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

[[ -f $VECTORS/current/private.pem && -f $VECTORS/current/public.pem ]] ||
    die "test key pair not found in $VECTORS/current (set PAYHOOK_VECTORS_DIR)"

# The gateway's key: the shared 2048-bit test key by default; LOAD_KEY_BITS=1024
# signs with a throw-away 1024-bit key instead, the size Paysera's real key has.
KEY_BITS=${LOAD_KEY_BITS:-2048}
case $KEY_BITS in
    2048) GW_PRIVATE=$VECTORS/current/private.pem GW_PUBLIC=$VECTORS/current/public.pem ;;
    1024)
        mkdir -p "$ROOT/target/loadgen"
        GW_PRIVATE=$ROOT/target/loadgen/gateway-1024-private.pem
        GW_PUBLIC=$ROOT/target/loadgen/gateway-1024-public.pem
        if [[ ! -f $GW_PRIVATE || ! -f $GW_PUBLIC ]]; then
            openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$GW_PRIVATE" 2>/dev/null
            openssl pkey -in "$GW_PRIVATE" -pubout -out "$GW_PUBLIC"
        fi ;;
    *) die "LOAD_KEY_BITS must be 2048 or 1024" ;;
esac
command -v jq >/dev/null || die "jq is needed to summarise"
command -v curl >/dev/null || die "curl is needed to wait for readiness"

source "$ROOT/scripts/lib/throwaway-pg.sh"
find_pgbin initdb pg_ctl pgbench psql

started_all=$(date +%s)
say "building release (payhook and examples)"
cargo build --release --bin payhook --examples >&2
BUILT=${CARGO_TARGET_DIR:-$ROOT/target}/release
PAYHOOK=$BUILT/payhook
LOADGEN=$BUILT/examples/loadgen

throwaway_dir payhook-load ${LOAD_KEEP:-0}

# --- PostgreSQL --------------------------------------------------------------
PGPORT=$(free_port)
say "initdb (PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}')) in $TMP/pg, port $PGPORT"
as_pg "$PGBIN/initdb" -A trust -U postgres -E UTF8 --locale=C --no-sync -D "$TMP/pg" >/dev/null
# Production-ish: durable commits (fsync and synchronous_commit on unless
# LOAD_DURABLE=off), memory sized for a small server, no checkpoint mid-run.
as_pg tee -a "$TMP/pg/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$TMP'
max_connections = 100
shared_buffers = 512MB
wal_buffers = 16MB
max_wal_size = 4GB
checkpoint_timeout = 30min
fsync = on
synchronous_commit = $([[ $DURABLE == off ]] && echo off || echo on)
full_page_writes = on
log_min_messages = warning
${LOAD_PG_CONF:-}
EOF
as_pg "$PGBIN/pg_ctl" -D "$TMP/pg" -l "$TMP/pg.log" -w -t 60 start >/dev/null
POSTMASTER=$(head -1 "$TMP/pg/postmaster.pid")
PGURL="postgres://postgres@127.0.0.1:$PGPORT"
psql_do() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres "$@"; }

# --- payhook -----------------------------------------------------------------
# $1: DATABASE_URL ('' for SQLite in $2), $2: data dir, ($3: attempt).
# Sets PH_PID, PUB, ADM.
start_payhook() {
    local url=$1 dir=$2
    mkdir -p "$dir"
    PUB=$(free_port)
    ADM=$(free_port)
    while [[ $ADM == "$PUB" ]]; do ADM=$(free_port); done
    # A clean environment and a working directory without a .env.
    (cd "$dir" && exec env -i PATH="$PATH" HOME="$dir" RUST_LOG=warn \
        ${url:+DATABASE_URL="$url"} \
        PAYHOOK_DATA_DIR="$dir" \
        PAYSERA_PROJECT_ID=123 PAYSERA_PROJECT_PASSWORD=pass-1f2e3d \
        PAYSERA_PUBLIC_KEY_FILE="$GW_PUBLIC" \
        PAYHOOK_ADMIN_TOKEN="$TOKEN" \
        PAYHOOK_BIND="127.0.0.1:$PUB" PAYHOOK_ADMIN_BIND="127.0.0.1:$ADM" \
        ${TRUST_LOADGEN:+PAYHOOK_TRUSTED_PROXIES=127.0.0.1} \
        "$PAYHOOK" serve) >>"$dir/payhook.log" 2>&1 &
    PH_PID=$!
    for _ in $(seq 100); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$PUB/readyz" 2>/dev/null; then return; fi
        if ! kill -0 "$PH_PID" 2>/dev/null; then
            wait "$PH_PID" 2>/dev/null || true
            PH_PID=
            # Lost a race for a port: once more on new ones.
            if grep -q "Address already in use" "$dir/payhook.log" && ((${3:-0} < 3)); then
                start_payhook "$url" "$dir" $((${3:-0} + 1))
                return
            fi
            cat "$dir/payhook.log" >&2
            die "payhook exited"
        fi
        sleep 0.1
    done
    cat "$dir/payhook.log" >&2
    die "payhook not ready after 10s"
}

stop_payhook() {
    kill "$PH_PID" 2>/dev/null || true
    wait "$PH_PID" 2>/dev/null || true
    PH_PID=
}

RESULTS=$TMP/results.jsonl
mkdir -p "$ROOT/target/loadgen"
SIGNED=$ROOT/target/loadgen/signed-lg-$KEY_BITS.tsv
MAX_COUNT=$(printf '%s\n' "$COUNT" "$SQLITE_COUNT" "$DUP_COUNT" | sort -n | tail -1)
say "signing $MAX_COUNT distinct paid callbacks (ss2, RSA-SHA1), cached in $SIGNED"
"$LOADGEN" --sign-only --count "$MAX_COUNT" --prefix lg --signed "$SIGNED" \
    --key "$GW_PRIVATE"

# The machine is shared: before a measurement, wait (at most LOAD_QUIET_WAIT
# seconds) for it to be nearly idle, i.e. under a quarter of one CPU busy over
# a second. Whatever else still runs is reported as CPU "other".
wait_quiet() {
    local deadline=$((SECONDS + QUIET_WAIT)) b0 b1 t0 t1
    while :; do
        read -r b0 t0 < <(awk 'NR == 1 { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
        sleep 1
        read -r b1 t1 < <(awk 'NR == 1 { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
        if (((b1 - b0) * 4 * $(nproc) < (t1 - t0))); then return; fi
        if ((SECONDS >= deadline)); then
            say "machine still busy ($(((b1 - b0) * 100 / (t1 - t0 + 1)))% of all CPUs) after ${QUIET_WAIT}s; measuring anyway"
            return
        fi
    done
}

# $1 backend, $2 mode (distinct|dup4), $3 rep.
measure() {
    local backend=$1 mode=$2 rep=$3 url dir count dup watch=()
    dir=$TMP/run-$backend-$mode-$rep
    if [[ $backend == postgres ]]; then
        local db=ph_${mode}_$rep
        psql_do -c "CREATE DATABASE $db" postgres
        url=$PGURL/$db
        count=$COUNT
        watch=(--watch "postgres=$POSTMASTER")
    else
        url=
        count=$SQLITE_COUNT
    fi
    if [[ $mode == dup4 ]]; then dup=4; count=$DUP_COUNT; else dup=1; fi
    start_payhook "$url" "$dir"
    [[ $backend == postgres ]] && psql_do -c CHECKPOINT postgres
    wait_quiet
    "$LOADGEN" --public "http://127.0.0.1:$PUB" --admin "http://127.0.0.1:$ADM" \
        --token "$TOKEN" --key "$GW_PRIVATE" --prefix lg --signed "$SIGNED" \
        --count "$count" --dup "$dup" --concurrency "$CONC" ${RATE:+--rate "$RATE"} --warmup-s "$WARMUP_S" --max-seconds 60 \
        --label "$backend $mode" --watch "payhook=$PH_PID" "${watch[@]}" --rss-pid "$PH_PID" |
        jq -c --arg b "$backend" --arg m "$mode" --argjson r "$rep" \
            '{kind: "payhook", backend: $b, mode: $m, rep: $r} + .' | tee -a "$RESULTS" ||
        say "FAILED RUN ($backend $mode $rep): non-OK answers, wrong orders or no report; see above"
    if grep -qE 'ERROR|WARN' "$dir/payhook.log"; then
        say "payhook logged warnings/errors ($backend $mode $rep):"
        grep -E 'ERROR|WARN' "$dir/payhook.log" | sort | uniq -c | sort -rn | head -5 >&2
    fi
    stop_payhook
    [[ $backend == postgres ]] && psql_do -c "DROP DATABASE $db" postgres
    return 0
}

# The same writes in one statement, one round trip: an upper bound for what
# folding the transaction into a single CTE could reach (no decision logic).
cat >"$TMP/pgbench-paid-cte.sql" <<'EOF'
\set n :n + 1
\set oid :rep * 100000000 + :client_id * 1000000 + :n
\set now random(1700000000000, 1800000000000)
\set amount random(1000, 9999)
WITH g AS (INSERT INTO answered (project_id, orderid, identity, answered_at) VALUES ('123', :oid::text, md5('a' || :oid::text) || md5('b' || :oid::text), :now) ON CONFLICT DO NOTHING RETURNING identity),
 o AS (SELECT id FROM orders WHERE project_id = '123' AND orderid = :oid::text FOR UPDATE),
 c AS (INSERT INTO callbacks (received_at, project_id, orderid, identity, outcome, reason, http_status, method, raw_query, remote_addr) SELECT :now, '123', :oid::text, g.identity, 'fulfilled', NULL, 200, 'GET', 'data=' || repeat(md5(:oid::text), 9) || '&ss2=' || repeat(md5(:oid::text), 11), '127.0.0.1' FROM g RETURNING id),
 f AS (INSERT INTO fulfilments (project_id, orderid, callback_id, amount, currency, amount_checked, created_at) SELECT '123', :oid::text, c.id, :amount, 'EUR', true, :now FROM c),
 u AS (UPDATE orders SET state = 'paid', fulfilled_at = :now, updated_at = :now FROM o WHERE orders.id = o.id)
INSERT INTO outbox (kind, project_id, orderid, callback_id, payload, next_attempt_at, created_at) SELECT 'fulfilled', '123', :oid::text, c.id, json_build_object('event', 'fulfilled', 'project_id', '123', 'orderid', :oid::text, 'status', 1, 'test', false, 'amount', :amount::bigint, 'currency', 'EUR', 'payamount', :amount::bigint, 'paycurrency', 'EUR', 'refund_amount', NULL, 'requestid', '987654321', 'callback_id', c.id::bigint)::text, :now, :now FROM c;
EOF
# As payhook issues it today: the pool's connection check (SELECT 1) first,
# and statements parsed afresh each time (-M extended; diesel prepares and
# caches only the guard and the locking SELECT, sends the rest unnamed).
sed 's/^BEGIN;$/SELECT 1;\nBEGIN;/' "$ROOT/scripts/pgbench-paid.sql" >"$TMP/pgbench-paid-issued.sql"
grep -q '^SELECT 1;$' "$TMP/pgbench-paid-issued.sql" || die "could not derive the as-issued pgbench script"
chmod 644 "$TMP/pgbench-paid-cte.sql" "$TMP/pgbench-paid-issued.sql"

secs() { awk -v a="$1" -v b="$2" -v hz="$LOADGEN_CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }'; }

# $1 script (paid|cte), $2 rep: a fresh database migrated by payhook, orders in place.
pgbench_run() {
    local which=$1 rep=$2 db=pgb_$1_$2 script out ticks0 ticks1 client0 client1 busy0 busy1
    psql_do -c "CREATE DATABASE $db" postgres
    (cd "$TMP" && env -i PATH="$PATH" HOME="$TMP" DATABASE_URL="$PGURL/$db" \
        PAYSERA_PROJECT_ID=123 PAYSERA_PROJECT_PASSWORD=pass-1f2e3d \
        PAYSERA_PUBLIC_KEY_FILE="$GW_PUBLIC" PAYHOOK_ADMIN_TOKEN="$TOKEN" \
        PAYHOOK_DATA_DIR="$TMP/migrate" "$PAYHOOK" migrate) >/dev/null
    psql_do -d "$db" -c "INSERT INTO orders (project_id, orderid, amount, currency, state, created_at, updated_at)
        SELECT '123', ($rep * 100000000 + c * 1000000 + n)::text, 1000 + n % 9000, 'EUR', 'awaiting_payment', 0, 0
        FROM generate_series(0, $PGB_CLIENTS - 1) c, generate_series(1, $PGB_TX) n" \
        -c "VACUUM ANALYZE" -c CHECKPOINT
    local mode=prepared
    case $which in
        paid) script=$ROOT/scripts/pgbench-paid.sql ;;
        issued) script=$TMP/pgbench-paid-issued.sql; mode=extended ;;
        cte) script=$TMP/pgbench-paid-cte.sql ;;
    esac
    wait_quiet
    ticks0=$(pg_ticks)
    client0=$(reaped_ticks $$)
    busy0=$(machine_busy_ticks)
    out=$("$PGBIN/pgbench" -n -M "$mode" -c "$PGB_CLIENTS" -j 2 -t "$PGB_TX" -r \
        -D rep="$rep" -D n=0 -f "$script" -h 127.0.0.1 -p "$PGPORT" -U postgres "$db" 2>&1) ||
        { echo "$out" >&2; die "pgbench failed"; }
    ticks1=$(pg_ticks)
    client1=$(reaped_ticks $$)
    busy1=$(machine_busy_ticks)
    local tps lat failed
    tps=$(awk '/^tps = /{print $3}' <<<"$out")
    lat=$(awk '/^latency average = /{print $4}' <<<"$out")
    failed=$(awk '/number of failed transactions:/{print $5}' <<<"$out")
    # Every fulfilment row is one completed paid-callback transaction.
    local done
    done=$(psql_do -d "$db" -At -c "SELECT count(*) FROM fulfilments")
    jq -nc --arg w "$which" --argjson r "$rep" --argjson tps "$tps" --argjson lat "$lat" \
        --arg failed "${failed:-0}" --argjson done "$done" \
        --argjson pg "$(secs "$ticks0" "$ticks1")" --argjson cl "$(secs "$client0" "$client1")" \
        --argjson busy "$(secs "$busy0" "$busy1")" \
        '{kind: "pgbench", script: $w, rep: $r, tps: $tps, latency_avg_ms: $lat,
          failed: $failed, fulfilments: $done,
          cpu_s: {postgres: $pg, pgbench: $cl, other: ((($busy - $pg - $cl) * 100 | round) / 100), machine_busy: $busy}}' |
        tee -a "$RESULTS"
    [[ $which == paid ]] && echo "$out" | sed -n '/statement latencies/,$p' >"$TMP/pgbench-statements-$rep.txt"
    psql_do -c "DROP DATABASE $db" postgres
}

# CPU ticks of one process: utime+stime (own) or cutime+cstime (reaped children).
own_ticks() { awk '{ s = substr($0, index($0, ")") + 2); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat" 2>/dev/null || echo 0; }
reaped_ticks() { awk '{ s = substr($0, index($0, ")") + 2); split(s, f, " "); print f[14] + f[15] }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# The postmaster, its live descendants and the backends it has already reaped.
pg_ticks() {
    {
        reaped_ticks "$POSTMASTER"
        ps -e -o pid=,ppid= | awk -v root="$POSTMASTER" '
            { parent[$1] = $2 }
            END { for (p in parent) { q = p; while (q != "" && q != root && q > 1) q = parent[q]; if (q == root) print p } }' |
            while read -r p; do own_ticks "$p"; done
    } | awk '{ t += $1 } END { print t + 0 }'
}
# Busy ticks of the whole machine (all CPUs).
machine_busy_ticks() { awk 'NR == 1 { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

for rep in $(seq "$REPS"); do
    say "repetition $rep/$REPS"
    for part in $PARTS; do
        case $part in
            postgres | sqlite) measure "$part" distinct "$rep"; measure "$part" dup4 "$rep" ;;
            pgbench) pgbench_run paid "$rep"; pgbench_run issued "$rep"; pgbench_run cte "$rep" ;;
            *) die "LOAD_PARTS: unknown part $part" ;;
        esac
    done
done

# --- summary -----------------------------------------------------------------
elapsed=$(($(date +%s) - started_all))
{
    echo
    echo "payhook load test: $(date -u +%F) on $(nproc) CPU ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $REPS repetition(s), ${elapsed}s"
    echo "PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}'): fsync=on synchronous_commit=$([[ $DURABLE == off ]] && echo off || echo on) shared_buffers=512MB; SQLite: WAL, synchronous=FULL"
    echo "concurrency $CONC requests in flight; medians over repetitions"
    echo
    jq -rs '
      def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
      def f1: if . == null then "-" else (. * 10 | round / 10 | tostring) end;
      def pct($x; $of): if $of > 0 then ($x / $of * 100 | round | tostring) + "%" else "-" end;
      def split($c): $c.machine_total as $t |
        "\(pct($c.payhook // 0; $t)) / \(pct($c.postgres // 0; $t)) / \(pct($c.loadgen // $c.pgbench // 0; $t)) / \(pct($c.other // 0; $t))";
      [.[] | select(.kind == "payhook")] as $ph |
      [.[] | select(.kind == "pgbench" and .script == "paid")] as $pgb |
      [.[] | select(.kind == "pgbench" and .script == "cte")] as $cte |
      [.[] | select(.kind == "pgbench" and .script == "issued")] as $iss |
      ($pgb | map(.tps) | median) as $ceiling |
      "| backend | run | requests | callbacks/s | requests/s | p50 ms | p99 ms | max ms | peak RSS MiB | non-OK | CPU ms/callback payhook, postgres | CPU payhook / postgres / loadgen / other |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|",
      ( $ph | group_by(.backend + .mode)[] |
        (map(.callbacks_per_s) | median) as $m | (map(select(.callbacks_per_s == $m)) | .[0]) as $mid |
        "| \(.[0].backend) | \(if .[0].mode == "dup4" then "dup x4" else "distinct" end) | \(.[0].requests) | \($m | f1) | \(map(.requests_per_s) | median | f1) | \(map(.latency_ms.p50) | median) | \(map(.latency_ms.p99) | median) | \(map(.latency_ms.max) | max) | \(map(.peak_rss_kib) | max / 1024 | f1) | \(map(.non_ok) | add) | \($mid.cpu_s.payhook / $mid.callbacks * 1000 * 100 | round / 100), \(($mid.cpu_s.postgres // 0) / $mid.callbacks * 1000 * 100 | round / 100) | \(split($mid.cpu_s)) |" ),
      "",
      "CPU: shares of both cores over the firing phase of the median run; other = processes outside the test.",
      if ($pgb | length) == 0 then "pgbench: not run (LOAD_PARTS)" else "pgbench, same SQL as one paid callback, 16 clients, -M prepared: \($ceiling | f1) tx/s (runs: \($pgb | map(.tps | f1) | join(", ")))" end,
      if ($pgb | length) == 0 then empty else "  CPU postgres / pgbench / other of busy \($pgb | map(.cpu_s) | (map(.machine_busy) | median) as $b | map(select(.machine_busy == $b))[0] | "\(.postgres) / \(.pgbench) / \(.other) of \(.machine_busy) s"), \(($pgb | map(.cpu_s.postgres / .fulfilments * 1000) | median) * 100 | round / 100) ms postgres CPU per transaction" end,
      if ($iss | length) == 0 then empty else "pgbench, as payhook issues it (SELECT 1 first, -M extended): \($iss | map(.tps) | median | f1) tx/s (runs: \($iss | map(.tps | f1) | join(", "))), \(($iss | map(.cpu_s.postgres / .fulfilments * 1000) | median) * 100 | round / 100) ms postgres CPU per transaction" end,
      if ($cte | length) == 0 then empty else "pgbench, the same writes as one statement (upper bound): \($cte | map(.tps) | median | f1) tx/s (runs: \($cte | map(.tps | f1) | join(", ")))" end,
      ($ph | map(select(.backend == "postgres" and .mode == "distinct")) | [(map(.callbacks_per_s) | median), (map(.latency_ms.p99) | median)]) as [$pgcb, $pgp99] |
      "payhook PostgreSQL distinct / pgbench ceiling: \(if $pgcb == null or $ceiling == null then "-" else ($pgcb / $ceiling * 100 | round / 100 | tostring) end) with p99 \($pgp99 // "-") ms (goal: >= 0.6 with p99 < 20 ms)",
      "sanity checks failed: \($ph | map(.check.bad | length) | add), truncated runs: \($ph | map(select(.truncated)) | length)"
    ' "$RESULTS"
    echo
    echo "pgbench per-statement latencies (last repetition):"
    cat "$TMP/pgbench-statements-$REPS.txt" 2>/dev/null || true
} | tee "$ROOT/target/loadgen/last-summary.txt"
cp "$RESULTS" "$ROOT/target/loadgen/last-results.jsonl"
say "done in ${elapsed}s (results also in target/loadgen/last-*.{txt,jsonl})"
