#!/usr/bin/env bash
# Master failover benchmark: builds tepui and tepui-bench in release, then runs
# scripts/bench_failover.py (3-node ZooKeeper ensemble, 3 masters, 2 real agents, N simulated agents;
# kill -9 and SIGTERM of the leader, 10 rounds each by default, for N = 100 and N = 1000).
#
#   sudo scripts/bench-failover.sh [--rounds N] [--counts 100,1000] [--kinds kill9,sigterm] [--json-file F] [...]
#
# `--help` lists every option. The last line of the output is one JSON object with every figure;
# logs stay in /tmp/tepui-bench-failover/bench-failover-<count>-<time>/ (--out DIR).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="$ROOT/.venv/bin/python"
if [ ! -x "$PY" ] || ! "$PY" -c 'import requests' 2>/dev/null; then
    echo "bench-failover: the repo's venv with 'requests' is missing. Create it with:" >&2
    echo "    python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt" >&2
    echo "(or run scripts/test.sh once, which sets it up)" >&2
    exit 2
fi
for jar in /usr/share/java/zookeeper.jar /usr/share/java/slf4j-simple.jar; do
    if [ ! -f "$jar" ]; then
        echo "bench-failover: $jar is missing; install ZooKeeper with: apt-get install -y zookeeper" >&2
        exit 2
    fi
done
if ! command -v java >/dev/null 2>&1; then
    echo "bench-failover: java is missing; install it with: apt-get install -y zookeeper (pulls a JRE)" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "bench-failover: must run as root (the harness runs each node under its own uid); try: sudo $0 $*" >&2
    exit 2
fi

cargo build --release -p tepui -p bench

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
exec "$PY" "$ROOT/scripts/bench_failover.py" \
    --tepui "$TARGET_DIR/release/tepui" --bench "$TARGET_DIR/release/tepui-bench" "$@"
