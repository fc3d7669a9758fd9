#!/usr/bin/env bash
# Two payhook builds side by side with the transaction limit, in one session:
# payhook A, payhook B, the limit, ROUNDS times, with the shared bench's own
# scripts (run_payhook.sh, pg_limit.sh, summarize.py). For a change to the
# paid path: build A and B, copy each binary aside, then
#
#   A=/tmp/payhook-new B=/tmp/payhook-old BENCH_DIR=../shared/bench ROUNDS=3 scripts/bench-ab.sh
#
# Needs what the shared bench needs (PostgreSQL on 127.0.0.1:5432, wrk, ...;
# its README), and its 1024-bit callbacks: KEY_DIR and CALLBACKS default to
# those. Prints the summary table; the rows are payhook-pg-A and payhook-pg-B.
set -euo pipefail
: "${A:?the first payhook binary}" "${B:?the second payhook binary}"
bench=${BENCH_DIR:-../shared/bench}
export KEY_DIR=${KEY_DIR:-$bench/keys1024} CALLBACKS=${CALLBACKS:-$bench/data/callbacks1024.txt}
session=$bench/results/ab-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$session"
export RESULTS_FILE=$session/runs.jsonl
for _ in $(seq "${ROUNDS:-3}"); do
  PAYHOOK_BIN=$A RUN_LABEL=A "$bench/run_payhook.sh"
  PAYHOOK_BIN=$B RUN_LABEL=B "$bench/run_payhook.sh"
  "$bench/pg_limit.sh" txn
done
python3 "$bench/summarize.py" "$RESULTS_FILE" | tee "$session/table.md"
