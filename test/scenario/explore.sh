#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CI explores (issue 12): besides their fixed windows, the seeded tests run a
# window of seeds derived from the commit under test, so that every landing
# covers seeds no run has tried. The window is printed first; a failing seed
# prints the one command that replays it (test/scenario/seeds.h).
# Usage: explore.sh BUILD_DIR SOURCE_DIR   (meson's test `explore-seeds`)
# CLONED_EXPLORE_COMMIT overrides the commit (to replay another run's window).
set -euo pipefail
build=$1
source=$2

commit=${CLONED_EXPLORE_COMMIT:-$(git -C "$source" rev-parse HEAD 2>/dev/null || true)}
if [ -z "$commit" ]; then
  commit=$(date -u +%F | sha1sum | cut -c1-40)
  echo "explore: $source is not a git checkout; the window comes from today's date instead"
fi
# 32 bits of the commit, past the fixed windows (1-60, 1000-1199).
first=$(( 16#${commit:0:8} + 1000000 ))

# Sized to about 30 s on one core of the CI machine (docs/TESTING.md).
sim_count=2500
cut_count=1000
resync_count=2000
staged_count=300  # real fsyncs of the stage file: about 15 s
echo "explore: commit $commit: seeds from $first" \
  "(simulation $sim_count, power cut $cut_count, resync power cut $resync_count, staged resync power cut $staged_count)"

status=0
explore() {
  local count=$1 binary=$2 test_case=$3
  local start=$SECONDS rc=0 log
  log=$(mktemp)
  CLONED_SEED_FIRST=$first CLONED_SEED_COUNT=$count "$build/test/$binary" -tc="$test_case" >"$log" 2>&1 || rc=$?
  # The tallies line always; on failure everything the test said.
  if [ "$rc" -eq 0 ]; then grep 'MESSAGE' "$log" || true; else cat "$log"; fi
  rm -f "$log"
  if [ "$rc" -ne 0 ]; then
    echo "explore: FAILED in $binary -tc='$test_case'; the window again:" \
      "CLONED_SEED_FIRST=$first CLONED_SEED_COUNT=$count $build/test/$binary -tc='$test_case'"
    status=1
  fi
  echo "explore: $binary '$test_case': $count seeds in $((SECONDS - start)) s"
}
explore "$sim_count" simulation_test 'simulation: network*'
explore "$cut_count" scenario_test 'after a power cut at any point*'
explore "$resync_count" scenario_test 'a resync cut by power failures*'
explore "$staged_count" scenario_test 'a staged resync cut by power failures*'
exit "$status"
