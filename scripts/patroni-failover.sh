#!/usr/bin/env bash
# A Patroni failover under load loses no acknowledged payment.
#
#   bash scripts/patroni-failover.sh        (from anywhere; as root, as CI does)
#
# Builds, from Debian's own packages, the cluster of deploy/ha/patroni/ on
# loopback: one etcd, three Patroni nodes pg1..pg3 with synchronous_mode and
# synchronous_mode_strict, synchronous_commit=on. payhook runs on a multi-host
# DATABASE_URL (target_session_attrs=read-write). A gateway (scripts/patroni/
# failover.py drive) pays N orders, each signed callback sent twice at once,
# anything not answered OK sent again 100 ms later. Once THRESHOLD are paid,
# the leader "machine dies": its Patroni and every PostgreSQL process of its
# data directory get SIGKILL. Patroni promotes the synchronous standby once
# the leader key expires (ttl 10 s); the gateway keeps sending until every
# order is answered OK or the deadline passes. Then, on the new leader: every
# order answered OK is fulfilled exactly once, none twice, every order paid.
# Exit 0 only then; otherwise a FAIL line says what, and the logs' tails follow.
#
# Installs what is missing (apt-get: patroni etcd-server python3-psycopg2),
# never starts Debian's packaged services, runs everything as background
# processes of its own (Patroni and PostgreSQL as the postgres user, since
# Patroni refuses root) in a temp dir under /tmp, and stops and removes all of
# it on exit, whatever happened.
#
# Knobs (environment): PAYHOOK_BIN (target/debug/payhook; built with
# `cargo build` when the default is missing), PAYHOOK_LOADGEN_BIN (the
# loadgen example beside it: it signs the callbacks with the test key),
# PF_ORDERS (300), PF_THRESHOLD (100), PF_RATE (40 first deliveries/s),
# PF_DEADLINE (120 s for the whole drive), PF_KEEP (1: keep the temp dir).
set -eEuo pipefail
# Any command failing unexpectedly says where, before the cleanup runs.
trap 'say "FAIL: line $LINENO: \"$BASH_COMMAND\" exited $?"' ERR

# Hermetic: libpq's and Patroni's environment variables (PGHOST, PATRONI_NAME,
# ...) would silently change what psql connects to and how Patroni runs.
for v in $(compgen -v | grep -E '^(PG|PATRONI_)' || true); do unset "$v"; done

cd "$(dirname "$0")/.."
ROOT=$(pwd)
HELPER=$ROOT/scripts/patroni/failover.py
PGBIN=/usr/lib/postgresql/15/bin
ORDERS=${PF_ORDERS:-300}
THRESHOLD=${PF_THRESHOLD:-100}
RATE=${PF_RATE:-40}
DEADLINE=${PF_DEADLINE:-120}
KEEP=${PF_KEEP:-0}
SCOPE=payhook-failover
NODES=(pg1 pg2 pg3)
STARTED=$(date +%s)

say() { printf '[patroni-failover %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }
# Seconds since the epoch, to the microsecond, without a process (the kill is
# timed with it); a locale may write a comma.
now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; }

# --- 1. what is needed -------------------------------------------------------
# Debian's packages; their postinst scripts would start etcd and patroni as
# services, so a policy-rc.d that denies every start is in place while apt
# runs, unless the machine already has one (containers usually do).
POLICY_RC_CREATED=
install_missing() {
    local missing=()
    command -v patroni >/dev/null || missing+=(patroni)
    command -v etcd >/dev/null || missing+=(etcd-server)
    /usr/bin/python3 -c 'import psycopg2' 2>/dev/null || missing+=(python3-psycopg2)
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "missing ${missing[*]}; install them (apt-get install -y ${missing[*]}) or run as root"
    say "installing ${missing[*]}"
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# patroni-failover.sh: no service starts during its apt-get\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=1
    fi
    # Package lists may be missing or stale on a fresh machine: update once
    # and try again.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >"$TMP/apt.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$TMP/apt.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$TMP/apt.log" 2>&1 ||
            { tail -20 "$TMP/apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
    fi
    remove_policy_rc
    if ! command -v patroni >/dev/null || ! command -v etcd >/dev/null; then
        die "patroni or etcd still missing after apt-get install"
    fi
}
remove_policy_rc() {
    if [[ -n $POLICY_RC_CREATED ]]; then
        rm -f /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=
    fi
}

# --- cleanup: everything this run started, whatever happened -----------------
TMP=
ETCD_PID=
PAYHOOK_PID=
DRIVER_PID=
cleanup() {
    local rc=$?
    set +e
    trap - EXIT ERR
    remove_policy_rc
    if ((rc != 0)) && [[ -n $TMP ]]; then show_logs; fi
    if [[ -n $DRIVER_PID ]]; then kill -KILL "$DRIVER_PID" 2>/dev/null; wait "$DRIVER_PID" 2>/dev/null; fi
    if [[ -n $PAYHOOK_PID ]] && kill -0 "$PAYHOOK_PID" 2>/dev/null; then
        kill -TERM "$PAYHOOK_PID"
        for _ in $(seq 50); do kill -0 "$PAYHOOK_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PAYHOOK_PID" 2>/dev/null
        wait "$PAYHOOK_PID" 2>/dev/null
    fi
    if [[ -n $TMP ]]; then
        local node pid
        # Patroni first, so that none restarts its PostgreSQL meanwhile.
        for node in "${NODES[@]}"; do
            pid=$(cat "$TMP/$node/patroni.pid" 2>/dev/null) && kill -KILL "$pid" 2>/dev/null
        done
        for node in "${NODES[@]}"; do
            if [[ -f $TMP/$node/data/postmaster.pid ]]; then
                as_pg "$PGBIN/pg_ctl" -D "$TMP/$node/data" -m immediate -w -t 10 stop >/dev/null 2>&1
            fi
            # Anything of that node left over (a backend whose postmaster is
            # gone, a pg_basebackup or pg_rewind that was running).
            kill_cwd "$TMP/$node/data"
        done
    fi
    if [[ -n $ETCD_PID ]]; then
        kill -TERM "$ETCD_PID" 2>/dev/null
        for _ in $(seq 30); do kill -0 "$ETCD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$ETCD_PID" 2>/dev/null
    fi
    if [[ -n $TMP ]]; then
        if [[ $KEEP == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
    fi
    say "$( ((rc == 0)) && echo passed || echo "failed (exit $rc)") in $(($(date +%s) - STARTED))s"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_logs() {
    local f
    for f in "$TMP"/pg?/patroni.log "$TMP/etcd.log" "$TMP/payhook.log" "$TMP/driver.log"; do
        [[ -s $f ]] || continue
        printf -- '----- last lines of %s\n' "${f#"$TMP"/}" >&2
        tail -n 25 "$f" >&2
    done
}

# Every process whose working directory is DIR (PostgreSQL's postmaster and
# all its children chdir into the data directory), SIGKILLed until none is left.
cwd_pids() {
    # find, not a readlink per process: this runs while the node is dying.
    # (find complains about the processes that end while it reads.)
    { find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$1" 2>/dev/null || true; } | cut -d/ -f3
}
kill_cwd() {
    local pids
    for _ in $(seq 50); do
        pids=$(cwd_pids "$1")
        [[ -n $pids ]] || return 0
        # shellcheck disable=SC2086 # one word per pid
        kill -KILL $pids 2>/dev/null || true
        sleep 0.05
    done
    say "warning: processes in $1 survive SIGKILL: $pids"
}

# The children of a process, from /proc/*/stat (field 4 is the parent's pid;
# the command name in field 2 may hold spaces, so read after its ')'). Bash
# builtins only, no process per entry: this runs while the node is dying.
children_of() {
    local p stat ppid
    for p in /proc/[0-9]*; do
        { read -r stat <"$p/stat"; } 2>/dev/null || continue
        stat=${stat##*) }
        read -r _ ppid _ <<<"$stat"
        [[ $ppid == "$1" ]] && echo "${p#/proc/}"
    done
    return 0
}

# --- the temp dir and the postgres user -------------------------------------------
TMP=$(mktemp -d /tmp/patroni-failover-XXXXXX)
chmod 755 "$TMP"
if [[ $(id -u) == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no postgres user"
    chown postgres: "$TMP"
    as_pg() { (cd "$TMP" && runuser -u postgres -- "$@"); }
else
    as_pg() { (cd "$TMP" && "$@"); }
fi

install_missing
[[ -x $PGBIN/postgres && -x $PGBIN/pg_ctl && -x $PGBIN/psql ]] || die "PostgreSQL 15 server binaries not found in $PGBIN"
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
[[ -f $HELPER ]] || die "$HELPER is missing"

# payhook, and loadgen to sign the callbacks with the test key (payhook's own
# signer, the one the tests use). Built only when the defaults are missing.
PAYHOOK_BIN=${PAYHOOK_BIN:-target/debug/payhook}
LOADGEN_BIN=${PAYHOOK_LOADGEN_BIN:-$(dirname "$PAYHOOK_BIN")/examples/loadgen}
if [[ ! -x $PAYHOOK_BIN || ! -x $LOADGEN_BIN ]]; then
    [[ $PAYHOOK_BIN == target/debug/payhook ]] || die "$PAYHOOK_BIN or $LOADGEN_BIN not found"
    say "building payhook and the loadgen example (cargo build)"
    cargo build -q --bin payhook --example loadgen || die "cargo build failed"
fi
PAYHOOK_BIN=$(readlink -f "$PAYHOOK_BIN")
LOADGEN_BIN=$(readlink -f "$LOADGEN_BIN")
KEY_DIR=$ROOT/tests/vectors/current
[[ -f $KEY_DIR/private.pem && -f $KEY_DIR/public.pem ]] || die "test key pair not found in $KEY_DIR"

# Psql on one node as the superuser (trust on loopback), failing on any error.
sql() {
    local port=$1 db=$2
    shift 2
    PGCONNECT_TIMEOUT=5 "$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

# --- 2. etcd and three Patroni nodes on loopback -----------------------------------
read -r ETCD_CLIENT ETCD_PEER REST1 REST2 REST3 PG1 PG2 PG3 PUBLIC ADMIN <<<"$("$PY" "$HELPER" ports 10)"
declare -A REST=([pg1]=$REST1 [pg2]=$REST2 [pg3]=$REST3)
declare -A PGPORT=([pg1]=$PG1 [pg2]=$PG2 [pg3]=$PG3)

say "etcd on 127.0.0.1:$ETCD_CLIENT (temp dir $TMP)"
etcd --name etcd1 --data-dir "$TMP/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "etcd1=http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster-state new --initial-cluster-token "$SCOPE-$$" \
    --listen-metrics-urls '' >"$TMP/etcd.log" 2>&1 &
ETCD_PID=$!
"$PY" "$HELPER" wait-http "http://127.0.0.1:$ETCD_CLIENT/health" 30 --pid "$ETCD_PID" ||
    die "etcd did not become healthy (etcd.log above)"

# The production settings of deploy/ha/patroni/patroni.yml, on loopback: trust
# instead of passwords and TLS, no watchdog, ttl 10 s so the run is short.
write_config() {
    local node=$1 dir=$TMP/$1
    mkdir -p "$dir"
    cat >"$dir/patroni.yml" <<EOF
scope: $SCOPE
namespace: /service/
name: $node
restapi:
  listen: 127.0.0.1:${REST[$node]}
  connect_address: 127.0.0.1:${REST[$node]}
etcd3:
  hosts: [127.0.0.1:$ETCD_CLIENT]
bootstrap:
  dcs:
    # The leader key expires 10 s after the leader's last update: that long
    # (plus a loop) before the synchronous standby is promoted.
    ttl: 10
    loop_wait: 1
    retry_timeout: 5
    # Every commit waits until a standby has flushed it; only that standby
    # may be promoted; with none left commits wait instead of going on alone.
    synchronous_mode: true
    synchronous_mode_strict: true
    synchronous_node_count: 1
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_log_hints: "on"
        synchronous_commit: "on"
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
    - data-checksums
  pg_hba:
    - local all all trust
    - host replication all 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:${PGPORT[$node]}
  connect_address: 127.0.0.1:${PGPORT[$node]}
  data_dir: $dir/data
  bin_dir: $PGBIN
  pgpass: $dir/pgpass
  authentication:
    superuser:
      username: postgres
      password: unused-trust
    replication:
      username: replicator
      password: unused-trust
  parameters:
    unix_socket_directories: $dir
  pg_hba:
    - local all all trust
    - host replication all 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
watchdog:
  mode: off
EOF
    chmod 600 "$dir/patroni.yml"
    [[ $(id -u) != 0 ]] || chown -R postgres: "$dir"
}

# Patroni as the postgres user; the shell writes its own pid and then execs
# Patroni, so the pid file is Patroni's own (runuser stays as its parent).
start_patroni() {
    local node=$1 dir=$TMP/$1
    # shellcheck disable=SC2016 # expanded by the inner shell
    as_pg sh -c 'echo $$ >"$1"; exec patroni "$2"' sh "$dir/patroni.pid" "$dir/patroni.yml" \
        >"$dir/patroni.log" 2>&1 &
}

for node in "${NODES[@]}"; do
    write_config "$node"
    start_patroni "$node"
done
say "patroni ${NODES[*]}: REST ${REST1} ${REST2} ${REST3}, PostgreSQL ${PG1} ${PG2} ${PG3}"

# One leader, two replicas running, one of them the synchronous standby; and
# on the leader, both standbys streaming and one of them 'sync'.
LEADER=
waited=0
until [[ -n $LEADER ]]; do
    ((waited < 150)) || die "no leader with two streaming replicas and a sync standby within 150 s"
    for node in "${NODES[@]}"; do
        # (The pid file appears a moment after the start.)
        if [[ -s $TMP/$node/patroni.pid ]] && ! kill -0 "$(cat "$TMP/$node/patroni.pid")" 2>/dev/null; then
            die "patroni $node exited during bootstrap"
        fi
    done
    read -r name port replicas sync running <<<"$("$PY" "$HELPER" cluster "http://127.0.0.1:$REST1")"
    if [[ -n $name && $name != - ]] && ((replicas == 2 && sync >= 1 && running == 3)); then
        streaming=$(sql "$port" postgres -c \
            "SELECT count(*) FILTER (WHERE state = 'streaming'), count(*) FILTER (WHERE sync_state = 'sync') FROM pg_stat_replication" \
            2>/dev/null | tr '|' ' ') || streaming=
        [[ $streaming == "2 1" ]] && LEADER=$name
    fi
    [[ -n $LEADER ]] || { sleep 1; waited=$((waited + 1)); }
done
say "leader $LEADER (port ${PGPORT[$LEADER]}), two standbys streaming, one synchronous ($(($(date +%s) - STARTED))s)"
sql "${PGPORT[$LEADER]}" postgres -c 'SHOW synchronous_standby_names' | sed 's/^/  synchronous_standby_names: /' >&2

# --- 3. payhook on the multi-host URL -----------------------------------------
sql "${PGPORT[$LEADER]}" postgres -c 'CREATE DATABASE payhook'
mkdir -p "$TMP/payhook"
TOKEN=pf-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
export PAYHOOK_ADMIN_TOKEN=$TOKEN
# Its own working directory, so no stray ./.env is read, and only this
# environment, so no PAYHOOK_* setting of the caller's changes the run.
(
    cd "$TMP/payhook"
    exec env -i PATH="$PATH" HOME="$TMP/payhook" \
        PAYSERA_PROJECT_ID=123 \
        PAYSERA_PROJECT_PASSWORD=pass-1f2e3d \
        PAYSERA_PUBLIC_KEY_FILE="$KEY_DIR/public.pem" \
        PAYHOOK_ADMIN_TOKEN="$TOKEN" \
        PAYHOOK_BIND="127.0.0.1:$PUBLIC" \
        PAYHOOK_ADMIN_BIND="127.0.0.1:$ADMIN" \
        PAYHOOK_DATA_DIR="$TMP/payhook" \
        PAYHOOK_DB_STATEMENT_TIMEOUT=2s \
        PAYHOOK_DB_ACQUIRE_TIMEOUT=1s \
        PAYHOOK_DRAIN_DELAY=0s \
        PAYHOOK_SHUTDOWN_TIMEOUT=3s \
        RUST_LOG=info \
        DATABASE_URL="postgres://postgres@127.0.0.1:$PG1,127.0.0.1:$PG2,127.0.0.1:$PG3/payhook?target_session_attrs=read-write" \
        "$PAYHOOK_BIN" serve
) >"$TMP/payhook.log" 2>&1 &
PAYHOOK_PID=$!
"$PY" "$HELPER" wait-http "http://127.0.0.1:$PUBLIC/readyz" 60 --pid "$PAYHOOK_PID" ||
    die "payhook not ready (payhook.log above)"
say "payhook ready on 127.0.0.1:$PUBLIC (admin $ADMIN)"

# --- 4. orders and their signed callbacks -----------------------------------------
"$LOADGEN_BIN" --sign-only --signed "$TMP/signed.tsv" --count "$ORDERS" --prefix pf \
    --key "$KEY_DIR/private.pem" --password pass-1f2e3d 2>>"$TMP/driver.log" ||
    die "signing the callbacks failed"
"$PY" "$HELPER" register --admin "http://127.0.0.1:$ADMIN" --signed "$TMP/signed.tsv" ||
    die "registering the orders failed"
say "$ORDERS orders registered, callbacks signed; paying them ($RATE/s, each twice at once)"

"$PY" "$HELPER" drive --public "http://127.0.0.1:$PUBLIC" --signed "$TMP/signed.tsv" \
    --out "$TMP/results.json" --threshold "$THRESHOLD" --threshold-file "$TMP/threshold" \
    --kill-file "$TMP/killed_at" --deadline "$DEADLINE" --rate "$RATE" >>"$TMP/driver.log" 2>&1 &
DRIVER_PID=$!

# --- 5. the leader's machine dies ------------------------------------------------------
for _ in $(seq 600); do
    [[ -f $TMP/threshold ]] && break
    kill -0 "$DRIVER_PID" 2>/dev/null || die "the gateway stopped before $THRESHOLD orders were paid"
    sleep 0.1
done
[[ -f $TMP/threshold ]] || die "$THRESHOLD orders not paid within 60 s"

dir=$TMP/$LEADER/data
patroni_pid=$(cat "$TMP/$LEADER/patroni.pid")
postmaster_pid=$(head -n 1 "$dir/postmaster.pid")
# Patroni first (else it would restart its PostgreSQL), then the postmaster
# and all its children, in one kill(1): the node's processes all die within a
# millisecond, as with a machine that dies. The children are listed first
# (that takes a while); one forked after the list is caught by kill_cwd, and
# could not acknowledge a commit anyway: the WAL senders are gone.
children=$(children_of "$postmaster_pid")
KILLED_AT=${EPOCHREALTIME/,/.}
# shellcheck disable=SC2086 # one word per pid
kill -KILL "$patroni_pid" "$postmaster_pid" $children 2>/dev/null || true
GONE_AT=${EPOCHREALTIME/,/.}
kill_cwd "$dir"
echo "$KILLED_AT" >"$TMP/killed_at"
say "killed $LEADER after $THRESHOLD orders paid: patroni $patroni_pid, postmaster $postmaster_pid and $(wc -w <<<"$children") children, SIGKILLed within $(awk "BEGIN { printf \"%.2f\", ($GONE_AT - $KILLED_AT) * 1000 }") ms"

# The new leader, as the survivors' Patroni reports it.
NEW_LEADER=''
LEADER_AT=''
survivors=()
for node in "${NODES[@]}"; do [[ $node == "$LEADER" ]] || survivors+=("$node"); done
for _ in $(seq 600); do
    for node in "${survivors[@]}"; do
        read -r name _ <<<"$("$PY" "$HELPER" cluster "http://127.0.0.1:${REST[$node]}" --exclude "$LEADER")"
        if [[ -n $name && $name != - ]]; then NEW_LEADER=$name LEADER_AT=$(now); break 2; fi
    done
    sleep 0.2
done
if [[ -n $NEW_LEADER ]]; then
    say "new leader $NEW_LEADER after $(awk "BEGIN { printf \"%.1f\", $LEADER_AT - $KILLED_AT }") s"
else
    say "no new leader within 120 s"
fi

# The gateway goes on until every order is answered OK or its deadline.
wait "$DRIVER_PID" || die "the gateway failed (driver.log above)"
DRIVER_PID=
[[ -n $NEW_LEADER ]] || die "Patroni promoted no standby"

# --- 6. reconcile on the new leader ------------------------------------------------------
read -r name port _ <<<"$("$PY" "$HELPER" cluster "http://127.0.0.1:${REST[$NEW_LEADER]}" --exclude "$LEADER")"
[[ -n $name && $name != - ]] || die "no leader to reconcile on"
[[ $(sql "$port" payhook -c 'SELECT pg_is_in_recovery()') == f ]] || die "$name (port $port) is in recovery"
# Per order of this run: its state and its number of fulfilments (a
# fulfilment without an order shows too, state '-').
sql "$port" payhook -F $'\t' -c "
    SELECT orderid, coalesce(o.state, '-'), coalesce(f.n, 0)
    FROM (SELECT orderid, state FROM orders WHERE project_id = '123') o
    FULL JOIN (SELECT orderid, count(*) AS n FROM fulfilments GROUP BY orderid) f USING (orderid)" \
    >"$TMP/rows.tsv" || die "reading the new leader's rows failed"
say "reconciling on $name (port $port)"
"$PY" "$HELPER" report --results "$TMP/results.json" --rows "$TMP/rows.tsv" \
    --kill-at "$KILLED_AT" --leader-at "$LEADER_AT" --threshold "$THRESHOLD" ||
    die "acknowledged payments were lost, doubled or left unpaid (above)"
