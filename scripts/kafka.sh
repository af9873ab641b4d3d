#!/usr/bin/env bash
# The Kafka-protocol broker of the tests and of local runs: tansu (Apache-2.0,
# a Kafka-compatible broker written in Rust), installed with cargo into a
# cache directory and run on 127.0.0.1.
#
# Usage:
#   scripts/kafka.sh install   # once: cargo install tansu (10–25 min on 2 cores; cached after)
#   scripts/kafka.sh path      # print the tansu binary (what tests read from O2OHUB_TANSU)
#   scripts/kafka.sh start     # start a broker (memory storage) on a free port; prints its env
#   scripts/kafka.sh env       # print `export O2OHUB_KAFKA_BROKERS=…` of the running broker
#   scripts/kafka.sh stop      # stop the broker started by `start`
#
# Environment:
#   O2OHUB_TANSU_ROOT  install root (default ~/.cache/o2ohub/tansu)
#   O2OHUB_TANSU       a tansu binary to use instead of the installed one
#   O2OHUB_KAFKA_PORT  port for `start` (default: a free one)
#   O2OHUB_KAFKA_STORAGE  storage engine for `start` (default memory://tansu/;
#                      sqlite://<file> survives a restart, but is ~20x slower)
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
ROOT="${O2OHUB_TANSU_ROOT:-$HOME/.cache/o2ohub/tansu}"
BIN="${O2OHUB_TANSU:-$ROOT/bin/tansu}"
RUN=target/kafka

install() {
    if [ -x "$BIN" ]; then
        echo "tansu is installed: $BIN ($("$BIN" --version 2>/dev/null || echo unknown version))"
        return
    fi
    echo "Installing tansu $TANSU_VERSION into $ROOT."
    echo "The first install compiles the broker from source: 10-25 minutes on 2 cores."
    echo "It is cached afterwards. Progress follows (cargo's own output)."
    mkdir -p "$ROOT"
    # dynostore gives memory:// storage, libsql gives sqlite://; without a
    # storage feature the broker has no storage engine at all.
    cargo install tansu --version "$TANSU_VERSION" --locked \
        --features dynostore,libsql --root "$ROOT"
    echo "tansu installed: $BIN"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
    if [ ! -x "$BIN" ]; then
        echo "error: no tansu at $BIN; run: scripts/kafka.sh install" >&2
        exit 1
    fi
    if [ -f "$RUN/pid" ] && kill -0 "$(cat "$RUN/pid")" 2>/dev/null; then
        echo "a broker is already running (pid $(cat "$RUN/pid")); scripts/kafka.sh stop first" >&2
        exit 1
    fi
    mkdir -p "$RUN"
    local port="${O2OHUB_KAFKA_PORT:-$(free_port)}"
    local storage="${O2OHUB_KAFKA_STORAGE:-memory://tansu/}"
    "$BIN" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "$storage" >"$RUN/broker.log" 2>&1 &
    echo $! >"$RUN/pid"
    echo "127.0.0.1:$port" >"$RUN/brokers"
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "tansu broker up on 127.0.0.1:$port (pid $(cat "$RUN/pid"), log $RUN/broker.log)"
            env_
            return
        fi
        if ! kill -0 "$(cat "$RUN/pid")" 2>/dev/null; then
            echo "error: tansu exited at start; its log ($RUN/broker.log):" >&2
            cat "$RUN/broker.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "error: tansu did not answer on 127.0.0.1:$port within 10 s; see $RUN/broker.log" >&2
    exit 1
}

env_() {
    if [ ! -f "$RUN/brokers" ]; then
        echo "no broker started; run: scripts/kafka.sh start" >&2
        exit 1
    fi
    echo "export O2OHUB_KAFKA_BROKERS=$(cat "$RUN/brokers")"
}

stop() {
    if [ -f "$RUN/pid" ]; then
        local pid
        pid="$(cat "$RUN/pid")"
        kill "$pid" 2>/dev/null || true
        rm -f "$RUN/pid" "$RUN/brokers"
        echo "tansu broker (pid $pid) stopped"
    else
        echo "no broker running"
    fi
}

case "${1:-}" in
    install) install ;;
    path) echo "$BIN" ;;
    start) start ;;
    env) env_ ;;
    stop) stop ;;
    *)
        sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
