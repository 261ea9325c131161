#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan in
# ./build-fuzz, then runs each for a bounded time on a scratch copy of its
# committed seed corpus (a run never grows fuzz/corpus/). Fails on any crash,
# leak, timeout, out-of-memory or sanitizer report; the input that caused it
# is kept in build-fuzz/findings/<target>/.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 20)
#   FUZZ_TARGETS="frame spool"  only these targets (default: all that are built)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz: SECONDS_PER_TARGET must be a positive whole number, not '$seconds'" >&2
  exit 2
fi

scripts/setup.sh --fuzz --no-build
# The build's output is shown only when it fails.
log=$(mktemp)
if ! {
  if [ ! -f build-fuzz/build.ninja ]; then
    # b_lundef=false: clang's sanitizer runtimes are linked into executables
    # only, so libraries must be allowed undefined symbols.
    CC=clang-14 CXX=clang++-14 meson setup build-fuzz -Dfuzz=true \
      -Db_sanitize=address,undefined -Db_lundef=false
  fi &&
    # Only the targets: the rest of the tree is tested by scripts/sanitize.sh.
    ninja -C build-fuzz -j "$(nproc)" fuzz-targets
} >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  rm -f "$log"
  echo "fuzz: building build-fuzz failed" >&2
  exit 1
fi
rm -f "$log"

# A UBSan report is a finding, not a warning: halt, so that libFuzzer saves
# the input. Leaks are findings too.
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

targets=()
if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  for exe in build-fuzz/fuzz/fuzz_*; do
    if [ -f "$exe" ] && [ -x "$exe" ]; then targets+=("${exe#build-fuzz/fuzz/fuzz_}"); fi
  done
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/cloned-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
  exe=build-fuzz/fuzz/fuzz_$t
  [ -x "$exe" ] || { echo "fuzz: no target $t (built: build-fuzz/fuzz/fuzz_*)" >&2; exit 2; }
  seeds=(fuzz/corpus/$t)
  work=$scratch/$t
  rm -rf "build-fuzz/findings/$t"
  mkdir -p "$work/corpus" "$work/tmp" "build-fuzz/findings/$t"
  for d in "${seeds[@]}"; do
    if [ -d "$d" ]; then cp -r "$d/." "$work/corpus/"; fi
  done
  log=build-fuzz/findings/$t/fuzz.log
  # -timeout: one input may take 5 s at most (a hang is a finding);
  # -rss_limit_mb: a runaway allocation is a finding, not a dead machine.
  if TMPDIR=$work/tmp "$exe" "$work/corpus" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=5 \
       -print_final_stats=1 -artifact_prefix="build-fuzz/findings/$t/" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $t: ${runs:-?} runs in ${seconds} s, no finding"
  else
    echo "fuzz: $t: FINDING (log and input in build-fuzz/findings/$t/):" >&2
    grep -E 'ERROR|SUMMARY|fuzz check failed|runtime error|Test unit written' "$log" | head -20 >&2 || true
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no finding"
