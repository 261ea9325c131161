#!/bin/sh
# SPDX-License-Identifier: MIT
# Test only: prints `clonectl status` on the serial console every 2 s between
# markers (test/vm/vm_test.sh reads them from qemu's serial log).
while :; do
  if out=$(clonectl status --config /etc/cloned/cloned.toml 2>&1); then
    printf '=== clonectl status begin\n%s\n=== clonectl status end\n' "$out" >/dev/ttyS0
  else
    printf 'clonectl: %s\n' "$out" >/dev/ttyS0
  fi
  sleep 2
done
