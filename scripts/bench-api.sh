#!/usr/bin/env bash
# Runs `o2ohub bench api`: booking commands end to end over HTTP against a
# served hub, with wrk (Debian's package, installed here if absent) as the
# load generator.
#
# Usage: scripts/bench-api.sh [o2ohub bench api flags, e.g. --json]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  echo "bench-api: installing wrk from Debian's packages..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --quiet
exec ./target/release/o2ohub bench api "$@"
