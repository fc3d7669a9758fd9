# Sourced by the measurement scripts (load.sh, garbage-growth.sh): a temp
# directory removed on exit, a throw-away PostgreSQL cluster's helpers, and a
# free loopback port. The caller defines say() and die() first.

# find_pgbin TOOL…: sets PGBIN to the PostgreSQL 15 server tools' directory
# (Debian keeps them off PATH) holding every TOOL.
find_pgbin() {
    PGBIN=
    local d t ok
    for d in /usr/lib/postgresql/15/bin "$(dirname "$(readlink -f "$(command -v pg_ctl || echo /nonexistent)")")"; do
        ok=1
        for t in "$@"; do [[ -x $d/$t ]] || ok=0; done
        if ((ok)); then PGBIN=$d; return; fi
    done
    die "PostgreSQL server tools ($*) not found"
}

# throwaway_dir PREFIX KEEP: sets TMP to a fresh directory and PH_PID to empty;
# on exit stops the payhook process in PH_PID and the cluster in $TMP/pg, and
# removes TMP unless KEEP is 1. Defines as_pg: a command as the postgres user
# when we are root (initdb refuses root).
throwaway_dir() {
    TMP=$(mktemp -d "/tmp/$1-XXXXXX")
    chmod 755 "$TMP"
    PH_PID=
    THROWAWAY_KEEP=$2
    trap throwaway_cleanup EXIT
    trap 'exit 130' INT TERM
    if [[ $(id -u) == 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no postgres user"
        as_pg() { (cd "$TMP" && runuser -u postgres -- "$@"); }
        chown postgres "$TMP"
    else
        as_pg() { (cd "$TMP" && "$@"); }
    fi
}

throwaway_cleanup() {
    local rc=$?
    if [[ -n $PH_PID ]] && kill -0 "$PH_PID" 2>/dev/null; then
        kill "$PH_PID" 2>/dev/null || true
        wait "$PH_PID" 2>/dev/null || true
    fi
    if [[ -f $TMP/pg/postmaster.pid ]]; then
        as_pg "$PGBIN/pg_ctl" -D "$TMP/pg" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [[ $THROWAWAY_KEEP == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
    exit $rc
}

# A loopback port below the kernel's ephemeral range (so that no outgoing
# connection of this very run holds it) that no socket uses in any state.
free_port() {
    local p lo
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
    ((lo > 11000)) || lo=61000
    for _ in $(seq 200); do
        p=$((10000 + RANDOM % (lo - 10000)))
        if ! ss -Htan "( sport = :$p or dport = :$p )" | grep -q .; then echo "$p"; return; fi
    done
    die "no free loopback port found"
}
