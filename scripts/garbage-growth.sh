#!/usr/bin/env bash
# How much can unauthenticated garbage make payhook's database grow? One command:
#
#   bash scripts/garbage-growth.sh
#
# Builds payhook and examples/garbage.rs, starts a throw-away PostgreSQL 15
# cluster on a free loopback port, and for PostgreSQL, then SQLite, against a
# fresh database and a freshly started `payhook serve` with default settings:
#   - measures the database (PostgreSQL: pg_database_size and
#     pg_total_relation_size('callbacks'); SQLite: the database file after a
#     WAL checkpoint), sends GROWTH_COUNT POSTs of GROWTH_SIZE random bytes
#     each (NUL bytes and invalid UTF-8 included) and measures again;
#   - checks every request was answered 400 and stored as a rejected row of at
#     most PAYHOOK_REJECTED_MAX_BYTES (2048) bytes;
#   - restarts payhook with PAYHOOK_REJECTED_RETENTION=1s and times how long the
#     background task takes to delete the rows (PostgreSQL: shows the plan of
#     the prune query's row lookup, which uses the partial index).
# Prints one JSON line per backend. Everything runs on loopback and is removed
# on exit.
#
# Knobs (environment): GROWTH_COUNT (10000), GROWTH_SIZE (65536),
# GROWTH_CONCURRENCY (16), GROWTH_PROFILE (release; debug skips a release
# build and gives the same sizes), GROWTH_KEEP (1: keep the temp dir),
# PAYHOOK_VECTORS_DIR (tests/vectors: only the test public key is used).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
COUNT=${GROWTH_COUNT:-10000}
SIZE=${GROWTH_SIZE:-65536}
CONC=${GROWTH_CONCURRENCY:-16}
PROFILE=${GROWTH_PROFILE:-release}
VECTORS=${PAYHOOK_VECTORS_DIR:-$ROOT/tests/vectors}
TOKEN=growth-admin-token-$(date +%s)-$$

say() { printf '[growth %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

[[ -f $VECTORS/current/public.pem ]] || die "test public key not found in $VECTORS/current"
command -v curl >/dev/null || die "curl is needed to wait for readiness"
command -v jq >/dev/null || die "jq is needed to read the sender's report"
command -v sqlite3 >/dev/null || die "sqlite3 is needed to look into the SQLite file"
source "$ROOT/scripts/lib/throwaway-pg.sh"
find_pgbin initdb pg_ctl psql

case $PROFILE in
    release) say "building release (payhook, examples/garbage)"
             cargo build --release --bin payhook --example garbage >&2 ;;
    debug) cargo build --bin payhook --example garbage >&2 ;;
    *) die "GROWTH_PROFILE must be release or debug" ;;
esac
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE
PAYHOOK=$TARGET/payhook
GARBAGE=$TARGET/examples/garbage

throwaway_dir payhook-growth ${GROWTH_KEEP:-0}

PGPORT=$(free_port)
say "initdb (PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}')) in $TMP/pg, port $PGPORT"
as_pg "$PGBIN/initdb" -A trust -U postgres -E UTF8 --locale=C --no-sync -D "$TMP/pg" >/dev/null
as_pg tee -a "$TMP/pg/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$TMP'
log_min_messages = warning
EOF
as_pg "$PGBIN/pg_ctl" -D "$TMP/pg" -l "$TMP/pg.log" -w -t 60 start >/dev/null
PGURL="postgres://postgres@127.0.0.1:$PGPORT"
psql_at() { "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

# $1: DATABASE_URL ('' for SQLite in $2), $2: data dir, $3...: extra VAR=value.
start_payhook() {
    local url=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    PUB=$(free_port)
    ADM=$(free_port)
    while [[ $ADM == "$PUB" ]]; do ADM=$(free_port); done
    (cd "$dir" && exec env -i PATH="$PATH" HOME="$dir" RUST_LOG=warn \
        ${url:+DATABASE_URL="$url"} \
        PAYHOOK_DATA_DIR="$dir" \
        PAYSERA_PROJECT_ID=123 PAYSERA_PROJECT_PASSWORD=pass-1f2e3d \
        PAYSERA_PUBLIC_KEY_FILE="$VECTORS/current/public.pem" \
        PAYHOOK_ADMIN_TOKEN="$TOKEN" \
        PAYHOOK_BIND="127.0.0.1:$PUB" PAYHOOK_ADMIN_BIND="127.0.0.1:$ADM" \
        "$@" "$PAYHOOK" serve) >>"$dir/payhook.log" 2>&1 &
    PH_PID=$!
    for _ in $(seq 100); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$PUB/readyz" 2>/dev/null; then return; fi
        kill -0 "$PH_PID" 2>/dev/null || { cat "$dir/payhook.log" >&2; die "payhook exited"; }
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

# The sizes, as one JSON object, of the database $1 (a URL or a SQLite file).
sizes() {
    if [[ $1 == postgres://* ]]; then
        psql_at "$1" "SELECT json_build_object(
            'database_bytes', pg_database_size(current_database()),
            'callbacks_bytes', pg_total_relation_size('callbacks'))"
    else
        # Settled: the WAL folded into the file, as after a clean shutdown.
        sqlite3 "$1" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
        jq -nc --argjson b "$(stat -c %s "$1")" '{database_bytes: $b}'
    fi
}

# $1: SQL returning one number, on database $2.
scalar() {
    if [[ $2 == postgres://* ]]; then psql_at "$2" "$1"; else sqlite3 "$2" "$1"; fi
}

# $1 backend.
measure() {
    local backend=$1 url dir db report before after pruned_in plan='' started octets
    dir=$TMP/run-$backend
    if [[ $backend == postgres ]]; then
        psql_at "$PGURL/postgres" "CREATE DATABASE growth"
        url=$PGURL/growth db=$url octets="octet_length(raw_query)"
    else
        url='' db=$dir/payhook.sqlite3 octets="length(CAST(raw_query AS BLOB))"
    fi
    start_payhook "$url" "$dir"
    [[ $backend == sqlite ]] && { stop_payhook; before=$(sizes "$db"); start_payhook "$url" "$dir"; }
    [[ $backend == postgres ]] && { psql_at "$db" "CHECKPOINT" >/dev/null; before=$(sizes "$db"); }

    say "$backend: $COUNT x $SIZE random bytes, $CONC in flight"
    report=$(timeout 900 "$GARBAGE" --url "http://127.0.0.1:$PUB/paysera/callback" \
        --count "$COUNT" --size "$SIZE" --concurrency "$CONC")
    stop_payhook
    after=$(sizes "$db")
    local rows max_stored metric
    rows=$(scalar "SELECT count(*) FROM callbacks WHERE outcome = 'rejected'" "$db")
    max_stored=$(scalar "SELECT max($octets) FROM callbacks" "$db")
    [[ $rows == "$COUNT" ]] || say "WARNING: $rows rejected rows stored, expected $COUNT"

    if [[ $backend == postgres ]]; then
        # Only the oldest row matches: the lookup the prune statement makes, as
        # on a large journal where few rows have passed the retention.
        plan=$(psql_at "$db" "EXPLAIN SELECT id FROM callbacks WHERE outcome = 'rejected'
            AND received_at < (SELECT min(received_at) + 1 FROM callbacks) LIMIT 1000" |
            grep -o 'Index[A-Za-z ]* using [a-z_]*' | head -1 || true)
    fi
    say "$backend: pruning with PAYHOOK_REJECTED_RETENTION=1s"
    sleep 1.1
    started=$(date +%s.%N)
    start_payhook "$url" "$dir" PAYHOOK_REJECTED_RETENTION=1s
    while [[ $(scalar "SELECT count(*) FROM callbacks WHERE outcome = 'rejected'" "$db") != 0 ]]; do
        (($(date +%s) - ${started%.*} < 300)) || die "$backend: rows not pruned after 300 s"
        sleep 0.1
    done
    pruned_in=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    stop_payhook
    local pruned
    pruned=$(sizes "$db")
    jq -nc --arg backend "$backend" --argjson sender "$report" --argjson before "$before" \
        --argjson after "$after" --argjson pruned "$pruned" --argjson rows "$rows" \
        --argjson max_stored "$max_stored" --arg pruned_in "$pruned_in" --arg plan "$plan" \
        '{backend: $backend, sender: $sender, rejected_rows: $rows,
          max_raw_query_bytes: $max_stored, before: $before, after: $after,
          growth_bytes: ($after.database_bytes - $before.database_bytes),
          growth_per_request: (($after.database_bytes - $before.database_bytes) / $rows | floor),
          prune_seconds_incl_start: ($pruned_in | tonumber * 10 | round / 10),
          after_prune: $pruned, prune_lookup_plan: $plan}'
}

measure postgres
measure sqlite
