#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job on an embedded default: pairs a clone and an original in a
# scratch directory, starts cloned on a file-backed "internal disk", brings it
# to the original's image with a resync (the first full copy), has the
# reference original replicate a seeded workload to it over an encrypted
# loopback link, says whether the two disks are byte-identical and how fast it
# went, and verifies the clone by digests. Settings (environment): DEMO_DIR (default ./scratch/demo),
# DEMO_DISK (256M), DEMO_BYTES (256M), DEMO_SEED (1), DEMO_PORT (7227).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null

dir=${DEMO_DIR:-scratch/demo}
disk=${DEMO_DISK:-256M}
bytes=${DEMO_BYTES:-256M}
seed=${DEMO_SEED:-1}
port=${DEMO_PORT:-7227}

rm -rf "$dir"
mkdir -p "$dir"
truncate -s "$disk" "$dir/original.img"   # the original's disk
truncate -s "$disk" "$dir/clone.img"      # the clone's internal disk
echo "demo: pairing a clone ($dir/clone) and an original ($dir/origin)"
build/cloned/clonectl pair --clone-dir "$dir/clone" --origin-dir "$dir/origin" \
  --target "$dir/clone.img" --listen "127.0.0.1:$port"

build/cloned/cloned --config "$dir/clone/cloned.toml" 2>"$dir/cloned.log" &
cloned_pid=$!
trap 'kill "$cloned_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "cloned started" "$dir/cloned.log" 2>/dev/null && break
  kill -0 "$cloned_pid" 2>/dev/null || { cat "$dir/cloned.log"; exit 1; }
  sleep 0.05
done
echo "demo: cloned runs (pid $cloned_pid, log $dir/cloned.log); replicating $bytes of seeded writes"

# The original already holds data the clone never saw: the first full copy is
# a resync (only the extents whose digests differ travel).
head -c 64M /dev/urandom | dd of="$dir/original.img" bs=1M conv=notrunc status=none
echo "demo: first full copy (resync) of the original's image"
build/origin/clone-origin --config "$dir/origin/origin.toml" resync --source "$dir/original.img"
echo
build/origin/clone-origin --config "$dir/origin/origin.toml" workload \
  --source "$dir/original.img" --seed "$seed" --bytes "$bytes" \
  --write-min 4K --write-max 1M --epoch-max 64 --trim-percent 5 \
  --compare "$dir/clone.img"
echo
echo "demo: verify (digests of the whole disk on both sides)"
build/origin/clone-origin --config "$dir/origin/origin.toml" verify --source "$dir/original.img"

echo
build/cloned/clonectl status --config "$dir/clone/cloned.toml"
kill -TERM "$cloned_pid"
wait "$cloned_pid"
trap - EXIT
echo
echo "demo: cloned stopped cleanly; its log is $dir/cloned.log"
