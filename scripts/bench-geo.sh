#!/usr/bin/env bash
# Runs `o2ohub bench geo`: the merchant search in-process, over HTTP against
# `o2ohub serve`, and Redis GEOSEARCH on the same 100k-merchant city and
# queries. Installs redis-server and wrk (the HTTP target's load generator)
# from Debian's packages if absent (the bench starts and stops its own Redis
# on a free port).
#
# Usage: scripts/bench-geo.sh [o2ohub bench geo flags, e.g. --json]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/redis-server ]; then
  echo "bench-geo: installing redis-server from Debian's packages..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
if ! command -v wrk >/dev/null; then
  echo "bench-geo: installing wrk from Debian's packages..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --quiet
exec ./target/release/o2ohub bench geo "$@"
