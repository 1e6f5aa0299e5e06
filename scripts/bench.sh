#!/usr/bin/env bash
# Builds tepui and tepui-bench in release and runs the benchmark against a fresh `tepui dev`.
#
#   scripts/bench.sh [--quick] [--launches N] [--tasks N] [--tepui PATH] [...]
#
# The last line of the output is one JSON object with every figure (for the README).
# `target/release/tepui-bench --help` lists every option.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

cargo build --release -p tepui -p bench

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
exec "$TARGET_DIR/release/tepui-bench" "$@"
