# SPDX-License-Identifier: MIT
# The shell side of requires.h, for test scripts (source it): a test that needs
# something this machine lacks says what and exits 77, which meson reports as
# SKIP. Call these before the script creates anything that needs cleaning up.

# skip REASON...: prints "skipped: REASON" and exits 77.
skip() {
  echo "skipped: $*"
  exit 77
}

# requires_program NAME PACKAGE: NAME is on PATH, else skip naming the Debian package.
requires_program() {
  command -v "$1" >/dev/null || skip "needs $1 (Debian package $2)"
}

# requires_root [WHY]: running as root, else skip.
requires_root() {
  [ "$(id -u)" -eq 0 ] || skip "needs root${1:+ ($1)}"
}
