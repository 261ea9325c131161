#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The VM suite's first step (meson test vm-image): the image the scenarios
# boot, made by the stick's own recipe from this tree's package:
#   dist/deb/build-deb.sh                 -> BUILD/vm/deb/cloned_*.deb
#   dist/stick/build-stick.sh --cache ... -> BUILD/vm/stick.img (1536 MiB, plus smartmontools)
# The recipe keeps its Debian system and its finished images in
# CLONED_VM_CACHE (/var/cache/cloned-vm), keyed by a hash of their inputs, so
# only the first run on a machine, or a change to the recipe or its package
# list, runs debootstrap; a new .deb costs a copy and a dpkg -i.
# It skips (exit 77) only when the packages it needs cannot be installed.
# Usage: prepare-image.sh BUILD_DIR
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$(dirname "$0")/../..")
. "$src/test/support/requires.sh"
requires_root "dpkg-buildpackage, debootstrap and loop devices"
"$src/scripts/setup.sh" --vm --no-build >"$build/vm-setup.log" 2>&1 ||
  skip "the packages the VM suite needs could not be installed: $(tail -n 3 "$build/vm-setup.log" | tr '\n' ' ')"
mkdir -p "$build/vm"
start_s=$SECONDS
deb=$("$src/dist/deb/build-deb.sh" --out "$build/vm/deb" | tail -n1)
deb_s=$((SECONDS - start_s))
"$src/dist/stick/build-stick.sh" --deb "$deb" --out "$build/vm/stick.img.new" --size-mib 1536 \
  --extra-packages smartmontools --cache "${CLONED_VM_CACHE:-/var/cache/cloned-vm}"
mv "$build/vm/stick.img.new" "$build/vm/stick.img"
echo "prepare-image: the package in $deb_s s, the image in $((SECONDS - start_s - deb_s)) s: $build/vm/stick.img"
