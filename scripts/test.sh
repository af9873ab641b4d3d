#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test of
# the workspace (unit, property, conformance, crash and integration tests).
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "Kafka-protocol broker for tests/kafka.rs (tansu; first install 10-25 min, cached)"
bash scripts/kafka.sh install
O2OHUB_TANSU="$(bash scripts/kafka.sh path)"
export O2OHUB_TANSU

step "cargo test --workspace"
cargo test --workspace

printf '\nAll tests passed.\n'
