# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Helpers the bench scripts share (sourced, never run): messages, sizes, the
# clock, a time bound on every command, and waiting for cloned to start.
# A script that sources this sets run_limit_s (seconds) before using bounded.

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

# Every command that could hang runs under a bound: a stuck one is killed and
# the bench fails instead of waiting forever.
bounded() { timeout --kill-after=5 "${run_limit_s:?set run_limit_s before using bounded}" "$@"; }

# "1G" -> 1073741824 (K, M, G: powers of 1024).
to_bytes() {
  local v=$1
  case $v in
    *K) echo $(( ${v%K} << 10 )) ;;
    *M) echo $(( ${v%M} << 20 )) ;;
    *G) echo $(( ${v%G} << 30 )) ;;
    *) echo $(( v )) ;;
  esac
}

now_ns() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e9 }'; }

# Waits (10 s at most) until cloned, pid $2, has written "cloned started" to
# its log $1; fails with the log if it exits first.
wait_cloned_started() {
  local log=$1 pid=$2
  for _ in $(seq 200); do
    grep -qs "cloned started" "$log" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "cloned did not start"; }
    sleep 0.05
  done
  die "cloned did not start within 10 s (log: $log)"
}

# The median of the numbers given (the lower middle one of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
