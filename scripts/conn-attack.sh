#!/usr/bin/env bash
# Issue 19, findings 3 and 4: the connection attacks against a release build
# with default settings, on loopback only. One command:
#
#   bash scripts/conn-attack.sh
#
# Builds payhook and examples/connflood.rs (release), then for each attack
# starts a fresh `payhook serve` (SQLite in a temp dir, defaults otherwise),
# runs the attack and prints one JSON line: the attacker's report (connections
# opened, closed by the server, answered 503 or 431, the fresh client's answer
# times from 127.0.0.200 once a second) plus the service's RSS before
# (VmRSS), at its peak (VmHWM) and after (VmRSS) from /proc/PID/status.
#
#   memory       950 connections from 127.0.0.10, each a 30 KB request line,
#                85 headers of 1 KB and 64 KiB of body but its last byte,
#                held 8 s (inside PAYHOOK_REQUEST_TIMEOUT=10s): finding 3.
#   memory-max   the worst the defaults allow: 960 connections (every public
#                slot) from 15 addresses (64 each, the per-address cap), each
#                a 15 KB head and 64 KiB of body but its last byte (a request's
#                head and body may not pass 80 KiB together), held 8 s.
#   memory-max-head  the same with a 71 KB head (a 64 KB request line, the
#                longest URI actix parses, and 7 KB of headers;
#                PAYHOOK_MAX_HEAD_BYTES is 72 KiB) and 9 KB of body but its
#                last byte.
#   keepalive    1 000 keep-alive connections from 127.0.0.10, each sending
#                GET /healthz every 3 s and reconnecting when closed, for 20 s:
#                finding 4.
#
# Knobs: CONN_ATTACKS (memory memory-max memory-max-head keepalive), CONN_KEEP (1: keep the
# temp dir), PAYHOOK_VECTORS_DIR (tests/vectors: only the test public key).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
ATTACKS=${CONN_ATTACKS:-memory memory-max memory-max-head keepalive}
VECTORS=${PAYHOOK_VECTORS_DIR:-$ROOT/tests/vectors}
TOKEN=conn-attack-admin-token-$(date +%s)-$$

say() { printf '[conn-attack %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

[[ -f $VECTORS/current/public.pem ]] || die "test public key not found in $VECTORS/current"
command -v curl >/dev/null || die "curl is needed to wait for readiness"
command -v jq >/dev/null || die "jq is needed to join the reports"
# Both ends of every connection are in this machine: two descriptors each.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

say "building release (payhook, examples/connflood)"
cargo build --release --bin payhook --example connflood >&2
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release
PAYHOOK=$TARGET/payhook
FLOOD=$TARGET/examples/connflood

TMP=$(mktemp -d /tmp/payhook-conn-XXXXXX)
PH_PID=
cleanup() {
    [[ -n $PH_PID ]] && { kill "$PH_PID" 2>/dev/null || true; wait "$PH_PID" 2>/dev/null || true; }
    [[ ${CONN_KEEP:-0} == 1 ]] && say "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 20000))
        if ! ss -Htan "( sport = :$p or dport = :$p )" | grep -q .; then echo "$p"; return; fi
    done
    die "no free loopback port found"
}

start_payhook() {
    local dir=$TMP/$1
    mkdir -p "$dir"
    PUB=$(free_port)
    ADM=$(free_port)
    (cd "$dir" && exec env -i PATH="$PATH" HOME="$dir" RUST_LOG=warn \
        PAYHOOK_DATA_DIR="$dir" \
        PAYSERA_PROJECT_ID=123 PAYSERA_PROJECT_PASSWORD=pass-1f2e3d \
        PAYSERA_PUBLIC_KEY_FILE="$VECTORS/current/public.pem" \
        PAYHOOK_ADMIN_TOKEN="$TOKEN" \
        PAYHOOK_BIND="127.0.0.1:$PUB" PAYHOOK_ADMIN_BIND="127.0.0.1:$ADM" \
        "$PAYHOOK" serve) >>"$dir/payhook.log" 2>&1 &
    PH_PID=$!
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$PUB/readyz" 2>/dev/null && return
        kill -0 "$PH_PID" 2>/dev/null || { cat "$dir/payhook.log" >&2; die "payhook exited"; }
        sleep 0.1
    done
    die "payhook not ready after 10s"
}

kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$PH_PID/status"; }

for attack in $ATTACKS; do
    case $attack in
        memory) args=(--attack stall --connections 950 --sources 1 --line-bytes 30000
                      --headers 85 --header-bytes 1000 --body-bytes 65536 --hold-s 8) ;;
        memory-max) args=(--attack stall --connections 960 --sources 15 --line-bytes 14000
                          --headers 1 --header-bytes 1000 --body-bytes 65536 --hold-s 8) ;;
        memory-max-head) args=(--attack stall --connections 960 --sources 15 --line-bytes 64000
                               --headers 7 --header-bytes 1000 --body-bytes 9000 --hold-s 8) ;;
        keepalive) args=(--attack keepalive --connections 1000 --sources 1
                         --interval-s 3 --hold-s 20) ;;
        *) die "unknown attack $attack" ;;
    esac
    start_payhook "$attack"
    before=$(kib VmRSS)
    say "$attack: payhook pid $PH_PID on 127.0.0.1:$PUB, RSS ${before} KiB; ${args[*]}"
    report=$("$FLOOD" --target "127.0.0.1:$PUB" "${args[@]}")
    sleep 1
    peak=$(kib VmHWM)
    after=$(kib VmRSS)
    jq -c --arg name "$attack" --argjson before "$before" --argjson peak "$peak" \
        --argjson after "$after" \
        '{name: $name} + . + {rss_before_mib: ($before / 1024 * 10 | round / 10),
          rss_peak_mib: ($peak / 1024 * 10 | round / 10),
          rss_after_mib: ($after / 1024 * 10 | round / 10)}' <<<"$report"
    kill "$PH_PID"; wait "$PH_PID" 2>/dev/null || true; PH_PID=
done
