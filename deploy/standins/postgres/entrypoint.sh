#!/bin/bash
# The part of the official postgres image's entrypoint the compose file relies
# on: on first start (an empty $PGDATA), a cluster whose superuser is
# $POSTGRES_USER with $POSTGRES_PASSWORD, and the database $POSTGRES_DB; then
# the server, listening on every address, as PID 1.
set -euo pipefail
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}

if [[ ! -s $PGDATA/PG_VERSION ]]; then
  # Like the official image: trust on the local socket (inside the container
  # only), scram-sha-256 over TCP from any address.
  initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
    -D "$PGDATA" >/dev/null
  echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
  if [[ $db != postgres ]]; then
    # Single-user mode: no server to start and stop around one statement.
    printf 'CREATE DATABASE "%s";\n' "$db" | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "postgres stand-in: cluster made in $PGDATA (superuser $user, database $db)"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
