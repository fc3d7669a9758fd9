#!/usr/bin/env bash
# One payhook build on one server and on a primary with a synchronous standby,
# in one session and alternating, so that the machine's noise falls on both:
# each turn runs payhook and then the transaction limit on the single server,
# then on the pair, ROUNDS times, with the shared bench's own scripts
# (run_payhook.sh, pg_limit.sh, summarize.py). Both stay up throughout:
#
#   B=../shared/bench
#   pg_ctl -D SINGLE_PGDATA -o '-p 5434 -c listen_addresses=127.0.0.1 -c max_connections=200' start
#   $B/sync-pair.sh start /tmp/pair 5432 5433
#   PAYHOOK_BIN=target/release/payhook BENCH_DIR=$B ROUNDS=3 scripts/bench-pair-alt.sh
#   $B/sync-pair.sh stop /tmp/pair
#
# SINGLE_PORT (5434) and PAIR_PORT (5432, the primary) say where they listen.
# Prints one summary table per setup; the runs are kept under $BENCH_DIR/results.
set -uo pipefail
: "${PAYHOOK_BIN:?the payhook binary}"
bench=$(cd "${BENCH_DIR:-../shared/bench}" && pwd)
export PAYHOOK_BIN KEY_DIR=${KEY_DIR:-$bench/keys1024} CALLBACKS=${CALLBACKS:-$bench/data/callbacks1024.txt}
single=${SINGLE_PORT:-5434} pair=${PAIR_PORT:-5432}
session=${OUT:-$bench/results/pair-alt-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$session"
# The bench reads the postmaster's pid through its own database: create it
# on both before the first payhook run (pg_limit.sh would, but only after).
for port in "$single" "$pair"; do
  psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'payhook_bench'" | grep -q 1 ||
    psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE payhook_bench"
done
for _ in $(seq "${ROUNDS:-3}"); do
  for setup in single pair; do
    port=$single; [ "$setup" = pair ] && port=$pair
    PGPORT=$port RUN_LABEL=$setup RESULTS_FILE=$session/$setup.jsonl "$bench/run_payhook.sh" >/dev/null ||
      echo "payhook on the $setup setup failed (its files are in $session)" >&2
    PGPORT=$port RESULTS_FILE=$session/$setup.jsonl "$bench/pg_limit.sh" txn >/dev/null ||
      echo "the limit on the $setup setup failed" >&2
  done
done
for setup in single pair; do
  echo "== $setup"
  python3 "$bench/summarize.py" "$session/$setup.jsonl"
done | tee "$session/table.md"
