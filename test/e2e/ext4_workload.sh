#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A real filesystem's write stream, for capture-log-writes.sh (COMMAND): on
# $DEVICE, mkfs.ext4, a directory tree copied, an archive extracted, a sqlite
# database taking 40 transactions, files deleted, fstrim; $STEP_DELAY seconds
# between the steps (e2e-log-writes-capture's --follow case). $MNT is the
# mount point (created), $ARCHIVE a .tgz to extract (made from /usr/include/linux
# when unset). Used by test/e2e/log_writes_test.cpp and bench/log_writes.sh.
set -euo pipefail
d=${STEP_DELAY:-0}
archive=${ARCHIVE:-}
if [ -z "$archive" ]; then
  archive=$(mktemp --suffix=.tgz)
  trap 'rm -f "$archive"' EXIT
  tar -C /usr/include -czf "$archive" linux
fi
mkfs.ext4 -q -F "$DEVICE"
mkdir -p "$MNT"
mount "$DEVICE" "$MNT"
cp -a /usr/share/doc/[a-c]* "$MNT"/; sync; sleep "$d"
mkdir "$MNT/include"; tar -C "$MNT/include" -xzf "$archive"; sync; sleep "$d"
sqlite3 "$MNT/db.sqlite" 'PRAGMA journal_mode=WAL; CREATE TABLE t(i INTEGER, v BLOB);' >/dev/null
for i in $(seq 40); do sqlite3 "$MNT/db.sqlite" "BEGIN; INSERT INTO t VALUES ($i, randomblob(20000)); COMMIT;"; done
sleep "$d"
rm -rf "$MNT"/a* "$MNT/include/linux/netfilter"; sync; fstrim "$MNT"; sleep "$d"
umount "$MNT"
