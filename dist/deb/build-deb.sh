#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian packages of this tree (debian/) with dpkg-buildpackage:
# cloned_VERSION_ARCH.deb (cloned, clonectl, the unit, the docs) and
# clone-origin_VERSION_ARCH.deb (the reference original).
#
# Usage: dist/deb/build-deb.sh [--out DIR]    (DIR: build/deb)
# Prints the path of the cloned .deb on its last line.
#
# It builds a copy of the tree's files (committed or not, ignored ones left
# out) in a fixed directory, /var/tmp/cloned-deb/, so that dpkg-buildpackage
# writes its results there and not beside the work tree, and so that ccache
# sees the same paths from one build to the next. The tests are not run here
# (debian/rules: they run in scripts/test.sh), and no -dbgsym packages are
# made (noddebs); so nothing keeps the debug information that dh_strip takes
# out of the binaries, and it is not made (-g is stripped from CXXFLAGS; gcc's
# code does not change with it).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/deb
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    *) echo "build-deb: unknown option $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
die() { echo "build-deb: $*" >&2; exit 1; }
for tool in dpkg-buildpackage dh fakeroot meson ninja; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh --stick"
done

top=/var/tmp/cloned-deb
mkdir -p "$top"
# One build at a time in the fixed directory (another worktree may be building).
exec 9>"$top/lock"
flock -w 1800 9 || die "another build holds $top/lock for more than 30 minutes"
version=$(dpkg-parsechangelog -S Version)
tree="$top/cloned-$version"
rm -rf "$tree" "$top"/*.deb "$top"/*.buildinfo "$top"/*.changes
mkdir -p "$tree"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | xargs -0 -r cp --parents -d -t "$tree" 2>/dev/null || true
  # cp skips the files a work tree deleted but git still lists: nothing else may be missing.
  [ -f "$tree/debian/rules" ] && [ -f "$tree/meson.build" ] || die "could not copy the tree to $tree"
else
  tar --exclude='./build*' --exclude=./scratch -cf - . | tar -xf - -C "$tree"
fi

start_s=$SECONDS
echo "build-deb: dpkg-buildpackage -b in $tree"
(cd "$tree" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
   DEB_CXXFLAGS_STRIP="-g ${DEB_CXXFLAGS_STRIP:-}" dpkg-buildpackage -b -uc -us >"$top/build.log" 2>&1) ||
  { tail -40 "$top/build.log" >&2; die "dpkg-buildpackage failed (whole log: $top/build.log)"; }
mkdir -p "$out"
cp "$top"/*.deb "$out/"
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb="$(realpath "$out")/cloned_${version}_${arch}.deb"
[ -f "$deb" ] || die "dpkg-buildpackage made no $deb"
echo "build-deb: done in $((SECONDS - start_s)) s: $(cd "$out" && ls ./*_"${version}"_*.deb | tr '\n' ' ')"
echo "$deb"
