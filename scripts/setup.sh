#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what the project needs on Debian 12 (only what is missing), then
# configures and builds it in ./build. Idempotent; safe to run again.
# Usage: scripts/setup.sh            (CI=true makes warnings errors)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ pkg-config meson ninja-build cmake
  libuv1-dev libsodium-dev libsqlite3-dev libtomlplusplus-dev doctest-dev
  libnl-3-dev libnl-genl-3-dev libnl-route-3-dev libsystemd-dev
  util-linux iproute2 fio netcat-openbsd time systemd
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

werror=false
[ "${CI:-}" = "true" ] && werror=true
if [ ! -f build/build.ninja ]; then
  meson setup build -Dwerror="$werror"
else
  meson configure build -Dwerror="$werror" >/dev/null
fi
ninja -C build -j "$(nproc)"
