#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test of
# the workspace (unit, property, conformance, crash and integration tests),
# then schemathesis against a served hub.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

# The broker's first install is a long compile with serial stretches; run it
# beside the lints and the test build so the builds fill both cores, and wait
# for it before the tests run. Its output goes to a log, shown if it fails.
mkdir -p target
kafka_log=target/kafka-install.log
bash scripts/kafka.sh install >"$kafka_log" 2>&1 &
kafka_install=$!
printf 'installing the Kafka-protocol broker in the background (log: %s)\n' "$kafka_log"

# The EventStoreDB backend is a cargo feature; lints and tests run with it
# on, in the same single build (its conformance suite skips itself, by
# name, unless O2OHUB_ESDB_URL points at a server).
step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --features eventstoredb --quiet -- -D warnings

step "cargo test --workspace --no-run (build the tests while the broker may still compile)"
cargo test --workspace --features eventstoredb --no-run --quiet

step "Kafka-protocol broker for tests/kafka.rs (tansu; first install 10-25 min, cached)"
if ! wait "$kafka_install"; then
    cat "$kafka_log" >&2
    echo "error: installing tansu failed (log above); retry with: bash scripts/kafka.sh install" >&2
    exit 1
fi
tail -n 1 "$kafka_log"
O2OHUB_TANSU="$(bash scripts/kafka.sh path)"
export O2OHUB_TANSU

step "cargo test --workspace"
cargo test --workspace --features eventstoredb

if [[ -n "${O2OHUB_ESDB_URL:-}" ]]; then
    step "conformance against EventStoreDB at $O2OHUB_ESDB_URL"
    cargo test --features eventstoredb --test store_conformance eventstoredb -- --ignored
else
    printf '\nSKIPPED: the EventStoreDB conformance cases (set O2OHUB_ESDB_URL to run them)\n'
fi

# The hub binary the test build made (for the integration tests). The
# steps below use it as it is: `cargo run` or `cargo build` here would build
# it again (a test build of the workspace unifies other dependency
# features), minutes on 2 cores.
O2OHUB_BIN=target/debug/o2ohub
export O2OHUB_BIN

# A smoke run of the dispatcher benchmark (a smaller city, debug build):
# the full figures come from `o2ohub bench dispatch` on a release build.
step "benchmark smoke: o2ohub bench dispatch"
"$O2OHUB_BIN" bench dispatch --deliveries 1000 --riders 400 \
    --repeats 1 --sim-riders 60 --sim-orders 300

# A smoke run of the route optimiser on the repository's copy of Li & Lim
# lc101, its routes checked by the bench pack's independent verifier when it
# is present (../shared/bench/tools/verify_bks.py); the full tables come
# from scripts/bench-lilim.sh (docs/benchmarks.md).
step "solver smoke: o2ohub solve (Li & Lim lc101, 2 s)"
solved=$(mktemp -d)
"$O2OHUB_BIN" solve tests/data/lilim/lc101.txt --time 2 --seed 1 \
    --out "$solved/lc101.sol" | tee "$solved/lc101.json"
grep -q '"feasible":true' "$solved/lc101.json" ||
  { echo "solve: lc101 came out infeasible" >&2; exit 1; }
verifier=../shared/bench/tools/verify_bks.py
if [ -f "$verifier" ]; then
  verdict=$(python3 "$verifier" lilim tests/data/lilim/lc101.txt "$solved/lc101.sol")
  echo "verifier: $verdict"
  [ "${verdict##* }" = OK ] ||
    { echo "solve: the verifier refused lc101's routes" >&2; exit 1; }
else
  echo "verifier not found at $verifier: only the solver's own feasibility check ran"
fi
rm -rf "$solved"

step "Kubernetes manifests (render, schema-validate, CRDs)"
bash scripts/validate-k8s.sh

step "schemathesis against a served hub (docs/openapi.yaml)"
bash scripts/schemathesis.sh

printf '\nAll tests passed.\n'
