#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The test suite under the sanitizers (gcc):
#  asan: AddressSanitizer + UndefinedBehaviorSanitizer (and LeakSanitizer)
#        in ./build-asan, the whole test suite but the VM suite (it boots the
#        .deb's binaries, not these);
#  tsan: ThreadSanitizer in ./build-tsan, the threaded
#        parts: the daemon's black-box suites (e2e-*), origin, blockio (and
#        its host-dependent parts, blockio-*), simulation, health-monitor and
#        daemon-workers (the disk workers and their early flush);
#        not e2e-log-writes-capture: its ext4 capture and 20 power cuts over a
#        40 Mbit link took 564 s of CI's time under TSan, and the daemon's
#        threads it drives are the ones e2e-log-writes drives (ASan runs it).
# The binaries the black-box tests start (cloned, clonectl, clone-origin) are
# instrumented too, and their reports would vanish with their stderr, so every
# process writes its reports to build-*/sanitizer-reports/; any report there
# fails the run, whatever the tests said. Races inside Debian's libuv, sqlite
# or libsodium may be suppressed in scripts/tsan.supp, never our own.
# Each stage builds only what its tests run (build_for), and the tests' own
# files at -O0 (meson.build, test_compile_args).
# --build-only configures and builds, and runs nothing (scripts/test.sh
# builds a stage ahead this way, niced, while the stage before it runs).
# Usage: scripts/sanitize.sh [--build-only] [asan] [tsan]   (default both)
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=false
stages=()
for s in "$@"; do
  case "$s" in
    asan | tsan) stages+=("$s") ;;
    --build-only) build_only=true ;;
    *) echo "sanitize: unknown stage $s (use asan, tsan, --build-only)" >&2; exit 2 ;;
  esac
done
((${#stages[@]})) || stages=(asan tsan)

scripts/setup.sh --no-build

# Warnings stay warnings here: instrumentation makes gcc warn about code it
# rewrote (-Wmaybe-uninitialized, -Wnull-dereference), not about ours.
# -O1 -g1, the sanitizers' own advice, not the tree's -O2 -g: gcc compiled a
# large test file with ASan+UBSan in 30 s at -O2 -g and in 11 s at -O1 -g1
# (plain: 6 s); -g1 keeps the line tables a report's stack needs, and the
# frame pointer keeps its stacks whole. The tests' own files then go down to
# -O0 (meson.build): the code under test keeps -O1.
configure() {
  local dir=$1
  shift
  local options=(-Dwerror=false -Db_lundef=false -Doptimization=1 -Ddebug=false
                 "-Dcpp_args=-g1 -fno-omit-frame-pointer" "$@")
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "${options[@]}"
  else
    meson configure "$dir" "${options[@]}"
  fi
}

# The names of the tests a stage runs, from the configured tree:
#  asan: every test but the VM suite's (it boots a stick built from the .deb,
#        not these binaries);
#  tsan: the threaded parts (see the top of this file).
select_tests() {
  meson introspect --tests "$1" | python3 -c '
import json, sys
threaded = {"origin", "blockio", "simulation", "health-monitor", "daemon-workers"}
for t in json.load(sys.stdin):
    name = t["name"]
    if sys.argv[1] == "asan":
        if "cloned:vm" not in t["suite"]:
            print(name)
    elif name != "e2e-log-writes-capture" and (name.startswith(("e2e-", "blockio-")) or name in threaded):
        print(name)' "$2"
}

# Builds only what the named tests need: their executables and what they
# depend on (cloned, clonectl, clone-origin); not the benches, nor, for TSan,
# the tests it does not run (TSan built 209 targets in 217 s, not 278 in 290).
build_for() {
  local dir=$1
  shift
  local targets
  mapfile -t targets < <(python3 -c '
import json, os, sys
root = os.path.realpath(sys.argv[1])
def info(name):
    with open(os.path.join(root, "meson-info", name)) as f:
        return json.load(f)
files = {t["id"]: t["filename"] for t in info("intro-targets.json")}
want = set(sys.argv[2:])
for t in info("intro-tests.json"):
    if t["name"] in want:
        for dep in t.get("depends", []):
            for f in files[dep]:
                print(os.path.relpath(f, root))' "$dir" "$@" | sort -u)
  ((${#targets[@]})) || { echo "sanitize: the tests of $dir need no target?" >&2; return 1; }
  ninja -C "$dir" -j "$(nproc)" "${targets[@]}"
}

# Configures `dir`, and builds what its stage's tests need; the output is
# shown only when it fails.
prepare() {
  local dir=$1 stage=$2
  shift 2
  local log
  log=$(mktemp)
  if { configure "$dir" "$@" && mapfile -t tests < <(select_tests "$dir" "$stage") && ((${#tests[@]})) &&
       build_for "$dir" "${tests[@]}"; } >"$log" 2>&1; then
    rm -f "$log"
  else
    tail -n 60 "$log" >&2
    rm -f "$log"
    echo "sanitize: configuring or building $dir failed (or it has no $stage tests)" >&2
    return 1
  fi
}

# Fails if any process of the run left a report.
check_reports() {
  local dir=$1
  local reports=("$dir"/sanitizer-reports/*)
  [ -e "${reports[0]}" ] || return 0
  echo "sanitize: ${#reports[@]} sanitizer report(s) in $dir/sanitizer-reports/:" >&2
  for r in "${reports[@]}"; do
    echo "--- $r" >&2
    cat "$r" >&2
  done
  return 1
}

fresh_reports() {
  rm -rf "$1/sanitizer-reports"
  mkdir -p "$1/sanitizer-reports"
}

# A sanitized test runs several times slower: meson's timeouts stretch.
run_tests() {
  local dir=$1
  shift
  meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 --timeout-multiplier 4 "$@"
}

status=0
tests=()  # prepare's: the stage's tests
for s in "${stages[@]}"; do
  dir=build-$s
  start=$SECONDS
  sanitizers=thread
  [ "$s" = asan ] && sanitizers=address,undefined
  if $build_only; then
    if prepare "$dir" "$s" -Db_sanitize="$sanitizers"; then
      echo "sanitize: $s built in $((SECONDS - start)) s"
    else
      status=1
    fi
    continue
  fi
  prepare "$dir" "$s" -Db_sanitize="$sanitizers" || { status=1; continue; }
  if [ "$s" = asan ]; then
    fresh_reports "$dir"
    # halt_on_error: UBSan reports and carries on by default; here a report
    # fails the test that caused it. abort_on_error: a core-less abort that
    # the test runner sees as a crash.
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$PWD/$dir/sanitizer-reports/asan"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$PWD/$dir/sanitizer-reports/ubsan"
    run_tests "$dir" "${tests[@]}" || status=1
    unset ASAN_OPTIONS UBSAN_OPTIONS
  else
    fresh_reports "$dir"
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp:log_path=$PWD/$dir/sanitizer-reports/tsan"
    run_tests "$dir" "${tests[@]}" || status=1
    unset TSAN_OPTIONS
  fi
  check_reports "$dir" || status=1
  echo "sanitize: $s took $((SECONDS - start)) s"
done
exit $status
