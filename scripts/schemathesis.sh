#!/usr/bin/env bash
# Schemathesis against a served hub: fails on any 5xx, any status or
# content type docs/openapi.yaml does not declare, any response body that
# does not match its schema, any schema-invalid request the hub accepts, any
# undeclared method answered other than 405 + Allow, and auth that is ignored.
#
# Installs schemathesis (pinned, from PyPI) into a venv under
# ${XDG_CACHE_HOME:-~/.cache}/o2ohub/venv on first use; builds the debug
# binary; serves a fresh data directory on a free loopback port; seeds a
# merchant; runs one pass per caller (admin on every route, then consumer,
# staff and rider on theirs); checks the hub answered at least
# ST_MIN_REQUESTS (default 1000) requests, counted by its own /metrics.
#
# Usage: scripts/schemathesis.sh [max examples per operation, default 40]
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
EXAMPLES=${1:-40}
MIN_REQUESTS=${ST_MIN_REQUESTS:-1000}
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/o2ohub/venv"
say() { printf '[schemathesis] %s\n' "$*"; }

if [[ "$("$VENV/bin/st" --version 2>/dev/null)" != *"$ST_VERSION"* ]]; then
  say "installing schemathesis $ST_VERSION into $VENV (once)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off "schemathesis==$ST_VERSION"
fi
ST="$VENV/bin/st"
say "$("$ST" --version)"

# O2OHUB_BIN: a hub binary already built (scripts/test.sh passes the one
# its test build made, which a plain `cargo build` would rebuild: the
# workspace's test build unifies other dependency features).
if [[ -n "${O2OHUB_BIN:-}" ]]; then
  HUB="$O2OHUB_BIN"
else
  say "building the hub"
  cargo build --quiet --bin o2ohub
  HUB=target/debug/o2ohub
fi

DATA=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
O2OHUB_LOG=warn "$HUB" serve --addr "127.0.0.1:$PORT" --data-dir "$DATA" > "$DATA.log" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$DATA" "$DATA.log"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "$BASE/readyz" > /dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$DATA.log"; say "the hub did not start"; exit 1; }
  sleep 0.1
done
say "hub serving on $BASE (data $DATA)"

token() { "$HUB" token --data-dir "$DATA" "$@"; }
ADMIN=$(token --role admin)
MERCHANT=$(curl -fsS -X POST "$BASE/v1/merchants" -H "authorization: Bearer $ADMIN" -d '{
  "name": "Seed Salon", "category": "salon", "location": {"lat": 31.2304, "lng": 121.4737},
  "opening_hours": {"utc_offset_minutes": 0, "intervals": [{"day": "mon", "open": 0, "close": 1440}]},
  "services": [{"service_id": "haircut", "name": "Haircut", "duration_minutes": 30,
                "price": {"minor": 2500, "currency": "EUR"}, "slot_capacity": 3}],
  "service_area": {"kind": "radius", "meters": 3000}, "rating_tenths": 45}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["merchant_id"])')
RIDER=$(curl -fsS -X POST "$BASE/v1/riders" -H "authorization: Bearer $ADMIN" \
  -d '{"name": "Wei", "vehicle": "scooter", "capacity": 3}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["rider_id"])')
say "seeded merchant $MERCHANT and rider $RIDER"

requests() {
  curl -fsS "$BASE/metrics" | awk '/^o2ohub_http_requests_total/ { n += $NF } END { printf "%d\n", n }'
}
BEFORE=$(requests)

run() {
  local who=$1 token=$2; shift 2
  say "pass as $who ($EXAMPLES examples per operation)"
  "$ST" run docs/openapi.yaml --url "$BASE" \
    --header "Authorization: Bearer $token" \
    --checks all --exclude-checks positive_data_acceptance \
    --exclude-operation-id riderOffers \
    --max-examples "$EXAMPLES" --seed 20261125 --no-color "$@"
}
# The rider's offer stream (SSE) never ends, so it is left to
# tests/dispatch.rs and tests/authz.rs.
# positive_data_acceptance is off: the spec cannot say every cross-field rule
# (from without to, a service the merchant lacks, a self-intersecting
# polygon), and the hub refuses those with a documented 422 naming the field.
run admin "$ADMIN"
run consumer "$(token --role consumer)" --include-tag consumers --include-tag orders --include-tag discovery
run staff "$(token --role staff --merchant "$MERCHANT")" --include-tag staff --include-tag orders
run rider "$(token --role rider --subject "$RIDER")" --include-tag riders

SENT=$(( $(requests) - BEFORE ))
if grep -q "panicked" "$DATA.log"; then
  grep -n "panicked" "$DATA.log"; say "the hub panicked"; exit 1
fi
if (( SENT < MIN_REQUESTS )); then
  say "only $SENT requests reached the hub (want at least $MIN_REQUESTS)"; exit 1
fi
say "passed: $SENT requests answered by the hub, no failures"
