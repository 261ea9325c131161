#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regenerates the seeds of the disk-fingerprint targets (fuzz/diverge.cpp,
# fuzz/diverge_disk.cpp): the start of small disks made by sfdisk, mkfs.ext4
# and mkfs.ntfs, and the stored fingerprints of those disks written by
# diverge_probe. fuzz/make_corpus.sh runs it; needs e2fsprogs, ntfs-3g, fdisk.
# Usage: fuzz/make_diverge_corpus.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: fuzz/make_diverge_corpus.sh BUILD_DIR}
ninja -C "$build" cloned/diverge/diverge_probe >/dev/null
export ASAN_OPTIONS=detect_leaks=0
disks=fuzz/corpus/diverge_disk
stored=fuzz/corpus/diverge
mkdir -p "$disks" "$stored"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# name, then a command that makes $img (8 MiB, sparse).
make_disk() {
  local name=$1 img=$scratch/$1.img
  shift
  truncate -s 8M "$img"
  "$@" "$img" >/dev/null 2>&1
  "$build/cloned/diverge/diverge_probe" "$img" "$stored/$name" >/dev/null
  head -c 64K "$img" >"$disks/$name"
}
gpt() { printf 'label: gpt\nstart=2048, size=4096, type=L\nstart=6144, size=8192, type=L\n' | sfdisk -q "$1"; }
mbr() { printf 'label: dos\nstart=1, size=4096, type=83\nstart=4097, size=4096, type=7\n' | sfdisk -q "$1"; }
ext4() { mkfs.ext4 -q -F "$1"; }
ntfs() { mkfs.ntfs -F -Q -q "$1"; }
# MBR entries start at sector 1 in `mbr` so that the partitions' superblocks
# fall inside the 64 KiB seed.
mbr_ext4() {
  mbr "$1"
  local part
  part=$(losetup --find --show --offset 512 --sizelimit $((4096 * 512)) "$1")
  mkfs.ext4 -q -F "$part" || true
  losetup -d "$part"
}
make_disk gpt gpt
make_disk mbr mbr
make_disk ext4 ext4
make_disk ntfs ntfs
if [ "$(id -u)" -eq 0 ]; then make_disk mbr-ext4 mbr_ext4; fi
chmod 644 "$disks"/* "$stored"/*
echo "diverge: $(ls "$stored" | wc -l) stored seeds; diverge_disk: $(ls "$disks" | wc -l) disk seeds"
