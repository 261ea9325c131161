#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds (installing what is missing) and runs every test: unit, scenario and
# black-box suites. Tests that need root or a loop device say so and skip.
# Extra arguments go to `meson test` (e.g. --suite e2e, or a test name).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
meson test -C build --print-errorlogs --num-processes 2 "$@"
