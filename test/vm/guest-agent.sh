#!/bin/bash
# SPDX-License-Identifier: MIT
# Test only (test/vm/lib.sh puts it into a copy of the stick image): runs the
# host's commands, one line "NONCE COMMAND" at a time, from the virtio port
# vmtest, and answers with the output and "=== rc STATUS NONCE". The stick
# itself has no such door. Each command's start and end go to the kernel's log
# (the serial console), so a stuck command shows there.
port=/dev/virtio-ports/vmtest
while :; do
  if [ -e "$port" ] && exec 3<>"$port"; then
    while IFS=' ' read -r nonce cmd <&3; do
      echo "vm-agent: $nonce begins" >/dev/kmsg 2>/dev/null
      out=$(timeout 120 bash -c "$cmd" 2>&1 </dev/null)
      rc=$?
      echo "vm-agent: $nonce ends, status $rc" >/dev/kmsg 2>/dev/null
      printf '%s\n=== rc %d %s\n' "$out" "$rc" "$nonce" >&3
    done
    exec 3>&-
  fi
  sleep 0.5
done
