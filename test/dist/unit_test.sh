#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The systemd unit passes `systemd-analyze verify` (with ExecStart pointed at
# the built binary), and its `systemd-analyze security` exposure is printed.
# Usage: unit_test.sh UNIT_FILE CLONED_BINARY
set -euo pipefail
unit=$1 binary=$2
. "$(dirname "$0")/../support/requires.sh"
requires_program systemd-analyze systemd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/sbin/cloned|$binary|" "$unit" > "$tmp/cloned.service"
out=$(systemd-analyze verify "$tmp/cloned.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "systemd-analyze verify complained:"; echo "$out"; exit 1
fi
echo "systemd-analyze verify: clean"
systemd-analyze security --offline=true "$tmp/cloned.service" | tail -n 1
