#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds (installing what is missing) and runs every test: unit, scenario and
# black-box suites. Tests that need root or a loop device say so and skip.
# Extra arguments go to `meson test` (e.g. --suite e2e, or a test name).
#
# With --all, or with CI=true and no test arguments, it then runs the house
# rules' ratchet (scripts/tidy.py), the test suite under the sanitizers
# (scripts/sanitize.sh: ASan+UBSan, TSan) and each fuzz target for
# FUZZ_SECONDS (default 10; scripts/fuzz.sh), and the VM suite: the clone
# stick booted in qemu (test/vm/README.md). --vm adds only the VM suite.
# The sanitizer and fuzz builds run ahead, niced, beside the stage before
# theirs (build_ahead below). A developer's plain scripts/test.sh stays fast.
# Every stage runs even if one before it failed, so one CI run shows all that
# is wrong; the exit status is 1 if any stage failed. Prints the wall time of
# each stage.
# Usage: scripts/test.sh [--all] [--vm] [MESON_TEST_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."

all=false
vm=false
args=()
for arg in "$@"; do
  case "$arg" in
    --all) all=true ;;
    --vm) vm=true ;;
    *) args+=("$arg") ;;
  esac
done
[ "${CI:-}" = true ] && ((${#args[@]} == 0)) && all=true
$all && vm=true

timings=()
failed=()
stage() {
  local name=$1
  shift
  local start=$SECONDS
  echo "=== test.sh: $name"
  if "$@"; then
    timings+=("$name: $((SECONDS - start)) s")
  else
    timings+=("$name: $((SECONDS - start)) s, FAILED")
    failed+=("$name")
  fi
}

# Building ahead (--all): while a stage's tests run, mostly waiting on disks,
# links and timers, the next stage's build runs at nice 19, so that it gets a
# CPU only when the tests leave one idle. The next stage waits for it first;
# what it left undone (or failed: its log is build/ahead-NAME.log) that stage
# builds again itself, as before. Only once the suite's setup.sh has installed
# every package (fuzzing's too): no two apt-get run at once. One still running
# when test.sh ends is stopped with all its processes (ninja, the compilers).
declare -A ahead=()
ahead_ready=false
build_ahead() {
  local name=$1
  shift
  $ahead_ready || return 0
  nice -n 19 "$@" >"build/ahead-$name.log" 2>&1 &
  ahead[$name]=$!
}
# PID and its descendants, parents first.
process_tree() {
  local child
  echo "$1"
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do process_tree "$child"; done
}
stop_ahead() {
  local pid pids=()
  for pid in "${ahead[@]}"; do mapfile -t -O "${#pids[@]}" pids < <(process_tree "$pid"); done
  ((${#pids[@]} == 0)) || kill "${pids[@]}" 2>/dev/null || true
}
trap stop_ahead EXIT
trap 'stop_ahead; exit 130' INT TERM
await_ahead() {
  local pid=${ahead[$1]:-}
  [ -n "$pid" ] || return 0
  unset "ahead[$1]"
  if wait "$pid"; then
    echo "test.sh: built ahead: $(tail -n 1 "build/ahead-$1.log")"
  else
    echo "test.sh: building $1 ahead failed (build/ahead-$1.log); building it again here"
  fi
}

suite() {
  # The VM suite has a stage of its own; named tests or suites run as asked.
  local select=("${args[@]}")
  ((${#select[@]})) || select=(--no-suite vm)
  if ! $all; then
    scripts/setup.sh --capture || return 1
  else
    scripts/setup.sh --capture --fuzz || return 1
    ahead_ready=true
    build_ahead asan scripts/sanitize.sh --build-only asan
  fi
  meson test -C build --print-errorlogs --num-processes 2 "${select[@]}"
}

asan_stage() {
  await_ahead asan
  build_ahead tsan scripts/sanitize.sh --build-only tsan
  scripts/sanitize.sh asan
}

tsan_stage() {
  await_ahead tsan
  build_ahead fuzz scripts/fuzz.sh --build-only
  scripts/sanitize.sh tsan
}

fuzz_stage() {
  await_ahead fuzz
  scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
}

# The clone stick in qemu: its packages (setup.sh --vm), the image from the
# stick's recipe (cached by its inputs), then each scenario.
vm_suite() {
  meson test -C build --print-errorlogs --suite vm
}

stage "build and test suite" suite
if $all; then
  stage "tidy: the house rules' ratchet" scripts/tidy.py
  stage "asan+ubsan: build and whole suite" asan_stage
  stage "tsan: build and threaded suites" tsan_stage
  stage "fuzz: build and ${FUZZ_SECONDS:-10} s per target" fuzz_stage
fi
if $vm; then
  stage "vm: the clone stick in qemu" vm_suite
fi

echo "=== test.sh: stage times"
printf '  %s\n' "${timings[@]}"
if ((${#failed[@]})); then
  echo "test.sh: failed: ${failed[*]}" >&2
  exit 1
fi
