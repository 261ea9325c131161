#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan in
# ./build-fuzz, then runs each for a bounded time on a scratch copy of its
# committed seed corpus (a run never grows fuzz/corpus/). Fails on any crash,
# leak, timeout, out-of-memory or sanitizer report; the input that caused it
# is kept in build-fuzz/findings/<target>/.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 20)
#        scripts/fuzz.sh --build-only   (scripts/test.sh builds ahead this way)
#   FUZZ_TARGETS="frame spool"  only these targets (default: all that are built)
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=false
if [ "${1:-}" = --build-only ]; then
  build_only=true
  shift
fi
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
if $build_only; then
  echo "fuzz: build-fuzz built"
  exit 0
fi

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
for t in "${targets[@]}"; do
  [ -x "build-fuzz/fuzz/fuzz_$t" ] || { echo "fuzz: no target $t (built: build-fuzz/fuzz/fuzz_*)" >&2; exit 2; }
done

# One target on a scratch copy of its seeds: its verdict line to
# $scratch/$t.verdict, and $scratch/$t.finding if it found something.
run_target() {
  local t=$1
  local exe=build-fuzz/fuzz/fuzz_$t work=$scratch/$t log=build-fuzz/findings/$t/fuzz.log runs
  rm -rf "build-fuzz/findings/$t"
  mkdir -p "$work/corpus" "$work/tmp" "build-fuzz/findings/$t"
  if [ -d "fuzz/corpus/$t" ]; then cp -r "fuzz/corpus/$t/." "$work/corpus/"; fi
  # -timeout: one input may take 5 s at most (a hang is a finding);
  # -rss_limit_mb: a runaway allocation is a finding, not a dead machine.
  if TMPDIR=$work/tmp "$exe" "$work/corpus" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=5 \
       -print_final_stats=1 -artifact_prefix="build-fuzz/findings/$t/" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $t: ${runs:-?} runs in ${seconds} s, no finding" >"$scratch/$t.verdict"
  else
    {
      echo "fuzz: $t: FINDING (log and input in build-fuzz/findings/$t/):"
      grep -E 'ERROR|SUMMARY|fuzz check failed|runtime error|Test unit written' "$log" | head -20 || true
    } >"$scratch/$t.verdict"
    touch "$scratch/$t.finding"
  fi
}

# As many targets at a time as there are CPUs: each fuzzer is one process on
# one CPU, so two CPUs give each target the same time at half the wall clock.
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= $(nproc))); do wait -n || true; done
  run_target "$t" &
done
wait
failed=()
for t in "${targets[@]}"; do
  if [ ! -e "$scratch/$t.verdict" ]; then
    echo "fuzz: $t: its run failed before it could give a verdict (see above)" >"$scratch/$t.verdict"
    touch "$scratch/$t.finding"
  fi
  if [ -e "$scratch/$t.finding" ]; then
    cat "$scratch/$t.verdict" >&2
    failed+=("$t")
  else
    cat "$scratch/$t.verdict"
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no finding"
