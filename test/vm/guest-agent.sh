#!/bin/bash
# SPDX-License-Identifier: MIT
# Test only (test/vm/lib.sh puts it into a copy of the stick image): runs the
# host's commands, one line "NONCE COMMAND" at a time, from the virtio port
# vmtest, and answers with the output and "=== rc STATUS NONCE". The stick
# itself has no such door. Each command's start and end go to the kernel's log
# (the serial console), so a stuck command shows there.
#
# The port stays open between the host's connections: with no host connected
# a read returns end-of-file at once, and the agent reads again 50 ms later.
# Closing and reopening it after each command left a window in which the
# host's next command waited on qemu noticing the reopen.
port=/dev/virtio-ports/vmtest
while :; do
  if [ -e "$port" ] && exec 3<>"$port"; then
    while :; do
      if IFS=' ' read -r nonce cmd <&3; then
        [ -n "$nonce" ] || continue
        echo "vm-agent: $nonce begins" >/dev/kmsg 2>/dev/null
        out=$(timeout 120 bash -c "$cmd" 2>&1 </dev/null)
        rc=$?
        echo "vm-agent: $nonce ends, status $rc" >/dev/kmsg 2>/dev/null
        printf '%s\n=== rc %d %s\n' "$out" "$rc" "$nonce" >&3 || break
      else
        sleep 0.05
      fi
    done
    exec 3>&-
  fi
  sleep 0.5
done
