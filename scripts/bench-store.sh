#!/usr/bin/env bash
# Runs `o2ohub bench store` against the embedded store and a durable
# PostgreSQL in one invocation. Installs PostgreSQL from Debian's packages if
# it is absent, starts a throw-away cluster on a Unix socket (fsync=on,
# synchronous_commit=on, max_connections=300), and stops it afterwards.
#
# Usage: scripts/bench-store.sh [o2ohub bench store flags, e.g. --json --seconds 10]
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  echo "bench-store: installing PostgreSQL from Debian's packages..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

# PostgreSQL refuses to run as root: run the cluster as the postgres user.
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

work=$(mktemp -d /tmp/o2ohub-bench-pg.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
port=54329
cleanup() {
  run_pg "$pg_bin/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "bench-store: starting PostgreSQL ($("$pg_bin/postgres" --version)) in $work" >&2
run_pg "$pg_bin/initdb" -D "$work/data" -U bench --auth=trust >/dev/null
run_pg "$pg_bin/pg_ctl" -D "$work/data" -l "$work/pg.log" -w -o \
  "-p $port -k $work -c listen_addresses='' -c max_connections=300 -c fsync=on -c synchronous_commit=on -c shared_buffers=256MB" \
  start >/dev/null

cargo build --release --quiet
./target/release/o2ohub bench store --postgres "host=$work port=$port user=bench dbname=postgres" "$@"
