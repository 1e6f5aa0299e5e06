#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run).
#
#   scripts/test.sh [extra pytest args...]
#
# On a fresh Debian 12 machine (as root, with only the package registries on the network) it:
#   1. installs the Debian packages the tests need, if missing (apt-get update at most once);
#   2. creates or refreshes the Python venv .venv/ (pytest, pymesos, ...) unless it is already
#      complete for tests/python/requirements.txt (stamp file keyed on a hash);
#   3. checks the formatting (`cargo fmt --all --check`), then builds every binary once in debug
#      (`cargo build --workspace --bins`);
#   4. runs `cargo test --workspace` (unit and in-crate integration tests);
#   5. runs the Python suites in tests/python/ against target/debug/tepui (env TEPUI_BIN);
#   6. prints one closing line `N passed, M failed` (totals over cargo and pytest).
# Exits non-zero if anything failed.
#
# Artifacts (cargo/pytest logs, junit XML, each test's `tepui dev` log as <test>/dev.log) are
# written under .test-output/, which is emptied at the start of every run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OUT="$ROOT/.test-output"
VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/tests/python/requirements.txt"
# Bump when the venv recipe below changes (part of the stamp hash).
VENV_RECIPE_VERSION=1
HTTP_PARSER_VERSION=0.9.0
PYMESOS_VERSION=0.3.15

# Guards so that a hung stage fails instead of eating CI's whole budget.
CARGO_TEST_TIMEOUT=${CARGO_TEST_TIMEOUT:-1200}
PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-900}
# On a terminal, keep the stages in the foreground process group so that Ctrl-C reaches them.
TIMEOUT_OPTS=(-k 30)
if [ -t 0 ]; then TIMEOUT_OPTS+=(--foreground); fi

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1
export PIP_PROGRESS_BAR=off
export CARGO_TERM_COLOR=never

SECONDS=0
STAGE="start"
section() {
  STAGE="$*"
  printf '\n======== %s (t=%ss) ========\n' "$*" "$SECONDS"
}
note() { printf '[test.sh] %s\n' "$*"; }

TOTAL_PASSED=0
TOTAL_FAILED=0
OVERALL_RC=0
FINISHED=0

# An unexpected error (set -e) still ends with a summary line that counts the failure.
on_exit() {
  local rc=$?
  if [ "$FINISHED" -eq 0 ]; then
    printf '\n[test.sh] ABORTED with exit code %s during stage: %s\n' "$rc" "$STAGE"
    printf '%s passed, %s failed\n' "$TOTAL_PASSED" "$((TOTAL_FAILED + 1))"
    if [ "$rc" -eq 0 ]; then exit 1; fi
  fi
}
trap on_exit EXIT

finish() {
  FINISHED=1
  section "Summary"
  note "artifacts (logs, junit XML, per-test dev.log) are under .test-output/"
  note "UI screenshots (real headless Chromium) are under .test-output/screenshots/"
  if [ "$TOTAL_FAILED" -gt 0 ]; then OVERALL_RC=1; fi
  note "total time ${SECONDS}s; exit code $OVERALL_RC"
  printf '%s passed, %s failed\n' "$TOTAL_PASSED" "$TOTAL_FAILED"
  exit "$OVERALL_RC"
}

# ---------------------------------------------------------------------------------------------
# System packages
# ---------------------------------------------------------------------------------------------
APT_UPDATED=0
# ensure_apt_packages pkg... : install the packages that are not installed yet.
ensure_apt_packages() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  note "installing Debian packages: ${missing[*]}"
  if [ "$APT_UPDATED" -eq 0 ]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

# pick_python: set PY to a Python 3.11 with venv support (pymesos's recipe is for 3.11).
PY=
pick_python() {
  local c
  for c in python3.11 /root/.pyenv/shims/python3.11 python3 /usr/bin/python3; do
    if command -v "$c" >/dev/null 2>&1 &&
      "$c" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      PY="$(command -v "$c")"
      return 0
    fi
  done
  # Debian 12's own python3 is 3.11.
  ensure_apt_packages python3 python3-venv
  PY=/usr/bin/python3
}

# ---------------------------------------------------------------------------------------------
# Python venv
# ---------------------------------------------------------------------------------------------
venv_stamp() {
  local py="$1"
  {
    echo "recipe=$VENV_RECIPE_VERSION http-parser=$HTTP_PARSER_VERSION pymesos=$PYMESOS_VERSION"
    "$py" -c 'import sys; print(sys.version)'
    cat "$REQUIREMENTS"
  } | sha256sum | cut -d' ' -f1
}

ensure_venv() {
  local py stamp stamp_file="$VENV/.tepui-venv-stamp" tmp src
  pick_python
  py="$PY"
  stamp="$(venv_stamp "$py")"
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] &&
    "$VENV/bin/python" -c 'import pytest, xdist, pytest_timeout, requests, pymesos, kazoo, marathon, selenium' 2>/dev/null; then
    note ".venv is complete (stamp $stamp); skipping install"
    return 0
  fi
  note "building .venv with $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
  local t0=$SECONDS
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  local pip=("$VENV/bin/python" -m pip --quiet)
  # pymesos depends on http-parser, whose C extension does not build on Python 3.11: install it
  # from its sdist with the extension turned off (it then uses its pure-Python parser).
  tmp="$(mktemp -d)"
  "${pip[@]}" download --no-deps --no-binary :all: -d "$tmp" "http-parser==$HTTP_PARSER_VERSION"
  tar -xzf "$tmp"/http-parser-*.tar.gz -C "$tmp"
  src="$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'http-parser-*' | head -n1)"
  sed -i 's/run_setup(not IS_PYPY)/run_setup(False)/' "$src/setup.py"
  if ! grep -q 'run_setup(False)' "$src/setup.py"; then
    echo "could not patch $src/setup.py (run_setup call not found)" >&2
    return 1
  fi
  # (its setup.py prints pages of setuptools deprecation warnings: keep them in a log)
  if ! "${pip[@]}" install "$src" >"$OUT/http-parser-install.log" 2>&1; then
    cat "$OUT/http-parser-install.log" >&2
    return 1
  fi
  "${pip[@]}" install "pymesos==$PYMESOS_VERSION"
  "${pip[@]}" install -r "$REQUIREMENTS"
  rm -rf "$tmp"
  "$VENV/bin/python" -c 'import pytest, xdist, pytest_timeout, requests, pymesos, kazoo
from http_parser.http import HttpParser'
  echo "$stamp" >"$stamp_file"
  note ".venv ready in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------------------------------------
# Output parsing
# ---------------------------------------------------------------------------------------------
# cargo_counts LOG: print "passed failed ignored" summed over every `test result:` line.
cargo_counts() {
  awk '
    /^test result: / {
      for (i = 1; i <= NF; i++) {
        v = $i; gsub(/[^0-9]/, "", v)
        if ($(i+1) ~ /^passed/) p += v
        if ($(i+1) ~ /^failed/) f += v
        if ($(i+1) ~ /^ignored/) g += v
      }
    }
    END { printf "%d %d %d\n", p, f, g }' "$1"
}

# junit_counts XML: print "passed failed skipped" (errors count as failed).
junit_counts() {
  "$VENV/bin/python" - "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0 0"); sys.exit(0)
suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
t = f = s = 0
for su in suites:
    t += int(su.get("tests", 0)); s += int(su.get("skipped", 0))
    f += int(su.get("failures", 0)) + int(su.get("errors", 0))
print(t - f - s, f, s)
EOF
}

# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------
rm -rf "$OUT"
mkdir -p "$OUT"

section "System packages"
ensure_apt_packages procps ca-certificates
# HA suites (tests/python/test_ha_*.py, harness/): a real 3-node ZooKeeper ensemble (pulls a JRE),
# and iptables for silent partitions of one node (DROP by its uid). Those suites need root.
ensure_apt_packages zookeeper
ensure_apt_packages iptables
# UI suites (tests/python/test_ui.py): a real headless Chromium driven through chromedriver.
ensure_apt_packages chromium chromium-driver
# Packaging suite (tests/python/test_packaging.py): dpkg-shlibdeps for scripts/package-deb.sh,
# systemd-analyze (and the host's units) to verify the packaged units.
ensure_apt_packages dpkg-dev systemd
# Fetcher suite (tests/python/test_fetcher.py): the extractors the agent runs, as Mesos' fetcher.
ensure_apt_packages tar gzip unzip
note "system packages ok"

section "Python venv (.venv)"
ensure_venv

section "cargo fmt --check"
# The workspace is kept in rustfmt's default style; a file out of it counts as one failure.
if ! cargo fmt --version > /dev/null 2>&1; then rustup component add rustfmt; fi
if cargo fmt --all --check > "$OUT/cargo-fmt.log" 2>&1; then
  note "formatting ok"
  TOTAL_PASSED=$((TOTAL_PASSED + 1))
else
  note "cargo fmt --check FAILED: run 'cargo fmt --all' (files: $(grep -c '^Diff in' "$OUT/cargo-fmt.log") hunks, log .test-output/cargo-fmt.log)"
  TOTAL_FAILED=$((TOTAL_FAILED + 1))
  OVERALL_RC=1
fi

section "cargo build --workspace --bins (debug)"
if ! cargo build --workspace --bins 2>&1 | tee "$OUT/cargo-build.log"; then
  note "cargo build FAILED (log: .test-output/cargo-build.log)"
  TOTAL_FAILED=$((TOTAL_FAILED + 1))
  OVERALL_RC=1
  finish
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
export TEPUI_BIN="$TARGET_DIR/debug/tepui"
note "TEPUI_BIN=$TEPUI_BIN"

section "cargo test --workspace"
set +e
timeout "${TIMEOUT_OPTS[@]}" "$CARGO_TEST_TIMEOUT" cargo test --workspace --no-fail-fast 2>&1 | tee "$OUT/cargo-test.log"
cargo_rc=${PIPESTATUS[0]}
set -e
read -r c_passed c_failed c_ignored < <(cargo_counts "$OUT/cargo-test.log")
note "cargo test: $c_passed passed, $c_failed failed, $c_ignored ignored (exit $cargo_rc)"
if [ "$c_ignored" -gt 0 ]; then note "WARNING: $c_ignored cargo tests are #[ignore]d"; fi
if [ "$cargo_rc" -eq 124 ]; then note "cargo test timed out after ${CARGO_TEST_TIMEOUT}s"; fi
if [ "$cargo_rc" -ne 0 ]; then
  OVERALL_RC=1
  # A compile error or crash reports no failed test: count the stage itself as one failure.
  if [ "$c_failed" -eq 0 ]; then c_failed=1; fi
fi
TOTAL_PASSED=$((TOTAL_PASSED + c_passed))
TOTAL_FAILED=$((TOTAL_FAILED + c_failed))

section "Python tests (tests/python, pytest)"
workers=2
if [ "$(nproc)" -lt 2 ]; then workers=1; fi
export TEPUI_TEST_OUTPUT="$OUT"
set +e
timeout "${TIMEOUT_OPTS[@]}" "$PYTEST_TIMEOUT" "$VENV/bin/python" -m pytest tests/python \
  -n "$workers" --dist loadfile -rfEs \
  --junitxml="$OUT/pytest-junit.xml" "$@" 2>&1 | tee "$OUT/pytest.log"
pytest_rc=${PIPESTATUS[0]}
set -e
read -r p_passed p_failed p_skipped < <(junit_counts "$OUT/pytest-junit.xml")
note "pytest: $p_passed passed, $p_failed failed, $p_skipped skipped (exit $pytest_rc)"
if [ "$p_skipped" -gt 0 ]; then
  # The rules forbid skipped tests: a skip usually hides a missing dependency.
  note "skipped Python tests count as failures"
  p_failed=$((p_failed + p_skipped))
fi
if [ "$pytest_rc" -eq 124 ]; then note "pytest timed out after ${PYTEST_TIMEOUT}s"; fi
if [ "$pytest_rc" -ne 0 ]; then
  OVERALL_RC=1
  # Exit 5 = no tests collected; other non-zero exits with no counted failure = crash/interrupt.
  if [ "$p_failed" -eq 0 ]; then p_failed=1; fi
fi
TOTAL_PASSED=$((TOTAL_PASSED + p_passed))
TOTAL_FAILED=$((TOTAL_FAILED + p_failed))

finish
