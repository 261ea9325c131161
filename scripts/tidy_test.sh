#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/tidy.py on a scratch repository: a new offender fails the check, a
# baseline written with --update makes it pass, growing an old offender fails
# again, and --update refuses to raise a count. Exit 77 (skip) without git or
# clang-format. Usage: tidy_test.sh SOURCE_DIR   (meson test `tidy-ratchet`)
set -euo pipefail
source_dir=$1
# shellcheck source=../test/support/requires.sh
. "$source_dir/test/support/requires.sh"
requires_program git git
requires_program clang-format clang-format
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/scripts"
cp "$source_dir/scripts/tidy.py" "$source_dir/.clang-format" "$scratch/" && mv "$scratch/tidy.py" "$scratch/scripts/"
cd "$scratch"
git init -q . && git config user.email t@t && git config user.name t
printf '// SPDX-License-Identifier: MIT\nint f() { return rand(); }\n' >a.cpp
git add a.cpp
fail() { echo "tidy_test: FAILED: $*"; exit 1; }
python3 scripts/tidy.py >out.txt && fail "a rand() call with no baseline passed"
grep -q "a.cpp: banned rand 0 -> 1" out.txt || fail "the offender was not named: $(cat out.txt)"
python3 scripts/tidy.py --update >/dev/null || fail "--update did not write the first baseline"
python3 scripts/tidy.py >/dev/null || fail "the check failed against its own baseline"
printf 'int g() { return rand(); }\n' >>a.cpp
python3 scripts/tidy.py >out.txt && fail "a second rand() call passed"
grep -q "banned rand 1 -> 2" out.txt || fail "the growth was not named: $(cat out.txt)"
python3 scripts/tidy.py --update >/dev/null && fail "--update raised a count without --allow-raise"
printf '// SPDX-License-Identifier: MIT\nint f() { return 1; }\n' >a.cpp
python3 scripts/tidy.py >out.txt || fail "fixing the offender failed the check"
grep -q "improved" out.txt || fail "the gain was not reported: $(cat out.txt)"
echo "tidy_test: 6 checks passed"
