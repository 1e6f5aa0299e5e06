#!/usr/bin/env bash
# Replicated log benchmark: builds tepui-bench in release and runs `tepui-bench replog`:
# raw fsync of this disk, tepui's 3-replica log on loopback (in-process and over HTTP) and a 3-member
# etcd on loopback through its v3 JSON gateway, with the same value size and request shape.
#
#   scripts/bench-replog.sh [--quick] [--appends N] [--value-bytes V] [--concurrency C]
#                           [--throughput-appends M] [--install] [--no-etcd] [--work-parent DIR] [...]
#
# etcd: if it is missing, `--install` (as root) runs `apt-get install -y etcd-server etcd-client`;
# otherwise the etcd part is skipped with a hint. The work dir (record files, etcd data, logs) lives
# under the system temp dir unless --work-parent is given, and is removed at the end
# (--keep-work-dir keeps it). The last line of the output is one JSON object with every figure.
# `target/release/tepui-bench replog --help` lists every option.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

cargo build --release -p bench

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
exec "$TARGET_DIR/release/tepui-bench" replog "$@"
